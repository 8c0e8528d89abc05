"""Matrix functions, spectral functions and factorizations (issue 15).

    expm(X), logm(X), sqrtm(X)   primary matrix functions of a square X; d f(X) = L_f(X, dX),
                                 the Fréchet derivative, with the adjoint ⟨G, L_f(X, E)⟩ =
                                 ⟨L_f(Xᵀ, G), E⟩ (real power series), so inside a trace the
                                 textbook rule d tr f(X) = tr(f'(X) dX) falls out (L_f(X, I) =
                                 f'(X)); for symmetric X, L_f(X, E) = U(F ⊙ UᵀEU)Uᵀ with F the
                                 divided differences of f at the eigenvalues (Daleckii–Krein)
    L_expm, L_logm, L_sqrtm      those Fréchet derivatives, in the language so gradients read
                                 back (linear in the second argument)
    eigmax(S), eigmin(S)         extreme eigenvalues of a symmetric S (of (S + Sᵀ)/2 when S is
                                 not symmetric): dλ = uᵀ dS u for a simple eigenvalue, with
                                 u = eigvecmax(S) (eigvecmin(S)), the unit eigenvector
    nucnorm(X), specnorm(X)      nuclear and spectral norms: gradients polar(X) = UVᵀ (full
                                 rank) and u₁v₁ᵀ (simple largest singular value)
    chol(S)                      the lower Cholesky factor of an spd S: dL = L Φ(L⁻¹ dS L⁻ᵀ),
                                 Φ = trilhalf (lower triangle, diagonal halved), self-adjoint
    pinv(X)                      the Moore–Penrose pseudo-inverse (constant, full rank)

Each operator is one declaration; NOTES says what a result using it assumes (printed with the
answer), DOMAIN says where the self-check may evaluate it (numeric._operation_problem)."""

from __future__ import annotations

from fractions import Fraction

from ..errors import DerivationError
from ..ir import expr as E
from .combinators import linear_d
from .language import Call, declare_call
from .lazy import Lazy, np
from .registry import DRule, Operator, PeelRule, Spelling, declare

sla = Lazy("scipy.linalg")

HALF = Fraction(1, 2)

# ---------------------------------------------------------------- builders


def _core(x: E.Node) -> E.Node:
    return x.args[1] if x.op == "scale" and not x.is_scalar else x


def _commutes(e: E.Node, x: E.Node) -> bool:
    """E commutes with X provably: I, X itself, or a function of X (scalings aside)."""
    e, x = _core(e), _core(x)
    if e.op == "eye" or e is x:
        return True
    return e.op in ("inv", "matpow", "expm", "logm", "sqrtm") and _core(e.args[0]) is x


SCALAR_FN = {"expm": "exp", "logm": "log", "sqrtm": "sqrt"}


def matfun(op: str, x: E.Node) -> E.Node:
    """expm, logm or sqrtm of x, with f(Xᵀ) = f(X)ᵀ."""
    if x.is_scalar:
        return E.fn(SCALAR_FN[op], x)
    if x.op == "transpose":
        return E.transpose(matfun(op, x.args[0]))
    if x.op == "eye":
        return E.zero(x.shape) if op == "logm" else x
    if E.is_zero(x) and op == "expm":
        return E.eye(x.shape[0])
    return _symmetric_if(E.make(op, (x,), None, x.shape), E.is_symmetric(x))


def derivative_at(op: str, x: E.Node) -> E.Node:
    """f'(X) for a primary matrix function: the Fréchet derivative along E commuting with X."""
    if op == "expm":
        return matfun("expm", x)
    if op == "logm":
        return E.inv(x)
    return E.scale(E.const(HALF), E.inv(matfun("sqrtm", x)))


FRECHET = {"expm": "L_expm", "logm": "L_logm", "sqrtm": "L_sqrtm"}
OF_FRECHET = {v: k for k, v in FRECHET.items()}


def frechet(op: str, x: E.Node, e: E.Node) -> E.Node:
    """L_f(X, E), the Fréchet derivative of f = op at X in the direction E."""
    if E.is_zero(e):
        return E.zero(x.shape)
    if x.is_scalar:
        return E.scale(_scalar_derivative(op, x), e)
    inner = e
    while inner.op == "dnode":  # d(t·A) = dt·A: the scalar comes out of L_f
        inner = inner.args[0]
    if inner.op == "scale":
        return E.scale(inner.args[0], frechet(op, x, inner.args[1]))
    if _commutes(inner, x):
        return E.matmul(derivative_at(op, x), e)
    return _symmetric_if(E.make(FRECHET[op], (x, e), None, x.shape),
                         E.is_symmetric(x) and E.is_symmetric(e))


def _symmetric_if(node: E.Node, symmetric: bool) -> E.Node:
    """Tell the IR's symmetry test (a per-node memo) what it cannot see in a new operator."""
    node.memo("sym", lambda _n: symmetric)
    return node


def _scalar_derivative(op: str, x: E.Node) -> E.Node:
    if op == "expm":
        return E.fn("exp", x)
    if op == "logm":
        return E.power(x, E.const(-1))
    return E.scale(E.const(HALF), E.power(E.fn("sqrt", x), E.const(-1)))


def spectral(op: str, x: E.Node) -> E.Node:
    """eigmax / eigmin (scalars), eigvecmax / eigvecmin (unit vectors)."""
    if x.is_scalar:
        return x if op in ("eigmax", "eigmin") else E.const(1)
    if x.op == "transpose":
        x = x.args[0]  # the same symmetric part
    shape = E.SCALAR if op in ("eigmax", "eigmin") else (x.shape[0], E.ONE)
    return E.make(op, (x,), None, shape)


def norm(op: str, x: E.Node) -> E.Node:
    """nucnorm / specnorm; of a vector, both are the 2-norm."""
    if x.shape[0] is E.ONE or x.shape[1] is E.ONE:
        return E.reduction("norm2", x)
    if x.op == "transpose":
        return norm(op, x.args[0])
    return E.make(op, (x,), None, E.SCALAR)


def polar(x: E.Node) -> E.Node:
    """UVᵀ from the thin SVD X = UΣVᵀ (x/‖x‖ for a vector, sign(a) for a scalar)."""
    if x.is_scalar:
        return E.fn("sign", x)
    if x.shape[0] is E.ONE or x.shape[1] is E.ONE:
        return E.scale(E.power(E.reduction("norm2", x), E.const(-1)), x)
    if x.op == "transpose":
        return E.transpose(polar(x.args[0]))
    return _symmetric_if(E.make("polar", (x,), None, x.shape), E.is_symmetric(x))


def chol(x: E.Node) -> E.Node:
    if x.is_scalar:
        return E.fn("sqrt", x)
    if x.op == "eye":
        return x
    return E.make("chol", (x,), None, x.shape)


def trilhalf(x: E.Node) -> E.Node:
    """Φ(M): the lower triangle of M with its diagonal halved (0 above the diagonal)."""
    if x.is_scalar:
        return E.scale(E.const(HALF), x)
    if E.is_zero(x):
        return x
    if x.op == "scale":
        return E.scale(x.args[0], trilhalf(x.args[1]))
    if x.op == "eye":
        return E.scale(E.const(HALF), x)
    if x.op == "add":
        return E.add(*[trilhalf(t) for t in x.args])
    return E.make("trilhalf", (x,), None, x.shape)


def pinv(x: E.Node) -> E.Node:
    if x.is_scalar:
        return E.power(x, E.const(-1))
    if x.op == "transpose":
        return E.transpose(pinv(x.args[0]))
    if x.op == "eye":
        return x
    return _symmetric_if(E.make("pinv", (x,), None, (x.shape[1], x.shape[0])),
                         E.is_symmetric(x))


E.BUILDERS.update({
    "expm": lambda n, a: matfun("expm", a[0]),
    "logm": lambda n, a: matfun("logm", a[0]),
    "sqrtm": lambda n, a: matfun("sqrtm", a[0]),
    "L_expm": lambda n, a: frechet("expm", a[0], a[1]),
    "L_logm": lambda n, a: frechet("logm", a[0], a[1]),
    "L_sqrtm": lambda n, a: frechet("sqrtm", a[0], a[1]),
    "eigmax": lambda n, a: spectral("eigmax", a[0]),
    "eigmin": lambda n, a: spectral("eigmin", a[0]),
    "eigvecmax": lambda n, a: spectral("eigvecmax", a[0]),
    "eigvecmin": lambda n, a: spectral("eigvecmin", a[0]),
    "nucnorm": lambda n, a: norm("nucnorm", a[0]),
    "specnorm": lambda n, a: norm("specnorm", a[0]),
    "polar": lambda n, a: polar(a[0]),
    "chol": lambda n, a: chol(a[0]),
    "trilhalf": lambda n, a: trilhalf(a[0]),
    "pinv": lambda n, a: pinv(a[0]),
})


def _sym(x: E.Node) -> E.Node:
    """The symmetric part (X + Xᵀ)/2, X itself when provably symmetric."""
    if E.is_symmetric(x):
        return x
    return E.scale(E.const(HALF), E.add(x, E.transpose(x)))


# ---------------------------------------------------------------- float64 evaluation


def _nan(shape):
    return np.full(shape, np.nan)


def _is_sym(a, tol=1e-10) -> bool:
    return a.shape[0] == a.shape[1] and \
        np.max(np.abs(a - a.T), initial=0.0) <= tol * max(1.0, np.max(np.abs(a), initial=0.0))


SCALAR_NP = {"expm": lambda w: np.exp(w), "logm": lambda w: np.log(w),
             "sqrtm": lambda w: np.sqrt(w)}


def _divided(op: str, w):
    """F_ij = (f(λi) − f(λj))/(λi − λj), f'(λi) on (near-)ties: the Daleckii–Krein kernel."""
    f = SCALAR_NP[op](w)
    fp = {"expm": f, "logm": 1.0 / w, "sqrtm": 0.5 / np.where(f > 0, f, np.nan)}[op]
    dw = w[:, None] - w[None, :]
    close = np.abs(dw) <= 1e-9 * np.maximum(1.0, np.abs(w[:, None]))
    with np.errstate(all="ignore"):
        k = np.where(close, 0.0, (f[:, None] - f[None, :]) / np.where(close, 1.0, dw))
    mid = (fp[:, None] + fp[None, :]) / 2
    return np.where(close, mid, k)


def _np_matfun(op: str, a):
    if not np.all(np.isfinite(a)):
        return _nan(a.shape)
    if _is_sym(a):
        w, u = np.linalg.eigh((a + a.T) / 2)
        if op != "expm" and np.min(w) <= 0:
            return _nan(a.shape)
        return (u * SCALAR_NP[op](w)) @ u.T
    if op == "expm":
        return sla.expm(a)
    if np.any((np.abs(np.linalg.eigvals(a).imag) <= 1e-12) & (np.linalg.eigvals(a).real <= 0)):
        return _nan(a.shape)
    out = sla.logm(a) if op == "logm" else sla.sqrtm(a)
    out = np.asarray(out)
    if np.iscomplexobj(out):
        if np.max(np.abs(out.imag)) > 1e-8 * max(1.0, np.max(np.abs(out.real))):
            return _nan(a.shape)
        out = out.real
    return out


def _np_frechet(op: str, x, e):
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(e))):
        return _nan(x.shape)
    if _is_sym(x):
        w, u = np.linalg.eigh((x + x.T) / 2)
        if op != "expm" and np.min(w) <= 0:
            return _nan(x.shape)
        return u @ (_divided(op, w) * (u.T @ e @ u)) @ u.T
    if op == "expm":
        return sla.expm_frechet(x, e, compute_expm=False)
    r = _np_matfun("sqrtm", x)
    if op == "sqrtm":
        return sla.solve_sylvester(r, r, e) if np.all(np.isfinite(r)) else _nan(x.shape)
    n = x.shape[0]  # the block identity: log([[X, E], [0, X]]) = [[log X, L(X, E)], [0, log X]]
    big = np.block([[x, e], [np.zeros_like(x), x]])
    out = _np_matfun("logm", big)
    return out[:n, n:]


def _np_sympart(a):
    return (a + a.T) / 2


def _unit_sign(v):
    """The eigenvector's sign: its entry of largest magnitude positive."""
    i = int(np.argmax(np.abs(v)))
    return v if v[i] >= 0 else -v


def _np_spectral(op: str, a):
    if not np.all(np.isfinite(a)):
        return _nan((1, 1) if op.startswith("eig") and "vec" not in op else (a.shape[0], 1))
    w, u = np.linalg.eigh(_np_sympart(a))
    if op == "eigmax":
        return np.full((1, 1), w[-1])
    if op == "eigmin":
        return np.full((1, 1), w[0])
    v = u[:, -1] if op == "eigvecmax" else u[:, 0]
    return _unit_sign(v).reshape(-1, 1)


def _np_svd(a):
    return np.linalg.svd(a, full_matrices=False)


def _np_singular(a):
    if not np.all(np.isfinite(a)):
        return np.full(min(a.shape), np.nan)
    return np.linalg.svd(a, compute_uv=False)


def _np_polar(a):
    if not np.all(np.isfinite(a)):
        return _nan(a.shape)
    u, _, vt = _np_svd(a)
    return u @ vt


def _np_chol(a):
    if not (np.all(np.isfinite(a)) and _is_sym(a, 1e-8)):
        return _nan(a.shape)
    try:
        return np.linalg.cholesky((a + a.T) / 2)
    except np.linalg.LinAlgError:
        return _nan(a.shape)


def _np_trilhalf(a):
    return np.tril(a, -1) + np.diag(np.diag(a)) / 2


def eig_shift(x: E.Node) -> bool:
    """Whether x is λI − S of an eigenvector's derivative (λ = eigmax(S) or eigmin(S)): singular
    by construction, of rank n − 1 for a simple λ. Its zero eigenvalue is rounding of the size
    of ε·|λ|, which pinv's cutoff (relative to ‖λI − S‖) can take for a real one and invert to
    ~10¹⁵, so its pseudo-inverse drops the eigenvalue nearest 0 instead."""
    return x.op == "add" and any(t.op == "scale" and t.args[1].op == "eye" and
                                 t.args[0].op in ("eigmax", "eigmin") for t in x.args)


def _np_pinv(a, corank1=False):
    if not np.all(np.isfinite(a)):
        return _nan((a.shape[1], a.shape[0]))
    if corank1:
        w, u = np.linalg.eigh((a + a.T) / 2)
        inverse = 1.0 / np.where(w == 0.0, 1.0, w)
        inverse[np.argmin(np.abs(w))] = 0.0
        return (u * inverse) @ u.T
    return np.linalg.pinv(a)


# ---------------------------------------------------------------- mpmath (50 digits)


def _mp_real(mp, m):
    """A matrix computed in complex arithmetic that is real (the imaginary parts rounding)."""
    out = mp.matrix(m.rows, m.cols)
    big = max([abs(m[i, j]) for i in range(m.rows) for j in range(m.cols)] + [mp.mpf(1)])
    for i in range(m.rows):
        for j in range(m.cols):
            z = m[i, j]
            if abs(mp.im(z)) > mp.mpf(10) ** (-mp.mp.dps // 2) * big:
                raise ValueError("the matrix function is not real here")
            out[i, j] = mp.re(z)
    return out


def _mp_sym(mp, a):
    return (a + a.T) / 2


def _mp_eigsy(mp, a):
    w, q = mp.eigsy(_mp_sym(mp, a))
    order = sorted(range(len(w)), key=lambda i: w[i])
    return [w[i] for i in order], q, order


def _mp_matfun(mp, op: str, a):
    if op != "expm":
        w, _, _ = _mp_eigsy(mp, a) if _mp_is_sym(mp, a) else (None, None, None)
        if w is not None and min(w) <= 0:
            raise ValueError("not positive definite")
    fn = {"expm": mp.expm, "logm": mp.logm, "sqrtm": mp.sqrtm}[op]
    return _mp_real(mp, fn(a))


def _mp_is_sym(mp, a) -> bool:
    return all(a[i, j] == a[j, i] for i in range(a.rows) for j in range(i))


def _mp_frechet(mp, op: str, x, e):
    """The block identity f([[X, E], [0, X]]) = [[f(X), L_f(X, E)], [0, f(X)]]."""
    n = x.rows
    big = mp.zeros(2 * n, 2 * n)
    for i in range(n):
        for j in range(n):
            big[i, j] = big[n + i, n + j] = x[i, j]
            big[i, n + j] = e[i, j]
    if op != "expm" and _mp_is_sym(mp, x) and min(_mp_eigsy(mp, x)[0]) <= 0:
        raise ValueError("not positive definite")
    fn = {"expm": mp.expm, "logm": mp.logm, "sqrtm": mp.sqrtm}[op]
    out = _mp_real(mp, fn(big))
    return mp.matrix([[out[i, n + j] for j in range(n)] for i in range(n)])


def _mp_spectral(mp, op: str, a):
    w, q, order = _mp_eigsy(mp, a)
    if op == "eigmax":
        return mp.matrix([[w[-1]]])
    if op == "eigmin":
        return mp.matrix([[w[0]]])
    k = order[-1] if op == "eigvecmax" else order[0]
    v = [q[i, k] for i in range(a.rows)]
    top = max(range(len(v)), key=lambda i: abs(v[i]))
    sign = 1 if v[top] >= 0 else -1
    return mp.matrix([[sign * x] for x in v])


def _mp_svd(mp, a):
    u, s, v = mp.svd_r(a, full_matrices=False, compute_uv=True)
    return u, s, v  # a = u diag(s) v


def _mp_norm(mp, op: str, a):
    s = mp.svd_r(a, compute_uv=False)
    values = [s[i] for i in range(len(s))]
    return mp.matrix([[mp.fsum(values) if op == "nucnorm" else max(values)]])


def _mp_polar(mp, a):
    u, _, v = _mp_svd(mp, a)
    return u * v


def _mp_chol(mp, a):
    if not _mp_is_sym(mp, a):
        raise ValueError("chol of a matrix that is not symmetric")
    return mp.cholesky(a)


def _mp_trilhalf(mp, a):
    out = mp.zeros(a.rows, a.cols)
    for i in range(a.rows):
        for j in range(min(i + 1, a.cols)):
            out[i, j] = a[i, j] / 2 if i == j else a[i, j]
    return out


def _mp_pinv(mp, a, corank1=False):
    if corank1:  # λI − S: its eigenvalue nearest 0 is 0 (see eig_shift)
        w, u = mp.eigsy((a + a.T) / 2)
        k = min(range(len(w)), key=lambda i: abs(w[i]))
        out = mp.zeros(a.rows, a.cols)
        for i in range(len(w)):
            if i != k:
                out += (u[:, i] * u[:, i].T) / w[i]
        return out
    if a.rows >= a.cols:
        return mp.inverse(a.T * a) * a.T
    return a.T * mp.inverse(a * a.T)


# ---------------------------------------------------------------- SymPy (where it can)


def _sp_none(what: str):
    def fail(sp, n, a, s):
        raise ValueError(f"SymPy has no exact {what}")  # exact.py: 'could not evaluate it'
    return fail


def _sp_trilhalf(sp, a):
    return sp.Matrix(a.rows, a.cols, lambda i, j: a[i, j] if i > j else
                     (a[i, j] / 2 if i == j else 0))


def _sp_pinv(sp, a):
    if a.rows >= a.cols:
        return (a.T * a).inv(method="ADJ") * a.T
    return a.T * (a * a.T).inv(method="ADJ")


# ---------------------------------------------------------------- differentials


def _second_order(name: str):
    return DerivationError(
        f"the derivative of {name}(X, E) with respect to X needs the second Fréchet "
        "derivative, which matdiff does not have (its derivative in E is itself)")


def _d_matfun(op: str):
    def apply(ctx, n, d):
        x = n.args[0]
        return frechet(op, x, d(x))
    return apply


def _d_frechet(op: str):
    def apply(ctx, n, d):
        x, e = n.args
        if not E.is_zero(d(x)):
            raise _second_order(FRECHET[op])
        return frechet(op, x, d(e))
    return apply


def _peel_frechet(op: str):
    def apply(n, g):  # ⟨G, L_f(X, E)⟩ = ⟨L_f(Xᵀ, G), E⟩
        x, e = n.args
        yield e, frechet(op, E.transpose(x), g)
    return apply


def _d_eig(ctx, n, d):
    x = n.args[0]
    u = spectral("eigvecmax" if n.op == "eigmax" else "eigvecmin", x)
    return E.matmul(E.transpose(u), d(x), u)


def _d_eigvec(ctx, n, d):
    """du = (λI − S)⁺ dS u for the unit eigenvector u of a simple eigenvalue λ of S = sym(X)."""
    x = n.args[0]
    s = _sym(x)
    lam = spectral("eigmax" if n.op == "eigvecmax" else "eigmin", x)
    shifted = E.sub(E.scale(lam, E.eye(x.shape[0])), s)
    return E.matmul(pinv(shifted), d(s), n)


def _d_nucnorm(ctx, n, d):
    x = n.args[0]
    return E.inner(polar(x), d(x))


def _d_specnorm(ctx, n, d):
    x = n.args[0]  # σ₁ = ‖X‖₂, v₁ = eigvecmax(XᵀX), u₁ = Xv₁/σ₁: dσ₁ = u₁ᵀ dX v₁
    v = spectral("eigvecmax", E.matmul(E.transpose(x), x))
    return E.scale(E.power(n, E.const(-1)), E.matmul(E.transpose(E.matmul(x, v)), d(x), v))


def _d_polar(ctx, n, d):
    """polar(X) = X (XᵀX)^(−1/2) for full column rank: differentiated through that form."""
    x = n.args[0]
    form = E.matmul(x, E.inv(matfun("sqrtm", E.matmul(E.transpose(x), x))))
    return d(form)


def _d_chol(ctx, n, d):
    s = n.args[0]  # L = chol(S): dL = L Φ(L⁻¹ dS L⁻ᵀ)
    inv = E.inv(n)
    return E.matmul(n, trilhalf(E.matmul(inv, d(s), E.transpose(inv))))


def _d_pinv(ctx, n, d):
    """dX⁺ = −X⁺dX X⁺ + X⁺X⁺ᵀdXᵀ(I − XX⁺) + (I − X⁺X)dXᵀX⁺ᵀX⁺ (constant rank)."""
    x = n.args[0]
    dx = d(x)
    p, pt, dxt = n, E.transpose(n), E.transpose(dx)
    left = E.sub(E.eye(x.shape[0]), E.matmul(x, p))
    right = E.sub(E.eye(x.shape[1]), E.matmul(p, x))
    return E.add(E.neg(E.matmul(p, dx, p)), E.matmul(p, pt, dxt, left),
                 E.matmul(right, dxt, pt, p))


def _peel_trilhalf(n, g):  # Φ is self-adjoint: ⟨G, Φ(M)⟩ = ⟨Φ(G), M⟩
    yield n.args[0], trilhalf(g)


# ---------------------------------------------------------------- lowering (every target)
#
# One factorization per matrix and function body: the eigendecomposition of the symmetric part
# (`_factor('eigh', X)`) or the thin SVD (`_factor('svd', X)`) is a statement of its own, named
# once (LoweringContext.once, keyed by the argument node) and read by f and every gradient term
# that needs it: expm/logm/sqrtm of a symmetric X and their Fréchet derivatives, eigmax/eigmin
# and their eigenvectors, nucnorm and polar, specnorm and its singular vectors. Where no term
# needs the vectors, only the values are computed. Each backend's helper library defines
# _factor, _matfun_eig, _frechet_eig and _eigvec_eig (codegen/backends/*.py).

XP = {"numpy": "np", "jax": "jnp", "torch": "torch"}

# operators that read the eigenvectors of their (symmetric) first argument
_EIG_VECTORS = {"eigvecmax", "eigvecmin", "expm", "logm", "sqrtm", "L_expm", "L_logm",
                "L_sqrtm"}


def _stem(x: E.Node, what: str) -> str:
    return f"{x.attr[0]}_{what}" if x.op == "var" and str(x.attr[0]).isidentifier() else what


def _kind(x: E.Node, kind: str) -> str:
    return f"symmetric {kind}" if E.is_symmetric(x) else kind


def _eigh(ctx, x: E.Node, a: str) -> str:
    return ctx.once(("eigh", x), f"_factor({_kind(x, 'eigh')!r}, {a})", _stem(x, "eig"))


def _needs_eigvecs(ctx, x: E.Node) -> bool:
    return any(m.op in _EIG_VECTORS and m.args[0] is x and
               (m.op.startswith("eigvec") or E.is_symmetric(x)) for m in ctx.nodes)


def _gram_of(x: E.Node) -> E.Node | None:
    """X when x is XᵀX (the plan's binary product)."""
    if x.op == "matmul" and len(x.args) == 2 and x.args[0].op == "transpose" and \
            x.args[0].args[0] is x.args[1]:
        return x.args[1]
    return None


def _needs_svd(ctx, x: E.Node) -> bool:
    return any((m.op == "polar" and m.args[0] is x) or
               (m.op == "eigvecmax" and _gram_of(m.args[0]) is x) for m in ctx.nodes)


def _svd(ctx, x: E.Node, a: str) -> str:
    return ctx.once(("svd", x), f"_factor('svd', {a})", _stem(x, "svd"))


def _singular_values(ctx, x: E.Node, a: str) -> str:
    """The singular values of x: from the shared SVD when some term needs the vectors."""
    if _needs_svd(ctx, x) or ("svd", x) in ctx.shared:
        return f"{_svd(ctx, x, a)}[1]"
    return ctx.once(("svdvals", x), f"_factor('svdvals', {a})", _stem(x, "sv"))


def _lower_matfun(target: str, op: str):
    general = {"numpy": {"expm": "sla.expm({})", "logm": "_logm({})", "sqrtm": "_sqrtm({})"},
               "jax": {"expm": "jsla.expm({})"},
               "torch": {"expm": "torch.linalg.matrix_exp({})"}}[target]

    def lower(ctx, n, a):
        x = n.args[0]
        if E.is_symmetric(x):
            return f"_matfun_eig({_eigh(ctx, x, a[0])}, {op!r})"
        if op == "sqrtm" and target == "numpy":  # shared with L_sqrtm's Sylvester equation
            return ctx.once(("sqrtm", x), f"_sqrtm({a[0]})", _stem(x, "sqrt"))
        spelling = general.get(op)
        return None if spelling is None else spelling.format(a[0])
    return lower


def _lower_frechet(target: str, op: str):
    def lower(ctx, n, a):
        x = n.args[0]
        if E.is_symmetric(x):
            return f"_frechet_eig({_eigh(ctx, x, a[0])}, {a[1]}, {op!r})"
        if op == "expm":
            return {"numpy": f"sla.expm_frechet({a[0]}, {a[1]}, compute_expm=False)",
                    "jax": f"jsla.expm_frechet({a[0]}, {a[1]}, compute_expm=False)",
                    "torch": f"_expm_frechet({a[0]}, {a[1]})"}[target]
        if target != "numpy":
            return None
        if op == "logm":
            return f"_L_logm({a[0]}, {a[1]})"
        # sqrtm(X) R + R sqrtm(X) = E, with sqrtm(X) shared (sqrtm(Xᵀ) = sqrtm(X)ᵀ)
        y, t = (x.args[0], ".T") if x.op == "transpose" else (x, "")
        text = ctx.names.get(y, a[0][:-2] if t else a[0])
        r = ctx.once(("sqrtm", y), f"_sqrtm({text})", _stem(y, "sqrt")) + t
        return f"sla.solve_sylvester({r}, {r}, {a[1]})"
    return lower


def _lower_spectral(target: str, op: str):
    def lower(ctx, n, a):
        x = n.args[0]
        last = op.endswith("max")
        if op.startswith("eigvec"):
            y = _gram_of(x)
            if op == "eigvecmax" and y is not None and ("svd", y) in ctx.shared:
                # v₁ of XᵀX is X's first right singular vector: from the SVD specnorm made
                return f"_eigvec_svd({ctx.shared[('svd', y)]})"
            return f"_eigvec_eig({_eigh(ctx, x, a[0])}, {last})"
        if _needs_eigvecs(ctx, x) or ("eigh", x) in ctx.shared:
            return f"{_eigh(ctx, x, a[0])}[0][{-1 if last else 0}]"
        w = ctx.once(("eigvalsh", x), f"_factor({_kind(x, 'eigvalsh')!r}, {a[0]})",
                     _stem(x, "eigvals"))
        return f"{w}[{-1 if last else 0}]"
    return lower


def _lower_nucnorm(target: str):
    return lambda ctx, n, a: f"{XP[target]}.sum({_singular_values(ctx, n.args[0], a[0])})"


def _lower_specnorm(target: str):
    return lambda ctx, n, a: f"{_singular_values(ctx, n.args[0], a[0])}[0]"


def _lower_polar(target: str):
    def lower(ctx, n, a):
        f = _svd(ctx, n.args[0], a[0])
        return f"({f}[0] @ {f}[2])"
    return lower


def _lower_chol(target: str):
    return lambda ctx, n, a: {
        "numpy": f"sla.cholesky({a[0]}, lower=True, check_finite=False)",
        "jax": f"jnp.linalg.cholesky({a[0]})",
        # torch: cholesky_ex, raising LinAlgError on the CPU only (no device sync)
        "torch": f"_chol({a[0]}, {ctx.text(n.args[0])!r})"}[target]


def _every(make) -> dict:
    return {target: make(target) for target in XP}


# ---------------------------------------------------------------- declarations

_NAMES = {"expm": ("matrix exponential", r"\exp"), "logm": ("matrix logarithm", r"\log"),
          "sqrtm": ("matrix square root", None)}

for _op, (_label, _tex) in _NAMES.items():
    declare(Operator(
        _op, _label,
        d=DRule({"expm": "d expm(X) = L_exp(X, dX), the Fréchet derivative of expm at X",
                 "logm": "d logm(X) = L_log(X, dX), the Fréchet derivative of logm at X",
                 "sqrtm": "d sqrtm(X) = L_sqrt(X, dX): sqrtm(X) dR + dR sqrtm(X) = dX"}[_op],
                _d_matfun(_op)),
        numeric=lambda n, a, s, op=_op: _np_matfun(op, a[0]),
        exact=(lambda sp, n, a, s: a[0].exp()) if _op == "expm" else _sp_none(_label),
        precise=lambda mp, n, a, s, op=_op: _mp_matfun(mp, op, a[0]),
        spelling=Spelling(_op, _op, r"\operatorname{" + _op + "}"),
        lower=_every(lambda t, op=_op: _lower_matfun(t, op)),
    ))
    _fop = FRECHET[_op]
    declare(Operator(
        _fop, f"Fréchet derivative of {_op}",
        d=DRule(f"{_fop}(X, E) is linear in E", _d_frechet(_op)),
        peel=PeelRule(f"adjoint of the Fréchet derivative: tr(Gᵀ {_fop}(X, E)) = "
                      f"tr({_fop}(Xᵀ, G)ᵀ E)", _peel_frechet(_op)),
        numeric=lambda n, a, s, op=_op: _np_frechet(op, a[0], a[1]),
        exact=_sp_none("Fréchet derivative"),
        precise=lambda mp, n, a, s, op=_op: _mp_frechet(mp, op, a[0], a[1]),
        spelling=Spelling(_fop, _fop, r"\operatorname{" + _fop.replace("_", r"\_") + "}"),
        lower=_every(lambda t, op=_op: _lower_frechet(t, op)),
    ))

for _op, _label in (("eigmax", "largest eigenvalue"), ("eigmin", "smallest eigenvalue")):
    declare(Operator(
        _op, _label,
        d=DRule(f"d {_op}(S) = uᵀ dS u, u = eigvec{_op[3:]}(S) (simple eigenvalue)", _d_eig),
        numeric=lambda n, a, s, op=_op: _np_spectral(op, a[0]),
        exact=_sp_none("eigenvalue"),
        precise=lambda mp, n, a, s, op=_op: _mp_spectral(mp, op, a[0]),
        spelling=Spelling(_op, _op, r"\operatorname{" + _op + "}"),
        lower=_every(lambda t, op=_op: _lower_spectral(t, op)),
    ))
    _vop = "eigvec" + _op[3:]
    declare(Operator(
        _vop, f"unit eigenvector of the {_label}",
        d=DRule(f"d u = (λI − S)⁺ dS u for u = {_vop}(S), λ = {_op}(S)", _d_eigvec),
        numeric=lambda n, a, s, op=_vop: _np_spectral(op, a[0]),
        exact=_sp_none("eigenvector"),
        precise=lambda mp, n, a, s, op=_vop: _mp_spectral(mp, op, a[0]),
        spelling=Spelling(_vop, _vop, r"\operatorname{" + _vop + "}"),
        lower=_every(lambda t, op=_vop: _lower_spectral(t, op)),
    ))

declare(Operator(
    "nucnorm", "nuclear norm",
    d=DRule("d‖X‖_* = tr((UVᵀ)ᵀ dX), UVᵀ = polar(X) (full rank)", _d_nucnorm),
    numeric=lambda n, a, s: np.full((1, 1), np.sum(_np_singular(a[0]))),
    exact=_sp_none("singular value"),
    precise=lambda mp, n, a, s: _mp_norm(mp, "nucnorm", a[0]),
    spelling=Spelling("nucnorm", lambda p, n: (f"‖{p.doc(n.args[0])}‖_*", 6),
                      lambda p, n: (rf"\left\|{p.doc(n.args[0])}\right\|_*", 6)),
    lower=_every(_lower_nucnorm),
))
declare(Operator(
    "specnorm", "spectral norm",
    d=DRule("d‖X‖₂ = u₁ᵀ dX v₁ (simple largest singular value σ₁, Xv₁ = σ₁u₁)", _d_specnorm),
    numeric=lambda n, a, s: np.full((1, 1), np.max(_np_singular(a[0]))),
    exact=_sp_none("singular value"),
    precise=lambda mp, n, a, s: _mp_norm(mp, "specnorm", a[0]),
    spelling=Spelling("specnorm", lambda p, n: (f"‖{p.doc(n.args[0])}‖₂", 6),
                      lambda p, n: (rf"\left\|{p.doc(n.args[0])}\right\|_2", 6)),
    lower=_every(_lower_specnorm),
))
declare(Operator(
    "polar", "polar factor UVᵀ",
    d=DRule("polar(X) = X(XᵀX)^(−1/2) (full column rank)", _d_polar),
    numeric=lambda n, a, s: _np_polar(a[0]),
    exact=_sp_none("singular value decomposition"),
    precise=lambda mp, n, a, s: _mp_polar(mp, a[0]),
    spelling=Spelling("polar", "polar", r"\operatorname{polar}"),
    lower=_every(_lower_polar),
))
declare(Operator(
    "chol", "Cholesky factor",
    d=DRule("d chol(S) = L Φ(L⁻¹ dS L⁻ᵀ), L = chol(S), Φ = lower triangle with the diagonal "
            "halved", _d_chol),
    numeric=lambda n, a, s: _np_chol(a[0]),
    exact=lambda sp, n, a, s: a[0].cholesky(hermitian=False),
    precise=lambda mp, n, a, s: _mp_chol(mp, a[0]),
    spelling=Spelling("chol", "chol", r"\operatorname{chol}"),
    lower=_every(_lower_chol),
))
declare(Operator(
    "trilhalf", "lower triangle, diagonal halved",
    d=linear_d("d Φ(M) = Φ(dM)", lambda n, dx: trilhalf(dx)),
    peel=PeelRule("Φ is self-adjoint: tr(Gᵀ Φ(M)) = tr(Φ(G)ᵀ M)", _peel_trilhalf),
    numeric=lambda n, a, s: _np_trilhalf(a[0]),
    exact=lambda sp, n, a, s: _sp_trilhalf(sp, a[0]),
    precise=lambda mp, n, a, s: _mp_trilhalf(mp, a[0]),
    spelling=Spelling("trilhalf", "Φ", r"\operatorname{trilhalf}"),
    lower=_every(lambda t: lambda ctx, n, a: f"_trilhalf({a[0]})"),
))
declare(Operator(
    "pinv", "pseudo-inverse",
    d=DRule("dX⁺ = −X⁺dX X⁺ + X⁺X⁺ᵀdXᵀ(I − XX⁺) + (I − X⁺X)dXᵀX⁺ᵀX⁺ (constant rank)",
            _d_pinv),
    numeric=lambda n, a, s: _np_pinv(a[0], eig_shift(n.args[0])),
    exact=lambda sp, n, a, s: _sp_pinv(sp, a[0]),
    precise=lambda mp, n, a, s: _mp_pinv(mp, a[0], eig_shift(n.args[0])),
    spelling=Spelling("pinv", lambda p, n: (f"{p.at(n.args[0], 5)}⁺", 5),
                      lambda p, n: (rf"{p.at(n.args[0], 5)}^{{+}}", 5)),
    lower=_every(lambda t: lambda ctx, n, a: f"_pinv_corank1({a[0]})" if eig_shift(n.args[0])
                 else f"{XP[t]}.linalg.pinv({a[0]})"),
))

# ---------------------------------------------------------------- the language's names

for _op in ("expm", "logm", "sqrtm"):
    declare_call(Call(_op, "square", lambda x, shape, op=_op: matfun(op, x)))
    declare_call(Call(FRECHET[_op], "frechet", lambda x, e, shape, op=_op: frechet(op, x, e),
                      arity=2))
for _op in ("eigmax", "eigmin"):
    declare_call(Call(_op, "square_to_scalar", lambda x, shape, op=_op: spectral(op, x)))
for _op in ("eigvecmax", "eigvecmin"):
    declare_call(Call(_op, "eigvec", lambda x, shape, op=_op: spectral(op, x)))
for _op in ("nucnorm", "specnorm"):
    declare_call(Call(_op, "nonscalar_to_scalar", lambda x, shape, op=_op: norm(op, x)))
declare_call(Call("polar", "elementwise", lambda x, shape: polar(x)))
declare_call(Call("chol", "square", lambda x, shape: chol(x)))
declare_call(Call("trilhalf", "square", lambda x, shape: trilhalf(x)))
declare_call(Call("pinv", "pinv", lambda x, shape: pinv(x)))

# ---------------------------------------------------------------- what results assume

NOTES = {
    "L_expm": "L_expm(X, E) is the Fréchet derivative of expm at X in the direction E: "
              "expm(X + E) = expm(X) + L_expm(X, E) + O(‖E‖²); for symmetric X = U diag(λ) Uᵀ "
              "it is U(F ⊙ UᵀEU)Uᵀ with F_ij = (e^λi − e^λj)/(λi − λj) (Daleckii–Krein)",
    "L_logm": "L_logm(X, E) is the Fréchet derivative of logm at X in the direction E "
              "(X with no eigenvalue on (−∞, 0]); for spd X = U diag(λ) Uᵀ it is "
              "U(F ⊙ UᵀEU)Uᵀ with F_ij = (log λi − log λj)/(λi − λj) (Daleckii–Krein)",
    "L_sqrtm": "L_sqrtm(X, E) is the Fréchet derivative of sqrtm at X in the direction E: the "
               "solution R of the Sylvester equation sqrtm(X) R + R sqrtm(X) = E",
    "eigvecmax": "eigvecmax(S) is the unit eigenvector of the largest eigenvalue of S (of "
                 "(S + Sᵀ)/2 when S is not symmetric); this holds where that eigenvalue is simple",
    "eigvecmin": "eigvecmin(S) is the unit eigenvector of the smallest eigenvalue of S (of "
                 "(S + Sᵀ)/2 when S is not symmetric); this holds where that eigenvalue is simple",
    "polar": "polar(X) = UVᵀ from the thin SVD X = UΣVᵀ; the gradient of nucnorm holds where X "
             "has full rank",
    "specnorm": "specnorm's gradient u₁v₁ᵀ holds where the largest singular value is simple",
    "trilhalf": "Φ(M) = trilhalf(M): the lower triangle of M with its diagonal halved "
                "(Cholesky's adjoint rule; S must be spd)",
    "pinv": "pinv's derivative holds where the rank of X is constant (full rank: tall X with "
            "independent columns, or wide X with independent rows)",
}
# the pinv in an eigenvector's derivative is of λI − S, singular on purpose
RESOLVENT_NOTE = ("(λI − S)⁺ is the pseudo-inverse of λI − S, which has rank n − 1 when the "
                  "eigenvalue λ of S is simple")


def notes_for(*roots: E.Node) -> list[str]:
    """The definitions and conditions that the expressions' matrix functions carry."""
    seen: list[str] = []
    for root in roots:
        for n in E.walk(root):
            note = RESOLVENT_NOTE if n.op == "pinv" and eig_shift(n.args[0]) else \
                NOTES.get(n.op)
            if note is not None and note not in seen:
                seen.append(note)
    return seen


# ---------------------------------------------------------------- domains (the self-check)

MARGIN = 1e-6


def _scale(a) -> float:
    return max(1.0, float(np.max(np.abs(a), initial=0.0)))


def _spd_problem(a):
    if not _is_sym(a, 1e-8):
        return "is not symmetric", True
    w = np.linalg.eigvalsh((a + a.T) / 2)
    if w[0] <= 0:
        return "is not positive definite", True
    if w[0] <= 1e-8 * max(1.0, w[-1]):
        return "is nearly singular", False
    return None


def _log_domain(a):
    if _is_sym(a):
        return _spd_problem(a)
    w = np.linalg.eigvals(a)
    if np.any((np.abs(w.imag) <= MARGIN * _scale(a)) & (w.real <= MARGIN * _scale(a))):
        return "has an eigenvalue on (−∞, 0]", True
    return None


def _simple(w, which: int, a):
    gap = abs(w[which] - w[which - 1 if which else 1]) if len(w) > 1 else 1.0
    if gap <= 1e-4 * _scale(a):
        return ("has a repeated largest eigenvalue" if which else
                "has a repeated smallest eigenvalue"), False
    return None


def _eig_domain(which: int):
    def check(a):
        if not np.all(np.isfinite(a)):
            return None
        return _simple(np.linalg.eigvalsh(_np_sympart(a)), which, a)
    return check


def _rank_domain(a):
    if not np.all(np.isfinite(a)):
        return None
    s = np.linalg.svd(a, compute_uv=False)
    if s.size and s[-1] <= 1e-6 * max(1.0, s[0]):
        return "is rank-deficient", False
    return None


def _pinv_domain(a):
    """Differentiable where the rank is locally constant: singular values clearly nonzero, or
    zero up to rounding (λI − S of an eigenvector's derivative has rank n − 1 exactly)."""
    if not np.all(np.isfinite(a)):
        return None
    s = np.linalg.svd(a, compute_uv=False)
    top = max(1.0, s[0]) if s.size else 1.0
    if np.any((s > 1e-11 * top) & (s <= 1e-6 * top)):
        return "is nearly rank-deficient", False
    return None


def _specnorm_domain(a):
    if not np.all(np.isfinite(a)):
        return None
    s = np.linalg.svd(a, compute_uv=False)
    if s.size > 1 and s[0] - s[1] <= 1e-4 * max(1.0, s[0]):
        return "has a repeated largest singular value", False
    return None


def _polar_domain(a):
    if a.shape[0] < a.shape[1]:  # polar's derivative form X(XᵀX)^(−1/2)
        return "is wider than tall", False
    return _rank_domain(a)


DOMAIN = {
    "logm": _log_domain, "sqrtm": _log_domain, "L_logm": _log_domain, "L_sqrtm": _log_domain,
    "eigmax": _eig_domain(-1), "eigvecmax": _eig_domain(-1),
    "eigmin": _eig_domain(0), "eigvecmin": _eig_domain(0),
    "nucnorm": _rank_domain, "pinv": _pinv_domain, "polar": _polar_domain,
    "specnorm": _specnorm_domain, "chol": _spd_problem,
}
