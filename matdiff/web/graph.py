"""The computation graph of an expression as an SVG picture, drawn without Graphviz.

One box per node of the expression DAG (shared subexpressions are one box), each with its
formula and shape; edges carry the forward value's shape upward, from the operands to the
operation. The backward pass is written in each box: ∂f/∂node, printed with the names a
person gives to shared intermediates (a₁, h₁, ∂f/∂a₂, as in `matdiff grad`'s where block),
and the path from f down to each --wrt variable is highlighted.

The layout is a plain layered (Sugiyama-style) drawing: operations sit one layer above their
highest operand, leaves just below their lowest user, the order within a layer is improved
by a few barycenter sweeps, and x positions are pulled toward the neighbours' while keeping
boxes apart. Used by `matdiff graph` and by the page of `matdiff serve`."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from ..errors import DerivationError
from ..ir import expr as E

MAX_NODES = 600  # a bigger DAG is refused: no one reads a picture of it
MAX_LABEL = 44  # characters of a formula shown in a box (the full text is the tooltip)

_FONT = "DejaVu Sans, Verdana, sans-serif"
_CHAR_W = 7.4  # average advance of a 13 px character (an estimate: no font metrics here)
_SMALL_W = 6.4  # the same at 11 px
_BOX_H = 56
_ROW_GAP = 58
_COL_GAP = 22
_MARGIN = 16
_HEAD = 46

_COLOURS = {
    "edge": "#adb5bd", "edge_path": "#e8590c", "box": "#f8f9fa", "box_path": "#fff4e6",
    "box_wrt": "#ffec99", "stroke": "#868e96", "stroke_path": "#e8590c", "text": "#212529",
    "shape": "#495057", "grad": "#1864ab",
}


@dataclass
class GraphNode:
    index: int
    node: E.Node
    formula: str  # "a₁ = W₁x", "W₁", "σ(a₁)"
    shape: str  # "n×p", "vector n", "scalar"
    gradient: str | None  # "∂f/∂a₁ = …" (None when matdiff has no adjoint for the node)
    on_path: bool  # f depends on a --wrt variable through this node
    is_wrt: bool
    layer: int = 0
    width: float = 0.0
    x: float = 0.0  # centre
    y: float = 0.0  # top


@dataclass
class Graph:
    function: str
    wrt: list[str]
    nodes: list[GraphNode]
    edges: list[tuple[int, int, int]]  # (operand, operation, multiplicity)
    where: list[str] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def dag_nodes(root: E.Node) -> list[E.Node]:
    """The distinct nodes of the expression DAG, operands before the operations using them."""
    return E.postorder(root)


def _shape_words(node: E.Node) -> str:
    dims = E.shape_dims(node.shape)
    if not dims:
        return "scalar"
    if len(dims) == 1:
        return f"vector {dims[0]}"
    return "×".join(dims)


def _clip(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def computation_graph(derivation, wrt: list[str] | None = None) -> Graph:
    """The graph of `derivation.f` (a matdiff.derive.gradient.Derivation), laid out."""
    from ..present.report import shared_intermediates, unicode_with_names
    from ..printing.unicode import UnicodePrinter

    root = derivation.f
    order = dag_nodes(root)
    if len(order) > MAX_NODES:
        raise DerivationError(f"the expression has {len(order)} distinct operations, too many "
                              f"to draw (at most {MAX_NODES}): draw a part of it")
    wrt = list(wrt or derivation.wrt)
    gradients = [derivation.gradients[n] for n in derivation.wrt]
    named = shared_intermediates(gradients, derivation.adjoints)
    _, where = unicode_with_names(gradients, named)
    pretty = {x.node: _subscripts(x.name) for x in named}
    wanted = set(wrt)

    nodes: list[GraphNode] = []
    index: dict[E.Node, int] = {}
    for n in order:
        own = UnicodePrinter({k: v for k, v in pretty.items() if k is not n and k in index})
        formula = own.doc(n)
        label = f"{pretty[n]} = {formula}" if n in pretty else formula
        grad = _gradient(n, root, derivation, pretty)
        is_wrt = n.op == "var" and n.attr[0] in wanted
        on_path = bool(wanted & E.free_vars(n))
        index[n] = len(nodes)
        nodes.append(GraphNode(len(nodes), n, label, _shape_words(n), grad, on_path, is_wrt))
    edges = []
    for n in order:
        counts: dict[E.Node, int] = {}
        for a in n.args:
            counts[a] = counts.get(a, 0) + 1
        for a, k in counts.items():
            edges.append((index[a], index[n], k))
    graph = Graph(f"f = {UnicodePrinter().doc(root)}", wrt, nodes, edges, where)
    _layout(graph)
    return graph


def _subscripts(name: str) -> str:
    return name.translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _gradient(n: E.Node, root: E.Node, derivation, pretty: dict) -> str | None:
    from ..printing.unicode import UnicodePrinter

    who = pretty.get(n, "·")
    if n is root:
        return "∂f/∂f = 1"
    if n.op == "var":
        name = n.attr[0]
        if name not in derivation.gradients:
            return None
        g = derivation.gradients[name]
        who = UnicodePrinter().var_name(name)
    else:
        g = derivation.adjoints.get(n)
        if g is None:
            return None
    p = UnicodePrinter({k: v for k, v in pretty.items() if k is not g})
    return f"∂f/∂{who} = {p.doc(g)}"


# ---------------------------------------------------------------- layout


def _layout(g: Graph) -> None:
    nodes = g.nodes
    parents: list[list[int]] = [[] for _ in nodes]
    children: list[list[int]] = [[] for _ in nodes]
    for a, b, _ in g.edges:
        children[b].append(a)
        parents[a].append(b)
    # every node just below its lowest user (longest path from f): an operand sits next to
    # where it is used, and every edge points up
    depth = [0] * len(nodes)
    for gn in reversed(nodes):  # users before operands
        for c in children[gn.index]:
            depth[c] = max(depth[c], depth[gn.index] + 1)
    bottom = max(depth)
    for gn in nodes:
        gn.layer = bottom - depth[gn.index]
    top = max(gn.layer for gn in nodes)
    layers: list[list[int]] = [[] for _ in range(top + 1)]
    # initial order: depth-first from the root, operands left to right
    first_seen = {id(n): i for i, n in enumerate(E.walk(nodes[-1].node))}
    for gn in sorted(nodes, key=lambda gn: first_seen.get(id(gn.node), 0)):
        layers[gn.layer].append(gn.index)
    for gn in nodes:
        gn.width = max(_CHAR_W * len(_clip(gn.formula)), _CHAR_W * len(gn.shape),
                       _SMALL_W * len(_clip(gn.gradient or ""))) + 20

    def position() -> dict[int, float]:
        return {i: (k + 0.5) / len(layer) for layer in layers for k, i in enumerate(layer)}

    for _ in range(3):  # barycenter sweeps: down by parents, then up by children
        for lay in range(top - 1, -1, -1):
            pos = position()
            layers[lay].sort(key=lambda i: _mean([pos[p] for p in parents[i]], pos[i]))
        for lay in range(1, top + 1):
            pos = position()
            layers[lay].sort(key=lambda i: _mean([pos[c] for c in children[i]], pos[i]))

    for layer in layers:  # packed left to right
        x = 0.0
        for i in layer:
            nodes[i].x = x + nodes[i].width / 2
            x += nodes[i].width + _COL_GAP
    for _ in range(4):  # pull each box toward its neighbours, keeping order and gaps
        for lay in list(range(top, -1, -1)) + list(range(top + 1)):
            layer = layers[lay]
            want = [_mean([nodes[j].x for j in parents[i] + children[i]], nodes[i].x)
                    for i in layer]
            _place(nodes, layer, want)
    left = min(gn.x - gn.width / 2 for gn in nodes)
    right = max(gn.x + gn.width / 2 for gn in nodes)
    for gn in nodes:
        gn.x += _MARGIN - left
        gn.y = _HEAD + _MARGIN + (top - gn.layer) * (_BOX_H + _ROW_GAP)
    legend = 110 + len(", ".join(g.wrt))
    head_w = max(_CHAR_W * max([len(_clip(g.function, 120))]
                               + [len(_clip(w, 120)) for w in g.where]), _SMALL_W * legend)
    g.width = max(right - left, head_w) + 2 * _MARGIN
    g.height = (_HEAD + 2 * _MARGIN + (top + 1) * (_BOX_H + _ROW_GAP) - _ROW_GAP
                + (18 * (len(g.where) + 1) + 8 if g.where else 0))


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _place(nodes: list[GraphNode], layer: list[int], want: list[float]) -> None:
    """x positions as close to `want` as order and gaps allow (a push right, then left)."""
    xs = list(want)
    for k in range(1, len(layer)):
        a, b = nodes[layer[k - 1]], nodes[layer[k]]
        xs[k] = max(xs[k], xs[k - 1] + a.width / 2 + _COL_GAP + b.width / 2)
    for k in range(len(layer) - 2, -1, -1):
        a, b = nodes[layer[k]], nodes[layer[k + 1]]
        xs[k] = min(xs[k], xs[k + 1] - b.width / 2 - _COL_GAP - a.width / 2)
    # the left push may undo the right one only by moving boxes left: gaps still hold
    for k, i in enumerate(layer):
        nodes[i].x = xs[k]


# ---------------------------------------------------------------- SVG


def _t(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def to_svg(g: Graph) -> str:
    c = _COLOURS
    w, h = round(g.width), round(g.height)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="{_FONT}" font-size="13" role="img" '
        f'class="matdiff-graph" data-nodes="{len(g.nodes)}" data-edges="{len(g.edges)}">',
        f"<title>computation graph of {_t(g.function)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{c["edge"]}"/></marker>'
        '<marker id="arrow-path" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{c["edge_path"]}"/></marker></defs>',
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
        f'<text x="{_MARGIN}" y="{_MARGIN + 12}" font-size="14" fill="{c["text"]}">'
        f"{_t(_clip(g.function, 120))}</text>",
        f'<text x="{_MARGIN}" y="{_MARGIN + 30}" font-size="11" fill="{c["shape"]}">'
        f"forward: edges carry each value and its shape up to f · backward: "
        f'<tspan fill="{c["grad"]}">∂f/∂node</tspan> in each box · '
        f'<tspan fill="{c["edge_path"]}">path from f to {_t(", ".join(g.wrt))}</tspan></text>',
    ]
    nodes = g.nodes
    # incoming edges end side by side under the operation, in the operands' left-right order
    ends: dict[tuple[int, int], float] = {}
    incoming: dict[int, list[int]] = {}
    for a, b, _ in g.edges:
        incoming.setdefault(b, []).append(a)
    for b, sources in incoming.items():
        sources.sort(key=lambda a: nodes[a].x)
        span = min(nodes[b].width * 0.6, 24.0 * (len(sources) - 1))
        for k, a in enumerate(sources):
            offset = span * (k / (len(sources) - 1) - 0.5) if len(sources) > 1 else 0.0
            ends[(a, b)] = nodes[b].x + offset
    for a, b, k in g.edges:
        src, dst = nodes[a], nodes[b]
        hot = src.on_path and dst.on_path
        x1, y1 = src.x, src.y
        x2, y2 = ends[(a, b)], dst.y + _BOX_H
        dy = max(20.0, (y1 - y2) / 2)
        colour = c["edge_path"] if hot else c["edge"]
        marker = "arrow-path" if hot else "arrow"
        out.append(
            f'<path class="edge" d="M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 - dy:.1f} '
            f'{x2:.1f},{y2 + dy:.1f} {x2:.1f},{y2:.1f}" fill="none" stroke="{colour}" '
            f'stroke-width="{2.2 if hot else 1.2}" marker-end="url(#{marker})"/>')
        label = src.shape + (f" (×{k})" if k > 1 else "")
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2 + 4
        out.append(
            f'<text class="edge-shape" x="{mx:.1f}" y="{my:.1f}" font-size="10" '
            f'text-anchor="middle" fill="{c["shape"]}" stroke="#ffffff" stroke-width="3" '
            f'paint-order="stroke">{_t(label)}</text>')
    for gn in nodes:
        fill = c["box_wrt"] if gn.is_wrt else c["box_path"] if gn.on_path else c["box"]
        stroke = c["stroke_path"] if gn.on_path else c["stroke"]
        x0 = gn.x - gn.width / 2
        tip = f"{gn.formula}  [{gn.shape}]" + (f"\n{gn.gradient}" if gn.gradient else "")
        out.append(
            f'<g class="node" data-op="{_t(gn.node.op)}" data-path="{int(gn.on_path)}">'
            f"<title>{_t(tip)}</title>"
            f'<rect x="{x0:.1f}" y="{gn.y:.1f}" width="{gn.width:.1f}" height="{_BOX_H}" '
            f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{1.6 if gn.on_path else 1}"/>'
            f'<text x="{gn.x:.1f}" y="{gn.y + 18:.1f}" text-anchor="middle" '
            f'fill="{c["text"]}">{_t(_clip(gn.formula))}</text>'
            f'<text x="{gn.x:.1f}" y="{gn.y + 33:.1f}" text-anchor="middle" font-size="11" '
            f'fill="{c["shape"]}">{_t(gn.shape)}</text>')
        if gn.gradient:
            out.append(f'<text class="grad" x="{gn.x:.1f}" y="{gn.y + 48:.1f}" '
                       f'text-anchor="middle" font-size="11" fill="{c["grad"]}">'
                       f"{_t(_clip(gn.gradient))}</text>")
        out.append("</g>")
    if g.where:
        y = g.height - _MARGIN - 18 * len(g.where)
        out.append(f'<text x="{_MARGIN}" y="{y:.1f}" font-size="12" fill="{c["shape"]}">'
                   "where</text>")
        for k, line in enumerate(g.where, 1):
            out.append(f'<text x="{_MARGIN + 14}" y="{y + 18 * k:.1f}" font-size="12" '
                       f'fill="{c["text"]}">{_t(_clip(line, 120))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def graph_svg(expr: str, wrt: list[str] | str, types: dict[str, str] | None = None,
              check: bool = False) -> str:
    """Derive f's gradients and draw its computation graph (the self-check is optional: the
    picture shows what matdiff derived, which `matdiff grad` checks)."""
    from ..derive.gradient import derive

    wrt = [wrt] if isinstance(wrt, str) else list(wrt)
    derivation = derive(expr, wrt, types, check=check)
    return to_svg(computation_graph(derivation, wrt))
