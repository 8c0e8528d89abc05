"""Traces, sums, norms, softmax and the diagonal: operators that reduce or reshape.

tr, sum and both diag are linear (differential and peel rule by linearity); the norms,
logsumexp and softmax carry their textbook differentials."""

from __future__ import annotations

from ..ir import expr as E
from .combinators import linear_d
from .language import Call, declare_call
from .lazy import np, special
from .registry import ATOM, POSTFIX, PRODUCT, DRule, Operator, PeelRule, Spelling, declare


def _np_scalar(v):
    return np.full((1, 1), v)


def _entries(m):
    return [m[i, j] for i in range(m.rows) for j in range(m.cols)]


def _np_method(fn: str, name: str):
    """NumPy: x.name() (half the call overhead of fn(x)) unless x may be a Python float."""
    def lower(ctx, n, a):
        x = n.args[0]
        return f"{fn}({a[0]})" if x.is_scalar or x.op == "const" else ctx.method(a[0], name)
    return lower


def _call(fn: str):
    """A lowering that calls fn on the argument (jnp.trace, torch.sum, _softmax, …)."""
    return lambda ctx, n, a: f"{fn}({a[0]})"


# ---------------------------------------------------------------- tr


def _peel_trace(n, g):
    x = n.args[0]
    yield x, E.scale(g, E.eye(x.shape[0]))


declare(Operator(
    "tr", "trace",
    d=linear_d("rule 4: d tr(X) = tr(dX)", lambda n, dx: E.trace(dx)),
    peel=PeelRule("trick 11: linearity, g·tr(L) = tr(g·L)", _peel_trace),
    numeric=lambda n, a, s: _np_scalar(np.trace(a[0])),
    exact=lambda sp, n, a, s: sp.Matrix([[a[0].trace()]]),
    precise=lambda mp, n, a, s: mp.matrix([[mp.fsum(a[0][i, i] for i in range(a[0].rows))]]),
    spelling=Spelling("tr", "tr", r"\operatorname{tr}"),
    lower={"numpy": _np_method("np.trace", "trace"),
           "jax": _call("jnp.trace"), "torch": _call("torch.trace")},
))

# ---------------------------------------------------------------- sum


def _peel_sum(n, g):
    x = n.args[0]
    yield x, E.scale(g, E.ones(x.shape))


def _sum_unicode(printer, node):
    x = node.args[0]
    if x.kind == "vector":
        return f"1ᵀ{printer.at(x, POSTFIX)}", PRODUCT
    return printer.call("sum", x)


def _sum_latex(printer, node):
    x = node.args[0]
    if x.kind == "vector":
        return rf"\mathbf{{1}}^{{\top}} {printer.at(x, POSTFIX)}", PRODUCT
    return printer.call(r"\operatorname{sum}", x)


declare(Operator(
    "sum", "sum of entries",
    d=linear_d("rule 1 (a sum of entries): d(1ᵀX1) = 1ᵀdX1", lambda n, dx: E.reduction("sum", dx)),
    peel=PeelRule("sum(L) = tr((1 1ᵀ)ᵀ L)", _peel_sum),
    numeric=lambda n, a, s: _np_scalar(np.sum(a[0])),
    exact=lambda sp, n, a, s: sp.Matrix([[sum(a[0])]]),
    precise=lambda mp, n, a, s: mp.matrix([[mp.fsum(_entries(a[0]))]]),
    spelling=Spelling("sum", _sum_unicode, _sum_latex),
    lower={"numpy": _np_method("np.sum", "sum"),
           "jax": _call("jnp.sum"), "torch": _call("torch.sum")},
))

# ---------------------------------------------------------------- norms


def _d_norm1(ctx, n, d):
    x = n.args[0]
    return E.inner(E.fn("sign", x), d(x))


declare(Operator(
    "norm1", "1-norm",
    d=DRule("d‖x‖₁ = sign(x)ᵀdx", _d_norm1),
    numeric=lambda n, a, s: _np_scalar(np.sum(np.abs(a[0]))),
    exact=lambda sp, n, a, s: sp.Matrix([[sum(sp.Abs(x) for x in a[0])]]),
    precise=lambda mp, n, a, s: mp.matrix([[mp.fsum(abs(x) for x in _entries(a[0]))]]),
    spelling=Spelling("norm1", lambda p, n: (f"‖{p.doc(n.args[0])}‖₁", ATOM),
                      lambda p, n: (rf"\left\|{p.doc(n.args[0])}\right\|_1", ATOM)),
    lower={"numpy": lambda ctx, n, a: f"np.abs({a[0]}).sum()",
           "jax": lambda ctx, n, a: f"jnp.sum(jnp.abs({a[0]}))",
           "torch": lambda ctx, n, a: f"torch.sum(torch.abs({a[0]}))"},
))


def _d_norm2(ctx, n, d):
    x = n.args[0]
    return E.scale(E.power(n, E.const(-1)), E.inner(x, d(x)))


def _norm2_unicode(printer, node):
    x = node.args[0]
    return f"‖{printer.doc(x)}‖" + ("_F" if x.kind == "matrix" else ""), ATOM


def _norm2_latex(printer, node):
    x = node.args[0]
    return rf"\left\|{printer.doc(x)}\right\|" + ("_F" if x.kind == "matrix" else ""), ATOM


declare(Operator(
    "norm2", "2-norm",
    d=DRule("d‖x‖ = xᵀdx / ‖x‖", _d_norm2),
    numeric=lambda n, a, s: _np_scalar(np.sqrt(np.sum(a[0] ** 2))),
    exact=lambda sp, n, a, s: sp.Matrix([[sp.sqrt(sum(x ** 2 for x in a[0]))]]),
    precise=lambda mp, n, a, s: mp.matrix([[mp.sqrt(mp.fsum(x * x for x in _entries(a[0])))]]),
    spelling=Spelling("norm2", _norm2_unicode, _norm2_latex),
    lower={"numpy": lambda ctx, n, a: f"np.sqrt(np.vdot({a[0]}, {a[0]}))",
           "jax": lambda ctx, n, a: f"jnp.sqrt(jnp.vdot({a[0]}, {a[0]}))",
           "torch": _call("torch.linalg.vector_norm")},
))

# ---------------------------------------------------------------- logsumexp, softmax


def _softmax_all(x: E.Node) -> E.Node:
    """exp(X)/sum(exp(X)) for a matrix X (the gradient of logsumexp over all entries)."""
    e = E.fn("exp", x)
    return E.scale(E.power(E.reduction("sum", e), E.const(-1)), e)


def _d_logsumexp(ctx, n, d):
    x = n.args[0]
    return E.inner(E.softmax(x) if x.kind == "vector" else _softmax_all(x), d(x))


def _mp_logsumexp(mp, a):
    xs = _entries(a)
    top = max(xs)
    return top + mp.log(mp.fsum(mp.exp(x - top) for x in xs))


declare(Operator(
    "logsumexp", "log-sum-exp",
    d=DRule("d logsumexp(x) = softmax(x)ᵀdx (logsumexp(X) of a matrix runs over all its "
            "entries: d = ⟨exp(X)/sum(exp(X)), dX⟩; by columns or rows it is "
            "logsumexp(X, 1) or logsumexp(X, 2))", _d_logsumexp),
    numeric=lambda n, a, s: _np_scalar(special.logsumexp(a[0])),
    exact=lambda sp, n, a, s: sp.Matrix([[sp.log(sum(sp.exp(x) for x in a[0]))]]),
    precise=lambda mp, n, a, s: mp.matrix([[_mp_logsumexp(mp, a[0])]]),
    spelling=Spelling("logsumexp", "logsumexp", r"\operatorname{logsumexp}"),
    lower={"numpy": lambda ctx, n, a: f"_logsumexp({a[0]})",
           "jax": _call("_logsumexp"), "torch": _call("_logsumexp")},
))


def _d_softmax(ctx, n, d):
    dz = d(n.args[0])
    return E.sub(E.hadamard(n, dz), E.scale(E.inner(n, dz), n))


def _sp_softmax(sp, a):
    e = a.applyfunc(sp.exp)
    return e / sum(e)


def _mp_softmax(mp, a):
    out = a.copy()
    for j in range(a.cols):
        col = [a[i, j] for i in range(a.rows)]
        top = max(col)
        e = [mp.exp(x - top) for x in col]
        total = mp.fsum(e)
        for i in range(a.rows):
            out[i, j] = e[i] / total
    return out


declare(Operator(
    "softmax", "softmax",
    d=DRule("d softmax(x) = s ⊙ dx − s·(sᵀdx), s = softmax(x)", _d_softmax),
    numeric=lambda n, a, s: special.softmax(a[0], axis=0),
    exact=lambda sp, n, a, s: _sp_softmax(sp, a[0]),
    precise=lambda mp, n, a, s: _mp_softmax(mp, a[0]),
    spelling=Spelling("softmax", "softmax", r"\operatorname{softmax}"),
    lower={"numpy": lambda ctx, n, a: f"_softmax({a[0]})",
           "jax": _call("_softmax"), "torch": _call("_softmax")},
))

# ---------------------------------------------------------------- diag, both ways

_DIAG = Spelling("diag", "diag", r"\operatorname{diag}")


def _peel_diag_embed(n, g):
    yield n.args[0], E.diag_extract(g)


declare(Operator(
    "diag_embed", "diagonal matrix",
    d=linear_d("d diag(v) = diag(dv)", lambda n, dv: E.diag_embed(dv)),
    peel=PeelRule("tr(Gᵀ diag(l)) = diag(G)ᵀ l", _peel_diag_embed),
    numeric=lambda n, a, s: np.diag(a[0][:, 0]),
    exact=lambda sp, n, a, s: sp.diag(*list(a[0])),
    precise=lambda mp, n, a, s: mp.diag([a[0][i, 0] for i in range(a[0].rows)]),
    spelling=_DIAG,
    lower={"numpy": lambda ctx, n, a: f"np.diag({a[0]})",
           "jax": _call("jnp.diag"), "torch": _call("torch.diag")},
))


def _peel_diag_extract(n, g):
    yield n.args[0], E.diag_embed(g)


declare(Operator(
    "diag_extract", "diagonal",
    d=linear_d("d diag(X) = diag(dX)", lambda n, dx: E.diag_extract(dx)),
    peel=PeelRule("g ᵀdiag(L) = tr(diag(g)ᵀ L)", _peel_diag_extract),
    numeric=lambda n, a, s: np.diag(a[0]).reshape(-1, 1).copy(),
    exact=lambda sp, n, a, s: sp.Matrix([a[0][i, i] for i in range(a[0].rows)]),
    precise=lambda mp, n, a, s: mp.matrix([[a[0][i, i]] for i in range(a[0].rows)]),
    spelling=_DIAG,
    lower={"numpy": lambda ctx, n, a: f"np.diag({a[0]}).copy()",
           "jax": _call("jnp.diag"), "torch": _call("torch.diag")},
))


# ---------------------------------------------------------------- the language's names


def _scalar_or(op: str, of_scalar):
    """A reduction of a scalar is the scalar itself (or its obvious counterpart)."""
    return lambda x, shape: of_scalar(x) if x.is_scalar else E.reduction(op, x)


declare_call(Call("tr", "square_to_scalar", lambda x, shape: E.trace(x)))
declare_call(Call("sum", "any_to_scalar", _scalar_or("sum", lambda x: x)))
declare_call(Call("norm1", "any_to_scalar", _scalar_or("norm1", lambda x: E.fn("abs", x))))
declare_call(Call("norm2", "any_to_scalar", _scalar_or("norm2", lambda x: E.fn("abs", x))))
declare_call(Call("logsumexp", "nonscalar_to_scalar",
                  lambda x, shape: E.reduction("logsumexp", x)))
declare_call(Call("softmax", "softmax", lambda x, shape: E.softmax(x)))
declare_call(Call("diag", "diag", lambda x, shape: E.diag_embed(x) if x.shape[1] is E.ONE
                  else E.diag_extract(x)))
