"""Jupyter's LaTeX renders line by line: the result's _repr_latex_ goes through KaTeX (the copy
the web page ships) in strict mode under Node, and the rendered HTML has one row per equation
and the where block (a top-level \\\\ in display math would be an error in strict mode)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import matdiff

KATEX = Path(matdiff.__file__).parent / "web" / "static" / "katex" / "katex.min.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

SCRIPT = """
const katex = require(process.argv[1]);
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const tex = JSON.parse(input);
  const html = katex.renderToString(tex, {displayMode: true, throwOnError: true,
                                          strict: 'error', output: 'mathml'});
  process.stdout.write(JSON.stringify({rows: (html.match(/<mtr>/g) || []).length, html}));
});
"""


def _render(tex: str) -> dict:
    proc = subprocess.run([NODE, "-e", SCRIPT, str(KATEX)], input=json.dumps(tex),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _display(tex: str) -> str:
    assert tex.startswith("$$") and tex.endswith("$$")
    return tex[2:-2]


def test_gradient_result_renders_in_rows_with_its_where_block():
    result = matdiff.grad("-y'*log(softmax(W2*σ(W1*x)))", ["W1", "W2"])
    tex = _display(result._repr_latex_())
    assert tex.startswith(r"\begin{aligned}") and r"\text{where}" in tex
    # 4 equations (df and ∂f/∂W for two variables), "where", and 4 definitions a₁, h₁, a₂, ∂f/∂a₂
    assert _render(tex)["rows"] == 9


def test_lines_joined_by_a_bare_newline_are_not_rows():
    # the old form (lines joined by a top-level \\) has no rows: the check can fail
    assert _render(r"a = 1 \\ b = 2")["rows"] == 0


def test_steps_render_in_strict_katex():
    result = matdiff.grad("x'*A*x", "x", steps=True)
    assert result.steps
    for step in result.steps:
        _render(_display(step._repr_latex_()))
    block = matdiff.grad("-y'*log(softmax(a))", "a").derivation
    from matdiff.present.render import grad_latex

    tex = grad_latex(block, steps=True)
    assert tex.startswith(r"\begin{align*}")
    body = tex.replace(r"\begin{align*}", r"\begin{aligned}").replace(r"\end{align*}",
                                                                      r"\end{aligned}")
    assert _render(body)["rows"] >= 5
