"""Inverses, powers and determinants, each with its textbook differential:
dX⁻¹ = −X⁻¹dX X⁻¹, d det X = det X tr(X⁻¹dX), d log det X = tr(X⁻¹dX)."""

from __future__ import annotations

from ..ir import expr as E
from .language import Call, declare_call
from .lazy import np
from .registry import POSTFIX, DRule, Operator, Spelling, declare


def _np_scalar(v):
    return np.full((1, 1), v)


# ---------------------------------------------------------------- inv


def _d_inv(ctx, n, d):
    return E.neg(E.matmul(n, d(n.args[0]), n))


def _np_inv(x):
    try:
        return np.linalg.inv(x)
    except np.linalg.LinAlgError:  # singular here: no value (the caller tries other data)
        return np.full(x.shape, np.nan)


declare(Operator(
    "inv", "inverse",
    d=DRule("rule 5: dX⁻¹ = −X⁻¹·dX·X⁻¹", _d_inv),
    numeric=lambda n, a, s: _np_inv(a[0]),
    exact=lambda sp, n, a, s: a[0].adjugate(method="berkowitz") / a[0].det(method="berkowitz"),
    precise=lambda mp, n, a, s: mp.inverse(a[0]),
    spelling=Spelling("inv", lambda p, n: (f"{p.at(n.args[0], POSTFIX)}⁻¹", POSTFIX),
                      lambda p, n: (rf"{p.at(n.args[0], POSTFIX)}^{{-1}}", POSTFIX)),
    lower={"numpy": lambda ctx, n, a: f"np.linalg.inv({a[0]})",
           "jax": lambda ctx, n, a: f"jnp.linalg.inv({a[0]})",
           "torch": lambda ctx, n, a: f"torch.linalg.inv({a[0]})"},
))

# ---------------------------------------------------------------- matpow (printed as a power)


def _d_matpow(ctx, n, d):
    x, k = n.args[0], n.attr
    dx = d(x)
    return E.add(*[E.matmul(E.matpow(x, j), dx, E.matpow(x, k - 1 - j)) for j in range(k)])


declare(Operator(
    "matpow", "matrix power",
    d=DRule("d(Xᵏ) = Σⱼ Xʲ·dX·Xᵏ⁻¹⁻ʲ", _d_matpow),
    numeric=lambda n, a, s: np.linalg.matrix_power(a[0], n.attr),
    exact=lambda sp, n, a, s: a[0] ** n.attr,
    precise=lambda mp, n, a, s: a[0] ** n.attr,
    lower={"numpy": lambda ctx, n, a: f"np.linalg.matrix_power({a[0]}, {n.attr})",
           "jax": lambda ctx, n, a: f"jnp.linalg.matrix_power({a[0]}, {n.attr})",
           "torch": lambda ctx, n, a: f"torch.linalg.matrix_power({a[0]}, {n.attr})"},
))

# ---------------------------------------------------------------- pow, epow


def _np_power(ctx, n, a):
    if n.args[1].op == "const" and n.args[1].attr == 2:
        return f"({a[0]} * {a[0]})" if a[0].isidentifier() else f"np.square({a[0]})"
    if n.args[0].is_scalar:  # NumPy's IEEE rules, not Python's exceptions: (-1)^0.5 = nan,
        return f"(_Float64({a[0]}) ** {a[1]})"  # 0^-1 = inf, 10^1000 = inf
    return f"({a[0]} ** {a[1]})"


def _xp_power(xp: str):
    """JAX's and PyTorch's powers: scalars are 0-d arrays there, IEEE without a cast."""
    def lower(ctx, n, a):
        if n.args[1].op == "const" and n.args[1].attr == 2:
            return f"({a[0]} * {a[0]})" if a[0].isidentifier() else f"{xp}.square({a[0]})"
        return f"({a[0]} ** {a[1]})"
    return lower


def _d_pow(ctx, n, d):
    a, b = n.args
    da, db = d(a), d(b)
    by_base = E.scale(E.scale(b, E.power(a, E.add(b, E.const(-1)))), da)
    by_exponent = E.scale(E.scale(n, E.fn("log", a)), db)
    return E.add(by_base, by_exponent)


def _d_epow(ctx, n, d):
    x, p = n.args
    by_base = E.hadamard(E.scale(p, E.epow(x, E.add(p, E.const(-1)))), d(x))
    by_exponent = E.scale(d(p), E.hadamard(n, E.fn("log", x)))
    return E.add(by_base, by_exponent)


def _sp_power(sp, a, b):
    return a.applyfunc(lambda x: x ** b[0, 0])


def _mp_power(mp, a, b):
    p = b[0, 0]
    if p == int(p):
        k = int(p)
        return a.apply(lambda x: x ** k)
    return a.apply(lambda x: mp.power(x, p))


declare(Operator(
    "pow", "power",
    d=DRule("d(aᵇ) = b·aᵇ⁻¹·da + aᵇ·log(a)·db", _d_pow),
    numeric=lambda n, a, s: np.power(a[0], a[1]),
    exact=lambda sp, n, a, s: _sp_power(sp, a[0], a[1]),
    precise=lambda mp, n, a, s: _mp_power(mp, a[0], a[1]),
    lower={"numpy": _np_power, "jax": _xp_power("jnp"), "torch": _xp_power("torch")},
))
declare(Operator(
    "epow", "element-wise power",
    d=DRule("d(X^∘p) = p·X^∘(p−1) ⊙ dX (+ X^∘p ⊙ log X · dp)", _d_epow),
    numeric=lambda n, a, s: np.power(a[0], a[1]),
    exact=lambda sp, n, a, s: _sp_power(sp, a[0], a[1]),
    precise=lambda mp, n, a, s: _mp_power(mp, a[0], a[1]),
    lower={"numpy": _np_power, "jax": _xp_power("jnp"), "torch": _xp_power("torch")},
))

# ---------------------------------------------------------------- det, logdet


def _d_det(ctx, n, d):
    x = n.args[0]
    return E.scale(n, E.trace(E.matmul(E.inv(x), d(x))))


def _d_logdet(ctx, n, d):
    x = n.args[0]
    return E.trace(E.matmul(E.inv(x), d(x)))


def _np_logdet(x):
    sign, value = np.linalg.slogdet(x)
    return value if sign > 0 else np.nan


def _mp_logdet(mp, a):
    d = mp.det(a)
    if d <= 0:
        raise ZeroDivisionError("logdet of a matrix with det ≤ 0")
    return mp.log(d)


declare(Operator(
    "det", "determinant",
    d=DRule("rule 6: d|X| = |X|·tr(X⁻¹dX)", _d_det),
    numeric=lambda n, a, s: _np_scalar(np.linalg.det(a[0])),
    exact=lambda sp, n, a, s: sp.Matrix([[a[0].det(method="berkowitz")]]),
    precise=lambda mp, n, a, s: mp.matrix([[mp.det(a[0])]]),
    spelling=Spelling("det", "det", r"\det"),
    lower={"numpy": lambda ctx, n, a: f"np.linalg.det({a[0]})",
           "jax": lambda ctx, n, a: f"jnp.linalg.det({a[0]})",
           "torch": lambda ctx, n, a: f"torch.linalg.det({a[0]})"},
))
declare(Operator(
    "logdet", "log-determinant",
    d=DRule("rules 6 and 8: d log|X| = tr(X⁻¹dX)", _d_logdet),
    numeric=lambda n, a, s: _np_scalar(_np_logdet(a[0])),
    exact=lambda sp, n, a, s: sp.Matrix([[sp.log(a[0].det(method="berkowitz"))]]),
    precise=lambda mp, n, a, s: mp.matrix([[_mp_logdet(mp, a[0])]]),
    spelling=Spelling("logdet", lambda p, n: p.call("log det", n.args[0]), r"\log\det"),
    lower={"numpy": lambda ctx, n, a: f"_logdet({a[0]}, {ctx.text(n.args[0])!r})",
           "jax": lambda ctx, n, a: f"_logdet({a[0]})",
           "torch": lambda ctx, n, a: f"_logdet({a[0]}, {ctx.text(n.args[0])!r})"},
))


# ---------------------------------------------------------------- the language's names

declare_call(Call("inv", "inv", lambda x, shape: E.inv(x)))
declare_call(Call("det", "square_to_scalar",
                  lambda x, shape: x if x.is_scalar else E.reduction("det", x)))
declare_call(Call("logdet", "square_to_scalar",
                  lambda x, shape: E.fn("log", x) if x.is_scalar else E.reduction("logdet", x)))
