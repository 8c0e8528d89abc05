"""The printed gradients of 110 expressions are pinned (tests/data/corpus.json, recorded by
bench/make_corpus.py before the operator registry replaced the per-stage tables), and each is
still confirmed by the numerical self-check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matdiff.derive.gradient import derive
from matdiff.printing.latex import to_latex
from matdiff.printing.text import to_text
from matdiff.printing.unicode import to_unicode

CORPUS = json.loads((Path(__file__).parent / "data" / "corpus.json").read_text(encoding="utf-8"))


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 90


@pytest.mark.parametrize("row", CORPUS, ids=[f"{r['expression']} d{r['wrt']}" for r in CORPUS])
def test_printed_gradient_is_unchanged(row):
    result = derive(row["expression"], [row["wrt"]], row["let"])
    g = result.gradients[row["wrt"]]
    assert (to_unicode(g), to_text(g), to_latex(g)) == (row["unicode"], row["text"], row["latex"])
    assert result.checked or result.check_reason
