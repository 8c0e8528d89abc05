"""Sums, products, transposes and constants: the operators every expression is made of.

Sums and transposes are linear (their differential and peel rule follow from linearity); the
three products share the Leibniz rule. How the notations write them (juxtaposition, ⊙, ᵀ) is
the printers' precedence machinery, not a spelling here."""

from __future__ import annotations

from ..ir import expr as E
from .combinators import constant_d, leibniz_d, linear_d, the_differential_factor
from .language import Call, declare_call
from .lazy import np
from .registry import DRule, Operator, PeelRule, declare

# ---------------------------------------------------------------- precise helpers


def _mp_sum(args):
    out = args[0]
    for b in args[1:]:
        out = out + b
    return out


def _mp_product(args):
    out = args[0]
    for b in args[1:]:
        out = out * b
    return out


def _mp_entrywise(mp, args, combine):
    out = args[0].copy()
    for b in args[1:]:
        for i in range(out.rows):
            for j in range(out.cols):
                out[i, j] = combine(out[i, j], b[i, j])
    return out


def _np_chain(factors):
    if 2 < len(factors) <= 8:
        return np.linalg.multi_dot(factors)
    out = factors[0]  # a long chain: left to right (multi_dot's order search is cubic)
    for b in factors[1:]:
        out = out @ b
    return out


def _sp_hadamard(a):
    out = a[0]
    for b in a[1:]:
        out = out.multiply_elementwise(b)
    return out


# ---------------------------------------------------------------- NumPy lowering


def _np_scale(ctx, n, a):
    if n.args[0].op == "const" and n.args[0].attr == -1:
        return f"(-{a[1]})"
    return f"({a[0]} * {a[1]})"


def _np_hdiv(ctx, n, a):
    if n.args[0].is_scalar and n.args[1].is_scalar:  # 1/0 = inf, as in NumPy
        return f"(_Float64({a[0]}) / {a[1]})"
    return f"({a[0]} / {a[1]})"


# ---------------------------------------------------------------- JAX and PyTorch lowering
# (scalars are 0-d arrays there, so IEEE division needs no cast; new arrays take the
# inputs' dtype, and in PyTorch their device: ctx.like)


def _xp_hdiv(ctx, n, a):
    return f"({a[0]} / {a[1]})"


def _xp_transpose(ctx, n, a):
    return a[0] if ctx.is_vector(n) or n.is_scalar else f"{a[0]}.T"


def _xp_filled(fn):
    return lambda ctx, n, a: f"{fn}({ctx.shape(n.shape)}, {ctx.like})"


def _xp_eye(fn):
    return lambda ctx, n, a: f"{fn}({ctx.dim(n.shape[0])}, {ctx.like})"


# ---------------------------------------------------------------- add


def _peel_add(n, g):
    for a in n.args:
        if E.has_differential(a):
            yield a, g


declare(Operator(
    "add", "sum",
    d=linear_d("rule 1: d(X ± Y) = dX ± dY", lambda n, *ds: E.add(*ds)),
    peel=PeelRule("trick 11: linearity, tr(A ± B) = tr(A) ± tr(B)", _peel_add),
    numeric=lambda n, a, s: sum(a[1:], a[0]),
    exact=lambda sp, n, a, s: sum(a[1:], a[0]),
    precise=lambda mp, n, a, s: _mp_sum(a),
))

# ---------------------------------------------------------------- scale: c·X


def _d_scale(ctx, n, d):
    c, x = n.args
    return E.add(E.scale(d(c), x), E.scale(c, d(x)))


def _peel_scale(n, g):
    c, x = n.args
    if E.has_differential(x):
        yield x, E.scale(c, g)
    else:  # the scalar factor carries the differential: ⟨G, dc·M⟩ = dc·⟨G, M⟩
        yield c, E.inner(g, x)


declare(Operator(
    "scale", "scaling",
    d=DRule("d(aX) = da·X + a·dX", _d_scale),
    peel=PeelRule("trick 11: linearity, a scalar factor moves out of the trace", _peel_scale),
    numeric=lambda n, a, s: a[0] * a[1],
    exact=lambda sp, n, a, s: a[1] * a[0][0, 0],
    precise=lambda mp, n, a, s: a[1] * a[0][0, 0],
    lower={"numpy": _np_scale, "jax": _np_scale, "torch": _np_scale},
))

# ---------------------------------------------------------------- matmul


def _peel_matmul(n, g):
    f = n.args
    i = the_differential_factor(n)
    left = [E.transpose(a) for a in reversed(f[:i])]
    right = [E.transpose(a) for a in reversed(f[i + 1:])]
    yield f[i], E.matmul(*left, g, *right) if (left or right) else g


declare(Operator(
    "matmul", "matrix product",
    d=leibniz_d("rule 2: d(XY) = dX·Y + X·dY", E.matmul),
    peel=PeelRule("trick 12: tr(AB) = tr(BA)", _peel_matmul),
    numeric=lambda n, a, s: _np_chain(a),
    exact=lambda sp, n, a, s: _mp_product(a),
    precise=lambda mp, n, a, s: _mp_product(a),
))

# ---------------------------------------------------------------- hadamard, hdiv


def _peel_hadamard(n, g):
    f = n.args
    i = the_differential_factor(n)
    yield f[i], E.hadamard(g, *f[:i], *f[i + 1:])


declare(Operator(
    "hadamard", "element-wise product",
    d=leibniz_d("rule 7: d(X ⊙ Y) = dX ⊙ Y + X ⊙ dY", E.hadamard),
    peel=PeelRule("trick 13: tr(Aᵀ(B ⊙ C)) = tr((A ⊙ B)ᵀC)", _peel_hadamard),
    numeric=lambda n, a, s: np.prod(np.stack(a), axis=0),
    exact=lambda sp, n, a, s: _sp_hadamard(a),
    precise=lambda mp, n, a, s: _mp_entrywise(mp, a, lambda x, y: x * y),
    lower={"numpy": lambda ctx, n, a: "(" + " * ".join(a) + ")",
           "jax": lambda ctx, n, a: "(" + " * ".join(a) + ")",
           "torch": lambda ctx, n, a: "(" + " * ".join(a) + ")"},
))


def _d_hdiv(ctx, n, d):
    a, b = n.args
    return E.sub(E.hdiv(d(a), b), E.hadamard(E.hdiv(a, E.epow(b, E.const(2))), d(b)))


def _peel_hdiv(n, g):
    yield n.args[0], E.hdiv(g, n.args[1])


declare(Operator(
    "hdiv", "element-wise division",
    d=DRule("d(X ⊘ Y) = dX ⊘ Y − X ⊙ dY ⊘ Y²", _d_hdiv),
    peel=PeelRule("tr(Gᵀ(L ⊘ S)) = tr((G ⊘ S)ᵀ L)", _peel_hdiv),
    numeric=lambda n, a, s: a[0] / a[1],
    exact=lambda sp, n, a, s: a[0].multiply_elementwise(a[1].applyfunc(lambda x: 1 / x)),
    precise=lambda mp, n, a, s: _mp_entrywise(mp, a, lambda x, y: x / y),
    lower={"numpy": _np_hdiv, "jax": _xp_hdiv, "torch": _xp_hdiv},
))

# ---------------------------------------------------------------- transpose


def _peel_transpose(n, g):
    yield n.args[0], E.transpose(g)


declare(Operator(
    "transpose", "transpose",
    d=linear_d("rule 3: d(Xᵀ) = (dX)ᵀ", lambda n, dx: E.transpose(dx)),
    peel=PeelRule("trick 10: tr(Aᵀ) = tr(A)", _peel_transpose),
    numeric=lambda n, a, s: a[0].T,
    exact=lambda sp, n, a, s: a[0].T,
    precise=lambda mp, n, a, s: a[0].T,
    lower={"numpy": lambda ctx, n, a: a[0] if ctx.is_vector(n) else f"{a[0]}.T",
           "jax": _xp_transpose, "torch": _xp_transpose},
))

# ---------------------------------------------------------------- constants


def _const_exact(sp, n):
    value = n.attr
    return sp.Rational(value.numerator, value.denominator) if hasattr(value, "numerator") \
        else sp.nsimplify(value)


def _const_precise(mp, n):
    value = n.attr
    if hasattr(value, "numerator"):
        return mp.mpf(value.numerator) / value.denominator
    return mp.mpf(value)


declare(Operator(
    "const", "number", d=constant_d(),
    numeric=lambda n, a, s: np.full((1, 1), float(n.attr)),
    exact=lambda sp, n, a, s: sp.Matrix([[_const_exact(sp, n)]]),
    precise=lambda mp, n, a, s: mp.matrix([[_const_precise(mp, n)]]),
    lower={"numpy": lambda ctx, n, a: repr(float(n.attr)),
           "jax": lambda ctx, n, a: repr(float(n.attr)),
           "torch": lambda ctx, n, a: repr(float(n.attr))},
))
declare(Operator(
    "zero", "zero", d=constant_d(),
    numeric=lambda n, a, s: np.zeros(s(n.shape)),
    exact=lambda sp, n, a, s: sp.zeros(*s(n.shape)),
    precise=lambda mp, n, a, s: mp.zeros(*s(n.shape)),
    lower={"numpy": lambda ctx, n, a: f"np.zeros({ctx.shape(n.shape)})",
           "jax": _xp_filled("jnp.zeros"), "torch": _xp_filled("torch.zeros")},
))
declare(Operator(
    "ones", "all-ones", d=constant_d(),
    numeric=lambda n, a, s: np.ones(s(n.shape)),
    exact=lambda sp, n, a, s: sp.ones(*s(n.shape)),
    precise=lambda mp, n, a, s: mp.ones(*s(n.shape)),
    lower={"numpy": lambda ctx, n, a: f"np.ones({ctx.shape(n.shape)})",
           "jax": _xp_filled("jnp.ones"), "torch": _xp_filled("torch.ones")},
))
declare(Operator(
    "eye", "identity", d=constant_d(),
    numeric=lambda n, a, s: np.eye(s(n.shape)[0]),
    exact=lambda sp, n, a, s: sp.eye(s(n.shape)[0]),
    precise=lambda mp, n, a, s: mp.eye(s(n.shape)[0]),
    lower={"numpy": lambda ctx, n, a: f"np.eye({ctx.dim(n.shape[0])})",
           "jax": _xp_eye("jnp.eye"), "torch": _xp_eye("torch.eye")},
))

# ---------------------------------------------------------------- the differential's marker


def _peel_marker(n, g):
    yield n.args[0], g


# d(node) wrapped so that it stays one node of the linear DAG where sums flatten: the trace
# pass reports ∂f/∂node for intermediates (∂l/∂a₂ in a network). Never in an expression.
declare(Operator("dnode", "differential of a node", peel=PeelRule("", _peel_marker)))


# ---------------------------------------------------------------- constants of given size

# vector(c), matrix(c): c times the all-ones vector or matrix whose size the context fixes
declare_call(Call("vector", "broadcast", lambda c, shape: E.scale(c, E.ones(shape))))
declare_call(Call("matrix", "broadcast", lambda c, shape: E.scale(c, E.ones(shape))))
