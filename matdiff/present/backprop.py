"""The notes' second method: backpropagation on the computation graph (issue 12).

Forward: every node of f that depends on a --wrt variable gets a name (a₁ = W₁x, h₁ = σ(a₁), …)
and its shape, in topological order. Backward, from f down: ∂f/∂child = upstream ∂f/∂node ×
the node's local derivative (the node's one differential rule and the trace tricks), summed
where a value is used more than once."""

from __future__ import annotations

from ..derive.differential import Differentiator
from ..derive.simplify import simplify
from ..derive.traceform import to_trace_form
from ..ir import expr as E
from ..printing.unicode import UnicodePrinter
from .steps import READ_OFF, SUM_USES, Method, Namer, Step, is_symmetric, symmetric_part, trivial


def graph_nodes(f: E.Node, wrt: set[str]) -> list[E.Node]:
    return [n for n in E.postorder(f) if n is not f and not trivial(n)
            and E.free_vars(n) & wrt]


def backprop_method(result) -> Method:
    m = Method("backprop")
    namer = Namer(m, result.typed.variables)
    wrt = set(result.wrt)
    f = result.f
    names: dict[E.Node, E.Node] = {}
    bodies: list[tuple[E.Node, E.Node]] = []

    def name_it(primal: E.Node, body: E.Node) -> E.Node:
        v = namer.name(primal)
        names[primal] = v
        bodies.append((v, body))
        m.steps.append(Step(f"forward: {E.shape_text(primal.shape)}", v, body, kind="define"))
        return v

    top = f
    for n in _forward_nodes(f, wrt):
        parts = [E.substitute(a, dict(names)) for a in n.args] if n.op == "matmul" else None
        k = len(n.args)
        while parts is not None and len(parts) > 2:  # one product per node: xᵀ·(Ax)
            k -= 1
            pair = E.matmul(parts[-2], parts[-1])
            if E.free_vars(pair) & (wrt | {v.attr[0] for v in names.values()}):
                pair = name_it(E.matmul(*n.args[k - 1:]), pair)
            parts[-2:] = [pair]
        body = E.matmul(*parts) if parts is not None else E.substitute(n, dict(names))
        if n is f:
            top = body
        else:
            name_it(n, body)
    fvar = E.var("§f", "scalar", E.SCALAR)
    m.unicode[fvar], m.latex[fvar] = "f", "f"
    m.steps.append(Step("forward: the output, a scalar", fvar, top, kind="define"))
    live = wrt | {v.attr[0] for v in names.values()}
    p = UnicodePrinter(m.unicode)
    symbols: dict[str, E.Node] = {}
    by_name = {v.attr[0]: v for v in names.values()}

    def symbol(name):
        if name not in symbols:
            symbols[name] = namer.symbol(by_name.get(name) or result.typed.variables[name])
            if name in result.wrt and is_symmetric(result.typed.variables[name]):
                namer.unconstrained(symbols[name])
        return symbols[name]

    uses: dict[str, int] = {}
    for _, body in [(None, top)] + bodies:
        for name in E.free_vars(body) & live:
            uses[name] = uses.get(name, 0) + 1
    contributions: dict[str, list[E.Node]] = {}
    for v, body in [(fvar, top)] + list(reversed(bodies)):
        if v is fvar:
            upstream = E.const(1)
        else:
            gs = contributions.get(v.attr[0], [])
            if not gs:
                continue
            upstream = symbol(v.attr[0])
            if len(gs) > 1:
                m.steps.append(Step(SUM_USES, upstream, simplify(E.add(*gs)), kind="readoff"))
        d = Differentiator(live)(body)
        grads = to_trace_form(E.inner(upstream, d)) if E.has_differential(d) else {}
        node_text = p.doc(v)
        for name, g in grads.items():
            g = simplify(g)
            contributions.setdefault(name, []).append(g)
            kind = "readoff" if uses.get(name, 0) == 1 else "partial"
            leaf = p.doc(_leaf(name, by_name, result))
            rule = (f"upstream ∂f/∂{node_text} × local ∂{node_text}/∂{leaf}"
                    if v is not fvar else f"local derivative of f ({READ_OFF})")
            if kind == "partial":
                rule += " (one of its uses)"
            m.steps.append(Step(rule, symbol(name), g, kind=kind))
    for name in result.wrt:
        gs = contributions.get(name, [])
        if uses.get(name, 0) > 1 and gs:
            m.steps.append(Step(SUM_USES, symbol(name), simplify(E.add(*gs)), kind="readoff"))
        if len(gs) > 1:  # the sum in the forward values: (A + Aᵀ)x
            g = result.unconstrained[name]
            if len(p.doc(g)) <= 60:
                m.steps.append(Step("substitute the forward values", symbol(name), g,
                                    kind="readoff", continues=True))
        if is_symmetric(result.typed.variables[name]):
            m.steps.append(symmetric_part(namer, result.typed.variables[name],
                                          result.gradients[name]))
    return m


def _forward_nodes(f: E.Node, wrt: set[str]) -> list[E.Node]:
    """The graph's nodes in topological order: every node that depends on a --wrt variable
    (xᵀ of a variable too, a node of its own: x is then used twice), f last."""
    return [n for n in E.postorder(f) if E.free_vars(n) & wrt and n.op != "var" and
            (n is f or not trivial(n) or (n.op == "transpose" and n.args[0].op == "var"))]


def _leaf(name, by_name, result):
    return by_name.get(name) or result.typed.variables[name]
