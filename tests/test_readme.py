"""The README's tour: every `$ matdiff …` block prints what the README shows."""

import re
import shlex
from pathlib import Path

import pytest

from .test_cli import run

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```text\n\$ (matdiff [^\n]+)\n(.*?)```", README, re.S)


def test_readme_has_a_tour():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("command,expected", BLOCKS, ids=[b[0][:40] for b in BLOCKS])
def test_readme_command_prints_what_the_readme_shows(command, expected):
    argv = shlex.split(command)[1:]
    code, out, err = run(*argv)
    assert code in (0, 1), err
    assert out == expected


def test_rich_output_on_a_terminal(monkeypatch, capsys):
    from matdiff import cli

    monkeypatch.setattr(cli, "_use_rich", lambda args: True)
    for argv in (["grad", "tr(A*X*B)", "--wrt", "X"], ["parse", "x'*A*x"],
                 ["grad", "tr(A*X*B)", "--wrt", "X", "--steps"],
                 ["codegen", "x'*A*x", "--wrt", "x"]):
        assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "AᵀBᵀ" in out and "def f_and_grad" in out
