"""`matdiff graph`: the computation-graph SVG (issue 17). Needs only the core install."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import matdiff
from matdiff.cli import main
from matdiff.derive.gradient import derive
from matdiff.errors import MatdiffError
from matdiff.ir import expr as E
from matdiff.web.graph import computation_graph, graph_svg, to_svg

SVG = "{http://www.w3.org/2000/svg}"


def _nodes(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    return [g for g in root.iter(SVG + "g") if g.get("class") == "node"]


def _box_texts(node: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in node.findall(SVG + "text")]


# node counts worked out by hand from the expression DAG (shared subexpressions count once)
@pytest.mark.parametrize("expr, wrt, count", [
    ("tr(A*X*B)", "X", 5),  # tr, the product A·X·B, A, X, B
    ("x'*A*x", "x", 4),  # the product xᵀ·A·x, xᵀ, A, x (x is shared: one box)
    ("log(det(X))", "X", 3),  # log, det, X
    # −1 · (yᵀ log(softmax(W₂σ(W₁x)))): the scaling, −1, the product, yᵀ, y, log, softmax,
    # W₂h₁, W₂, σ, W₁x, W₁, x
    ("-y'*log(softmax(W2*σ(W1*x)))", "W1", 13),
])
def test_one_box_per_dag_node(expr, wrt, count):
    svg = graph_svg(expr, wrt)
    assert len(_nodes(svg)) == count
    assert len(list(E.walk(matdiff.parse(expr).root))) == count


def test_boxes_carry_formula_shape_and_gradient():
    nodes = _nodes(graph_svg("tr(A*X*B)", "X"))
    texts = {_box_texts(n)[0]: n for n in nodes}
    x = texts["X"]
    assert "n×p" in _box_texts(x)[1] or "×" in _box_texts(x)[1]
    # the backward pass: ∂f/∂X = AᵀBᵀ, worked out by hand
    assert any(t.startswith("∂f/∂X = AᵀBᵀ") for t in _box_texts(x))
    assert _box_texts(texts["tr(AXB)"])[1] == "scalar"
    assert "∂f/∂f = 1" in _box_texts(texts["tr(AXB)"])
    # the path from f to X is highlighted; A and B are not on it
    on_path = {_box_texts(n)[0] for n in nodes if n.get("data-path") == "1"}
    assert on_path == {"tr(AXB)", "AXB", "X"}


def test_edges_carry_forward_shapes():
    svg = graph_svg("x'*A*x", "x")
    root = ET.fromstring(svg)
    labels = ["".join(t.itertext()) for t in root.iter(SVG + "text")
              if t.get("class") == "edge-shape"]
    # xᵀ→product (1×n), A→product (n×n), x→product and x→xᵀ (vector n)
    assert sorted(labels) == sorted(["1×n", "n×n", "vector n", "vector n"])


def test_named_intermediates_in_the_backward_pass():
    svg = graph_svg("-y'*log(softmax(W2*σ(W1*x)))", ["W1", "W2"])
    texts = [t for n in _nodes(svg) for t in _box_texts(n)]
    assert "a₁ = W₁x" in texts and "h₁ = σ(a₁)" in texts
    assert any(t.startswith("∂f/∂W₂ = ∂f/∂a₂ h₁ᵀ") for t in texts)
    assert "where" in svg and "∂f/∂a₂ = (1ᵀy)·softmax(a₂) − y" in svg


def test_layout_every_edge_points_up_and_boxes_do_not_overlap():
    d = derive("-y'*log(softmax(W2*σ(W1*x))) + tr(W1'*W1)", ["W1", "W2"])
    g = computation_graph(d)
    for a, b, _ in g.edges:  # operand below the operation using it
        assert g.nodes[a].y > g.nodes[b].y
    rows: dict[float, list] = {}
    for n in g.nodes:
        rows.setdefault(n.y, []).append(n)
    for row in rows.values():
        row.sort(key=lambda n: n.x)
        for left, right in zip(row, row[1:]):
            assert left.x + left.width / 2 <= right.x - right.width / 2
    assert all(0 <= n.x - n.width / 2 and n.x + n.width / 2 <= g.width for n in g.nodes)


def test_too_large_a_graph_is_refused_plainly():
    expr = " + ".join(f"tr(A{i}*X*B{i})" for i in range(250))
    with pytest.raises(MatdiffError, match="too many to draw"):
        graph_svg(expr, "X")


def test_text_is_escaped():
    svg = to_svg(computation_graph(derive("tr(A*X*B)", ["X"])))
    assert "<title>computation graph of f = tr(AXB)</title>" in svg
    ET.fromstring(svg)


def test_cli_writes_the_svg(tmp_path, capsys):
    out = tmp_path / "graph.svg"
    expr = "-y'*log(softmax(W2*σ(W1*x)))"  # EXPR beginning with '-'
    assert main(["graph", expr, "--wrt", "W1", "-o", str(out)]) == 0
    svg = out.read_text(encoding="utf-8")
    assert len(_nodes(svg)) == len(list(E.walk(matdiff.parse(expr).root)))
    assert re.search(r'data-nodes="13"', svg)


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["graph", "tr(A*X*B", "--wrt", "X"]) == 2
    err = capsys.readouterr().err
    assert "^" in err and "error" in err
    assert main(["graph", "tr(A*X*B)", "--wrt", "Z"]) == 2
    assert main(["graph", "tr(A*X*B)", "--wrt", "X", "-o",
                 str(tmp_path / "missing" / "g.svg")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_cli_to_stdout_with_every_variable(capsys):
    assert main(["graph", "x'*A*x"]) == 0
    svg = capsys.readouterr().out
    assert len(_nodes(svg)) == 4
    assert "path from f to x, A" in svg


def test_import_matdiff_loads_no_web_code():
    import subprocess
    import sys

    code = ("import sys, matdiff; bad = [m for m in sys.modules if m.startswith("
            "('matdiff.web', 'starlette', 'uvicorn'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
