"""Issue 12: the final form does not depend on how f was written. (A*x-y)'*(A*x-y) and
norm2(A*x-y)^2 print the same gradient, the quotient xᵀx/xᵀAx is collected over its common
denominator, a numeric factor common to a sum comes out, A comes before Aᵀ, and no double
transpose appears in a gradient, a differential or a step of any of the three methods."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from matdiff.derive.gradient import derive
from matdiff.derive.simplify import simplify
from matdiff.language.typecheck import typecheck
from matdiff.oracles.numeric import evaluate, find_point
from matdiff.present.methods import method_steps
from matdiff.printing.text import to_text
from matdiff.printing.unicode import to_unicode

CORPUS = json.loads((Path(__file__).parent / "data" / "corpus.json").read_text(encoding="utf-8"))


def grad(expr, wrt, types=None):
    return to_unicode(derive(expr, [wrt], types or {}).gradients[wrt])


@pytest.mark.parametrize("expr", ["(A*x-y)'*(A*x-y)", "norm2(A*x-y)^2", "(y-A*x)'*(y-A*x)",
                                  "norm2(y-A*x)^2"])
def test_least_squares_however_written(expr):
    assert grad(expr, "x") in ("2Aᵀ(Ax − y)",)


def test_quotient_collects_over_its_denominator():
    assert grad("x'*x/(x'*A*x)", "x") == "(2(xᵀAx)·x − (xᵀx)·(A + Aᵀ)x)/(xᵀAx)²"
    assert grad("x'*A*x/(x'*x)", "x") == "((xᵀx)·(A + Aᵀ)x − 2(xᵀAx)·x)/(xᵀx)²"
    assert grad("log(x'*A*x)", "x") == "(A + Aᵀ)x/(xᵀAx)"


def test_common_numeric_factor_and_transpose_order():
    assert grad("tr(S*A)", "S", {"S": "symmetric"}) == "0.5(A + Aᵀ)"
    assert grad("tr(X*A*X')", "X") == "X(A + Aᵀ)"
    assert grad("tr(diag(x)*A)", "x") == "diag(A)"  # diag(Aᵀ) = diag(A)
    assert grad("logdet(S) + tr(inv(S)*C)", "S", {"S": "spd"}) == "S⁻¹ − 0.5S⁻¹(C + Cᵀ)S⁻¹"
    # a partial sum that does not collect keeps its numbers (2a + c − 2b, not 2(a − b) + c)
    assert grad("2*a'*x - 2*b'*x + c'*x", "x", {"a": "vector", "b": "vector"}) == "2a + c − 2b"


def test_the_quotient_reads_back_in_the_language():
    r = derive("x'*x/(x'*A*x)", ["x"])
    g = r.gradients["x"]
    back = typecheck(to_text(g)).root
    found = find_point([g], r.typed.variables, np.random.default_rng(1))
    env, sizes = found.point.env, found.point.sizes
    assert np.allclose(evaluate(g, env, sizes), evaluate(back, env, sizes), rtol=1e-10)
    assert simplify(g) is g


DOUBLE = re.compile(r"(?<![\w)])\([A-Za-zα-ωΑ-Ω][₀-₉]*(ᵀ|⁻ᵀ|⁻¹)\)ᵀ")


@pytest.mark.parametrize("row", CORPUS, ids=[f"{r['expression']} d{r['wrt']}" for r in CORPUS])
def test_no_double_transpose_anywhere(row):
    r = derive(row["expression"], [row["wrt"]], row["let"], steps=True)
    texts = [to_unicode(r.gradients[row["wrt"]])]
    for method in ("trace", "backprop", "jacobian"):
        try:
            steps = method_steps(r, method)
        except Exception:  # a method that does not apply says so elsewhere
            continue
        texts += [line for _, line in steps.text_lines()]
    for text in texts:
        assert not DOUBLE.search(text), text
