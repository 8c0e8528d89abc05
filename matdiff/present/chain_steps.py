"""The notes' third method: the multivariate chain rule as a product of Jacobians (issue 12).

∂f/∂xᵀ = ∂f/∂h_kᵀ · ∂h_k/∂h_{k−1}ᵀ ⋯ ∂h₁/∂xᵀ (numerator layout), each factor with its formula
and shape, along the computation graph when f reaches x through a chain of vectors; the
product is then multiplied out and transposed to the gradient."""

from __future__ import annotations

from dataclasses import replace

from ..derive.differential import Differentiator
from ..derive.gradient import derive
from ..derive.jacobian import NoMatrixForm, lift, vec_jacobian
from ..derive.simplify import simplify
from ..ir import expr as E
from ..printing.unicode import UnicodePrinter
from .backprop import graph_nodes
from .steps import Method, Namer, Step, is_symmetric, symmetric_part


def jacobian_method(result) -> Method:
    m = Method("jacobian")
    namer = Namer(m, result.typed.variables)
    for x in result.wrt:
        v = result.variable(x)
        if v.shape[1] is not E.ONE:
            done = len(m.steps)
            try:  # a matrix variable: the vec/Kronecker form, ∂a/∂vec(W)ᵀ = xᵀ ⊗ I
                _one(m, namer, result, x)
            except NoMatrixForm:
                del m.steps[done:]
                m.message = (f"the chain of Jacobians needs a vector (or scalar) variable, or a "
                             f"vec/Kronecker form, and {x} is a {v.kind} without one here: use "
                             "--method trace or --method backprop")
            continue
        _one(m, namer, result, x)
    return m


def _vec_factor(result, body: E.Node, x: str) -> E.Node:
    """∂body/∂vec(X)ᵀ (numerator layout): the Kronecker form of vec(d body) = J·vec(dX), or,
    for a scalar body, vec(G)ᵀ from df = tr(Gᵀ dX) = vec(G)ᵀ vec(dX)."""
    typed = replace(result.typed, root=body)
    try:
        return vec_jacobian(typed, x, check=False).result
    except NoMatrixForm:
        if not body.is_scalar:
            raise
        g = result.unconstrained[x] if body is result.f else \
            derive(typed, [x], check=False).unconstrained[x]
        return E.transpose(E.vec(g))


def _one(m: Method, namer: Namer, result, x: str) -> None:
    f = result.f
    wrt = {x}
    nodes = [n for n in graph_nodes(f, wrt) if n.shape[1] is E.ONE]
    # the chain: from f down, each node's only child that depends on x
    chain: list[E.Node] = []
    cur = f
    while True:
        kids = {a for a in cur.args if E.free_vars(a) & wrt}
        nxt = [a for a in nodes if a in _reach(cur, nodes)]
        if len(kids) != 1 or not nxt:
            break
        below = _first_named(cur, nodes)
        if below is None:
            break
        chain.append(below)
        cur = below
    names: dict[E.Node, E.Node] = {}
    for n in reversed(chain):
        body = E.substitute(n, dict(names))
        nv = namer.name(n)
        names[n] = nv
        m.steps.append(Step(f"name it: {E.shape_text(n.shape)}", nv, body, kind="define"))
    xv = result.variable(x)
    levels = [E.substitute(f, dict(names))] + [E.substitute(n, {k: w for k, w in names.items()
                                                                  if k is not n})
                                               for n in chain]
    outs = [E.var("§f", "scalar", E.SCALAR)] + [names[n] for n in chain]
    m.unicode[outs[0]], m.latex[outs[0]] = "f", "f"
    ins = [names[n] for n in chain] + [xv]
    factors = []
    matrix = xv.shape[1] is not E.ONE
    for out, body, inp in zip(outs, levels, ins):
        if inp is xv and matrix:
            J = simplify(_vec_factor(result, body, x))
            wrt_u = f"vec({namer.up.var_name(x)})"
            wrt_l = rf"\operatorname{{vec}}({namer.lp.var_name(x)})"
        else:
            d = Differentiator({inp.attr[0]})(body)
            try:
                J = simplify(lift(d, inp.attr[0]))
            except NoMatrixForm:
                m.message = f"no matrix form for ∂{m.unicode.get(out, 'f')}/∂{inp.attr[0]}ᵀ"
                return
            wrt_u = m.unicode.get(inp, inp.attr[0])
            wrt_l = m.latex.get(inp, inp.attr[0])
        js = E.var(f"§J{len(m.unicode)}", "matrix", J.shape)
        m.unicode[js] = f"∂{m.unicode.get(out, out.attr[0])}/∂{wrt_u}ᵀ"
        m.latex[js] = (rf"\frac{{\partial {m.latex.get(out, out.attr[0])}}}"
                       rf"{{\partial {wrt_l}^{{\top}}}}")
        m.steps.append(Step(f"Jacobian, {E.shape_text(J.shape)} (numerator layout)", js, J,
                            kind="define"))
        factors.append((js, J))
    vx = E.vec(xv) if matrix else xv
    total = E.var(f"§J{x}", "matrix", (E.ONE, vx.shape[0]))
    m.unicode[total] = f"∂f/∂{wrt_u}ᵀ" if matrix else f"∂f/∂{x}ᵀ"
    m.latex[total] = rf"\frac{{\partial f}}{{\partial {wrt_l if matrix else x}^{{\top}}}}"
    product = E.matmul(*[s for s, _ in factors]) \
        if len(factors) > 1 else factors[0][0]
    if len(factors) > 1:
        m.steps.append(Step("the chain rule: a product of Jacobians", total, product))
        m.steps.append(Step("substitute each factor", product,
                            E.matmul(*[J for _, J in factors]),
                            continues=True))
    g = result.unconstrained[x]
    row = E.transpose(E.vec(g)) if matrix else (E.transpose(g) if not g.is_scalar else g)
    p = UnicodePrinter(m.unicode)
    if len(factors) > 1 or p.doc(row) != p.doc(factors[0][1]):  # never the line before again
        m.steps.append(Step("multiply out: the gradient is the transposed row"
                            + (" (vec trick: vec(M)ᵀ(P ⊗ Q) = vec(QᵀMP)ᵀ)"
                               if any(n.op == "kron" for _, J in factors for n in E.walk(J))
                               else ""),
                            total, row, kind="readoff"))
    sym = namer.symbol(xv)
    if is_symmetric(xv):
        namer.unconstrained(sym)
    m.steps.append(Step("∂f/∂X = unvec((∂f/∂vec(X)ᵀ)ᵀ)" if matrix else "∂f/∂x = (∂f/∂xᵀ)ᵀ",
                        sym, g, kind="readoff"))
    if is_symmetric(xv):
        m.steps.append(symmetric_part(namer, xv, result.gradients[x]))


def _reach(cur, nodes):
    return set(nodes) & set(E.postorder(cur))


def _first_named(cur, nodes):
    """The highest graph node below cur on the way to the variable (cur's only live child,
    looked through for unnamed wrappers)."""
    n = cur
    seen = set(nodes)
    while True:
        kids = [a for a in n.args if a is not n and any(v in seen for v in E.postorder(a))]
        if len(kids) != 1:
            return None
        n = kids[0]
        if n in seen:
            return n
