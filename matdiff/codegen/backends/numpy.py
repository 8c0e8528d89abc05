"""The NumPy backend: spells a Plan (codegen/plan.py) in NumPy and scipy.linalg.

It owns what is NumPy's: the helper functions an emitted module may need (a module carries only
those it uses), the names a variable may not take in the module, the lowering context that
operators' NumPy lowerings (the `lower["numpy"]` facet in matdiff/ops) are given, and the
statements of one function body: factorizations shared by solves (Cholesky for spd, LU
otherwise), products through SciPy's BLAS when the module factorizes (one OpenBLAS thread
pool), run-time product-order branches, and the fused special forms."""

from __future__ import annotations

import builtins
import keyword
import textwrap

from ...ir import expr as E
from ..body import (
    ARGUMENT_HELPERS,
    Body,
    Helpers,
    is_vector,
    method_call,
    primary,
    sequence_text,
    size_name,
    strip,
    tuple_text,
)
from ..naming import python_name
from . import Backend

# Every helper an emitted module may need; a module carries only those its functions use (and
# the ones those use). Each entry is one top-level definition (or assignment).
HELPERS = r"""
import scipy.special as _special


_expit = _special.expit


def _sigmoid(z):
    # accurate to rounding for every z. Up to ~700 entries SciPy's expit (one pass, no
    # overflow) is fastest; beyond, 1/(1+exp(-z)) vectorises better, and below z = -709
    # exp(-z) overflows to inf and the answer is 0 (the true value is below the smallest
    # double), so the overflow is silenced (errstate costs ~1 µs, too much on small arrays)
    if type(z) is float or z.size < 700:
        return _expit(z)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _softplus_sigmoid(z):
    # (log(1 + exp(z)), 1/(1 + exp(-z))) from one exponential where it is finite
    if (z if type(z) is float else z.max()) < 700.0:
        e = np.exp(z)
        return np.log1p(e), e / (1.0 + e)
    softplus = np.logaddexp(0.0, z)
    return softplus, np.exp(z - softplus)


def _softplus(z):
    # log(1 + exp(z)): log1p(exp(z)) is 3-4x faster than np.logaddexp(0, z) and exact where
    # exp(z) is finite, which the maximum (one cheap pass) decides
    if (z if type(z) is float else z.max()) < 700.0:
        return np.log1p(np.exp(z))
    return np.logaddexp(0.0, z)


def _dsigmoid(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


def _derf(z):
    # erf'(z) = 2/sqrt(pi) * exp(-z^2)
    return 1.1283791670955126 * np.exp(-z * z)


# reductions as array methods: x.max() costs half of np.max(x), which dispatches in Python
def _logsumexp(x):
    m = x.max()
    return m + np.log(np.exp(x - m).sum())


def _softmax(x):
    e = np.exp(x - x.max())
    e /= e.sum()
    return e


def _logsumexp_softmax(x):
    # both from one pass of exponentials
    m = x.max()
    e = np.exp(x - m)
    s = e.sum()
    e /= s
    return m + np.log(s), e


def _log_softmax(x):
    shifted = x - x.max()
    shifted -= np.log(np.exp(shifted).sum())
    return shifted


def _softmax_axis(z, axis):
    # softmax of each column (axis 0) or row (axis 1): max-shifted, one pass of exponentials
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _log_softmax_axis(z, axis):
    shifted = z - z.max(axis=axis, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


def _logsumexp_axis(z, axis):
    m = z.max(axis=axis)
    return m + np.log(np.exp(z - np.expand_dims(m, axis)).sum(axis=axis))


def _log_softmax_softmax_axis(z, axis):
    # log softmax and softmax of each column (axis 0) or row (axis 1), one pass of exponentials
    shifted = z - z.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=axis, keepdims=True)
    e /= s
    shifted -= np.log(s)
    return shifted, e


def _logsumexp_softmax_axis(z, axis):
    # logsumexp and softmax of each column (axis 0) or row (axis 1), one pass of exponentials
    m = z.max(axis=axis, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=axis, keepdims=True)
    e /= s
    m += np.log(s)
    return m.squeeze(axis), e


def _logdet(x, name):
    # log det of a singular matrix raises LinAlgError; a negative determinant gives nan
    sign, value = np.linalg.slogdet(x)
    if sign == 0:
        _singular(name)
    return value if sign > 0 else np.nan


def _singular(name):
    raise np.linalg.LinAlgError(f"Singular matrix: {name} has no inverse (nor log-determinant)")


def _lu(a, name):
    # LU with partial pivoting (LAPACK getrf). An exactly zero pivot means a singular matrix,
    # which NumPy's inv and solve refuse with LinAlgError: so does this module, when the
    # factorization is used to invert, solve or take a log-determinant (name is not None)
    lu, piv, info = _getrf(a)
    if info > 0 and name is not None:
        _singular(name)
    return lu, piv


_getrf = sla.lapack.dgetrf


def _det_lu(f):
    lu, piv = f
    swaps = np.count_nonzero(piv != np.arange(piv.size))
    return (-1.0) ** swaps * np.prod(np.diag(lu))


def _logdet_lu(f):
    lu, piv = f
    diag = np.diag(lu)
    swaps = np.count_nonzero(piv != np.arange(piv.size))
    sign = (-1.0) ** swaps * np.prod(np.sign(diag))
    return np.sum(np.log(np.abs(diag))) if sign > 0 else np.nan


def _inv_lu(f, name):
    # the inverse from the LU factors (LAPACK getri): cheaper than solving against I; without
    # the blocked workspace (64 columns) getri runs unblocked and takes twice as long
    inv, info = sla.lapack.dgetri(f[0], f[1], lwork=64 * f[0].shape[0])
    if info > 0:
        _singular(name)
    return inv


def _inv_chol(f):
    # the inverse from the Cholesky factor: LAPACK potri fills one triangle of a fresh array
    # (read here as the upper one); the other is mirrored into it in place, block by block (a
    # whole-matrix transpose strides through memory, and a new n×n array costs its page
    # faults: 4 ms at n = 1024). The result is symmetric, so tri.T (C order, like every other
    # array the module returns) holds it whichever triangle LAPACK filled
    c, lower = f
    tri, info = sla.lapack.dpotri(c, lower=lower)
    full = tri.T if lower else tri
    n, b = full.shape[0], 256
    for i in range(0, n, b):
        block = full[i:i + b, i:i + b]
        np.copyto(block, block.T, where=np.tri(block.shape[0], dtype=bool, k=-1))
        for j in range(i + b, n, b):
            full[j:j + b, i:i + b] = full[i:i + b, j:j + b].T
    return tri.T


def _det_chol(f):
    return np.prod(np.diag(f[0])) ** 2


def _logdet_chol(f):
    return 2.0 * np.sum(np.log(np.abs(np.diag(f[0]))))


_dgemm = sla.blas.dgemm


_dgemv = sla.blas.dgemv


# Matrix products go through SciPy's BLAS, like the factorizations: NumPy and SciPy each
# bundle an OpenBLAS, and alternating between their two thread pools stalls both (a
# Cholesky then a NumPy product ran 3x slower than the two alone on a 2-core machine).
def _mm(a, b):
    ta, tb = not a.flags.f_contiguous, not b.flags.f_contiguous
    return _dgemm(1.0, a.T if ta else a, b.T if tb else b, trans_a=ta, trans_b=tb)


def _mv(a, x):
    if a.flags.f_contiguous:
        return _dgemv(1.0, a, x)
    return _dgemv(1.0, a.T, x, trans=1)


# Matrix functions (ops/matrix_functions.py): one eigendecomposition of the symmetric part, or
# one thin SVD, per matrix and function body, named once and shared by f and the gradient
def _factor(kind, a):
    # eigh and eigvalsh of the symmetric part; "symmetric eigh" of a matrix known symmetric
    # (LAPACK reads one triangle)
    if kind == "eigh":
        return np.linalg.eigh((a + a.T) / 2)
    if kind == "eigvalsh":
        return np.linalg.eigvalsh((a + a.T) / 2)
    if kind == "symmetric eigh":
        return np.linalg.eigh(a)
    if kind == "symmetric eigvalsh":
        return np.linalg.eigvalsh(a)
    if kind == "svd":
        return np.linalg.svd(a, full_matrices=False)
    return np.linalg.svd(a, compute_uv=False)


def _spectral_fn(op, w):
    if op != "expm" and np.min(w) <= 0:
        return np.full(w.shape, np.nan)
    return {"expm": np.exp, "logm": np.log, "sqrtm": np.sqrt}[op](w)


def _matfun_eig(eig, op):
    w, u = eig
    return (u * _spectral_fn(op, w)) @ u.T


def _frechet_eig(eig, e, op):
    # Daleckii-Krein: U (F * (U^T E U)) U^T, F the divided differences of f at the eigenvalues
    w, u = eig
    f = _spectral_fn(op, w)
    fp = {"expm": f, "logm": 1.0 / w, "sqrtm": 0.5 / f}[op]
    dw = w[:, None] - w[None, :]
    close = np.abs(dw) <= 1e-9 * np.maximum(1.0, np.abs(w[:, None]))
    k = np.where(close, (fp[:, None] + fp[None, :]) / 2,
                 (f[:, None] - f[None, :]) / np.where(close, 1.0, dw))
    return u @ (k * (u.T @ e @ u)) @ u.T


def _real_or_nan(m):
    m = np.asarray(m)
    if np.iscomplexobj(m):
        if np.max(np.abs(m.imag)) > 1e-8 * max(1.0, np.max(np.abs(m.real))):
            return np.full(m.shape, np.nan)
        return m.real
    return m


def _logm(a):
    return _real_or_nan(sla.logm(a))


def _sqrtm(a):
    return _real_or_nan(sla.sqrtm(a))


def _L_logm(a, e):
    n = a.shape[0]
    return _logm(np.block([[a, e], [np.zeros_like(a), a]]))[:n, n:]


def _eigvec_eig(eig, last):
    # the unit eigenvector, its entry of largest magnitude positive
    v = eig[1][:, -1 if last else 0]
    return v if v[np.argmax(np.abs(v))] >= 0 else -v


def _eigvec_svd(svd):
    # the first right singular vector of X: the top eigenvector of X^T X
    v = svd[2][0]
    return v if v[np.argmax(np.abs(v))] >= 0 else -v


def _trilhalf(a):
    return np.tril(a, -1) + np.diag(np.diag(a)) / 2


def _pinv_corank1(a):
    # (λI − S)⁺ for an eigenvalue λ of S: the eigenvalue of a that is 0 in exact arithmetic is
    # rounding (~1e-16·|λ|), which np.linalg.pinv may invert; it is dropped by position
    w, u = np.linalg.eigh((a + a.T) / 2)
    inverse = 1.0 / np.where(w == 0.0, 1.0, w)
    inverse[np.argmin(np.abs(w))] = 0.0
    return (u * inverse) @ u.T


def _inv_tri(l):
    # the inverse of a lower-triangular (Cholesky) factor: LAPACK trtri
    return sla.lapack.dtrtri(l, lower=1)[0]


_F64 = np.dtype(np.float64)


_ndarray = np.ndarray


_Float64 = np.float64


def _array(value, name):
    # the slow path of the argument checks: anything that is not already a float64 array
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array: pass a plain array ({name}.filled(...))")
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        hint = " (complex input: pass the real part, if that is what you mean)" \
            if a.dtype.kind == "c" else ""
        raise TypeError(f"{name} must be an array of real numbers, got dtype {a.dtype}{hint}")
    return a.astype(np.float64)


def _scalar(value, name):
    # the slow path of a scalar argument's check: anything that is not already a float
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        return float(value)
    what = f"an array of shape {value.shape}" if isinstance(value, np.ndarray) else \
        f"{type(value).__name__} {value!r}"[:80]
    raise TypeError(f"{name} must be a real number (a float), got {what}")


def _symmetric(a, name, kind, definite):
    # O(n^2), relative to the size of the entries (the largest entry of a positive definite
    # matrix is on its diagonal), so that round-off asymmetry passes. Up to n = 128 entry by
    # entry; beyond, a - a.T strides through memory (10x slower at n = 256 than the rest of
    # the checks), and (a - a.T) is applied to a fixed probe vector instead
    n = a.shape[0]
    if n <= 128:
        worst = (a - a.T).max()
        if not worst:  # exactly symmetric
            return
        bound = 1e-8
    else:
        u = _probe(n)
        worst = _asymmetry(a, u)
        bound = 1e-8 * u.sum()
    scale = max(np.diagonal(a).max(), 0.0) if definite else max(a.max(), -a.min())
    if worst > bound * scale:
        d = np.abs(a - a.T)
        i, j = np.unravel_index(np.argmax(d), d.shape)
        raise ValueError(f"{name} must be a {kind}, but {name}[{i}, {j}] = {float(a[i, j])!r} "
                         f"and {name}[{j}, {i}] = {float(a[j, i])!r}")


def _asymmetry(a, u):
    return np.abs(a @ u - u @ a).max()


def _probe(n, _cache={}):
    u = _cache.get(n)
    if u is None:
        u = _cache[n] = np.sqrt(np.arange(2.0, n + 2.0))
    return u
"""


# names a variable may not take in the emitted code: every builtin (the bodies call float,
# type, len, …; the checks catch KeyError), the module's imports and its public functions.
# Helpers, sizes and run-time temporaries all begin with "_", which python_name never returns.
RESERVED = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist) | {
    "np", "sla", "math", "vars", "f", "f_and_grad"}




_HELPERS = Helpers(HELPERS + ARGUMENT_HELPERS)

# A module that factorizes keeps every BLAS call in SciPy's OpenBLAS (see _mm), the symmetry
# check's products too: a NumPy gemv just before a SciPy Cholesky left NumPy's OpenBLAS threads
# spinning on both cores and made the Cholesky 3-6x slower at n = 1024
_ASYMMETRY = """def _asymmetry(a, u):
    return np.abs(a @ u - u @ a).max()"""
assert _ASYMMETRY in HELPERS
_HELPERS_ONE_BLAS = Helpers((HELPERS + ARGUMENT_HELPERS).replace(_ASYMMETRY, """\
def _asymmetry(a, u):
    # (a - a^T) u through SciPy's BLAS, the one this module's factorizations use
    return np.abs(_mv(a, u) - _mv(a.T, u)).max()"""))


def helpers_for(code: str, one_blas: bool = False) -> list[str]:
    """The helper definitions the code refers to, and those they refer to, in HELPERS order."""
    return (_HELPERS_ONE_BLAS if one_blas else _HELPERS).for_code(code)


class NumpyBody(Body):
    """A function body in NumPy and scipy.linalg: factorizations shared by solves (SciPy's
    cho_factor/cho_solve for spd, LAPACK getrf with lu_solve otherwise), products through
    SciPy's BLAS when the module factorizes (one OpenBLAS thread pool)."""

    TARGET = "numpy"
    LABEL = "NumPy"
    XP = "np"

    def factor_call(self, x: E.Node, text: str) -> str:
        # check_finite=False: NumPy's own solvers do not scan the input either (NaN in,
        # NaN out), and the scan is a full extra pass over the matrix. A matrix that is not
        # positive definite makes cho_factor raise LinAlgError; a singular one makes _lu
        # raise it, unless only its determinant (0) is taken from the factors
        if self._spd(x):
            return f"sla.cho_factor({text}, check_finite=False)"
        det_only = x in self.plan.dets and x not in self.plan.inverted and \
            x not in self.plan.logdets
        return f"_lu({text}, {None if det_only else self.ctx.text(x)!r})"

    def solve(self, x: E.Node, transposed: bool, rhs: str) -> str:
        if x.op == "chol":  # a triangular factor: solved as it is, never factored again
            self.em.uses_scipy = True
            return f"sla.solve_triangular({strip(self.expr(x))}, {rhs}, lower=True" \
                f"{', trans=1' if transposed else ''}, check_finite=False)"
        f = self.factor(x)
        if self._spd(x):
            return f"sla.cho_solve({f}, {rhs}, check_finite=False)"
        return f"sla.lu_solve({f}, {rhs}{', trans=1' if transposed else ''}, check_finite=False)"

    def inverse_call(self, x: E.Node) -> str:
        if x.op == "chol":
            self.em.uses_scipy = True
            return f"_inv_tri({strip(self.expr(x))})"
        return f"_inv_chol({self.factor(x)})" if self._spd(x) else \
            f"_inv_lu({self.factor(x)}, {self.ctx.text(x)!r})"

    def outer(self, a: str, b: str) -> str:
        # einsum's product loop is 1.5-2.5x faster than np.outer's broadcast for n ≥ 64
        return f"np.einsum('i,j->ij', {a}, {b})"

    def dot_self(self, u: str, vector: bool = False) -> str:
        return self.dot(u, u, vector)

    def dot(self, a: str, b: str, vector: bool = False) -> str:
        # u.dot(v) of two vectors is a method (~0.3 µs less than np.vdot); vdot of matrices
        # reads both as flat vectors
        return f"{primary(a)}.dot({strip(b)})" if vector else f"np.vdot({a}, {b})"

    PAIRED_SOFTPLUS = True

    def softplus(self, z: str) -> str:
        return f"_softplus({strip(z)})"

    def softplus_of(self, z: E.Node) -> str:
        # softplus(z) with σ(z) when the function needs both (the logistic loss and its
        # gradient): one exponential serves both, as in the hand-written e/(1+e)
        sigmoid = E.fn("sigmoid", z)
        if sigmoid not in self.plan.order:
            return self.softplus(self.expr(z))
        pair = self.softplus_sigmoid.get(z)
        if pair is None:
            pair = (python_name(self.temporary(), self.taken),
                    python_name(self.em.labels.get(sigmoid) or self.temporary(), self.taken))
            self.lines.append(f"    {pair[0]}, {pair[1]} = _softplus_sigmoid("
                              f"{strip(self.expr(z))})")
            self.softplus_sigmoid[z] = pair
        return pair[0]

    def total(self, x: str) -> str:
        return method_call(x, "sum")

    def axis_sum(self, x: str, axis: int) -> str:
        return f"{method_call(x, 'sum')[:-1]}{axis})"

    def det_from_factor_applies(self, x: E.Node) -> bool:
        return super().det_from_factor_applies(x) or self.em.one_blas

    def matrix_product(self, a: E.Node, b: E.Node) -> str | None:
        if a.shape[0] is E.ONE and b.shape[1] is E.ONE and is_vector(a) and is_vector(b):
            return f"{primary(self.expr(a))}.dot({strip(self.expr(b))})"  # uᵀv: a method
        if self.em.one_blas and a.kind == "matrix":
            how = "_mm" if b.kind == "matrix" else "_mv"
            return f"{how}({self.expr(a)}, {self.expr(b)})"
        if self.em.one_blas and b.kind == "matrix" and a.shape[0] is E.ONE:  # xᵀB = (Bᵀx)ᵀ
            return f"_mv({self.expr(b)}.T, {self.expr(a)})"
        return None


def check_lines(variables: dict[str, E.Node], py: dict[str, str], given: str) -> list[str]:
    """The statements of the argument checks, reading the keyword dictionary `given` and
    binding each argument to its Python name (and each size to _m, _n, …)."""
    return argument_checks(variables, py, given, _array_check)


def _array_check(p: str, name: str) -> list[str]:
    return [f'    if type({p}) is not _ndarray or {p}.dtype is not _F64:',
            f'        {p} = _array({p}, {name!r})']


def _scalar_check(p: str, name: str) -> list[str]:
    return [f'    if type({p}) is not float:',
            f'        {p} = _scalar({p}, {name!r})']


def argument_checks(variables: dict[str, E.Node], py: dict[str, str], given: str,
                    array_check, scalar_check=_scalar_check, symmetric=True) -> list[str]:
    """The argument checks every backend shares (presence, number, dimensions, sizes, empty
    arrays, symmetry); array_check(p, name) and scalar_check(p, name) give each backend's
    conversion of one argument."""
    names = list(variables)
    pys = [py[n] for n in names]
    out = ['    try:']
    out += [f'        {p} = {given}[{n!r}]' for n, p in zip(names, pys)] or ['        pass']
    out += ['    except KeyError:',
            f'        _argument_error({given}, {names!r})',
            f'    if len({given}) != {len(names)}:',
            f'        _argument_error({given}, {names!r})']
    bound: dict[E.Dim, str] = {}
    source: dict[E.Dim, str] = {}  # the argument that fixed each size
    py_name = dict(zip(pys, names))
    for name, p in zip(names, pys):
        v = variables[name]
        if v.kind == "scalar":
            out += scalar_check(p, name)
            continue
        out += array_check(p, name)
        dims = [d for d in v.shape if d is not E.ONE]
        kind = _MATRIX_KINDS.get(v.attr[1], v.attr[1])
        symbolic = tuple_text(d.name for d in dims)
        fail = f'_shape_error({name!r}, {kind!r}, {symbolic!r}, {p}.shape, {len(dims)}'
        fresh = []  # sizes this argument fixes first
        if any(d not in bound for d in dims):
            out.append(f'    if {p}.ndim != {len(dims)}:')
            out.append(f'        {fail})')
            for axis, d in enumerate(dims):
                if d not in bound:
                    bound[d] = size_name(d)
                    source[d] = p
                    out.append(f'    {bound[d]} = {p}.shape[{axis}]')
                    fresh.append(bound[d])
            out.append(f'    if not {" * ".join(fresh)}:')
            out.append(f'        _empty_error({name!r}, {p}.shape)')
        if len(fresh) < len(dims):  # some size is known already (or repeats, as in a square S)
            expected = tuple_text(bound[d] for d in dims)
            others = list(dict.fromkeys(source[d] for d in dims if source[d] != p))
            blame = "".join(f"({py_name[o]!r}, {o}.shape)," for o in others)
            out.append(f'    if {p}.shape != {expected}:')
            out.append(f'        {fail}, {expected}, ({blame}))' if blame else
                       f'        {fail}, {expected})')
        if symmetric and v.attr[1] in ("symmetric", "spd"):
            out.append(f'    _symmetric({p}, {name!r}, {kind!r}, {v.attr[1] == "spd"})')
    # a product size (n·q of kron, m·n of vec) read off one argument must be the product of
    # the sizes the others fix
    products = _product_sizes(bound)
    for d, product in products.items():
        p = source[d]
        v = variables[py_name[p]]
        dims = [x for x in v.shape if x is not E.ONE]
        expected = tuple_text(products.get(x, bound[x]) for x in dims)
        others = list(dict.fromkeys(source[x] for x in E.PRODUCTS[d] if source[x] != p))
        blame = "".join(f"({py_name[o]!r}, {o}.shape)," for o in others)
        out.append(f'    if {bound[d]} != {product}:')
        out.append(f'        _shape_error({py_name[p]!r}, {v.kind!r}, '
                   f'{tuple_text(x.name for x in dims)!r}, {p}.shape, {len(dims)}, {expected}, '
                   f'({blame}))')
    return out


_MATRIX_KINDS = {"symmetric": "symmetric matrix", "spd": "symmetric positive definite matrix"}


def _product_sizes(bound: dict[E.Dim, str]) -> dict[E.Dim, str]:
    """Each bound product size (n·q of kron, m·n of vec) whose factors are bound too, with
    the product of their names: {n·q: "_n * _q"}."""
    return {d: f"{bound[a]} * {bound[b]}" for d, (a, b) in E.PRODUCTS.items()
            if d in bound and a in bound and b in bound}


def _keyword_only(variables: dict[str, E.Node], py: dict[str, str]) -> bool:
    # named keyword-only parameters bind ~0.2 µs faster than **vars and a dictionary lookup
    # per argument; a variable Python cannot spell as a parameter (lambda, np) keeps **vars
    return bool(variables) and all(py[n] == n for n in variables)


def fast_checks(variables: dict[str, E.Node], py: dict[str, str], keyword_only: bool) -> list[str]:
    """The argument checks at the top of a function: one expression that holds when every
    argument is exactly what the expression needs (a float64 ndarray of the right shape, a
    float), ~0.3 µs for three arguments; anything else, or any exception on the way, goes
    through _inputs, which converts what it can and otherwise raises the error naming the
    argument."""
    names = list(variables)
    pys = [py[n] for n in names]
    binds: list[str] = []
    if not keyword_only:
        binds += [f"{p} = vars[{n!r}]" for n, p in zip(names, pys)]
    conds = [] if keyword_only else [f"len(vars) == {len(names)}"]
    arrays = [py[n] for n, v in variables.items() if v.kind != "scalar"]
    if arrays:
        conds.append(" is ".join(f"type({p})" for p in arrays) + " is _ndarray")
        conds.append(" is ".join(f"{p}.dtype" for p in arrays) + " is _F64")
    conds += [f"type({py[n]}) is float" for n, v in variables.items() if v.kind == "scalar"]
    bound: dict[E.Dim, str] = {}
    for n, v in variables.items():
        if v.kind == "scalar":
            continue
        p = py[n]
        dims = [d for d in v.shape if d is not E.ONE]
        if all(d not in bound for d in dims) and len(set(dims)) == len(dims):
            for d in dims:
                bound[d] = size_name(d)
            binds.append(f"{sequence_text(bound[d] for d in dims)} = {p}.shape")
            continue
        for axis, d in enumerate(dims):
            if d not in bound:
                bound[d] = size_name(d)
                binds.append(f"{bound[d]} = {p}.shape[{axis}]")
        conds.append(f"{p}.shape == {tuple_text(bound[d] for d in dims)}")
    # n·q of kron, m·n of vec
    conds += [f"{bound[d]} == {product}" for d, product in _product_sizes(bound).items()]
    if bound:
        conds.append(" * ".join(bound.values()))  # no empty array
    given = "vars" if not keyword_only else \
        "{" + ", ".join(f"{n!r}: {p}" for n, p in zip(names, pys)) + "}"
    out = ["    try:  # the common case, checked in one expression; else _inputs checks each"]
    out += [f"        {line}" for line in binds]
    lines = ["_ok = " + (conds[0] if conds else "True")]
    for cond in conds[1:]:  # wrapped between conditions
        if len(lines[-1]) + len(cond) + 5 <= 88:
            lines[-1] += " and " + cond
        else:
            lines.append("       and " + cond)
    if len(lines) > 1:
        lines[0] = lines[0].replace("_ok = ", "_ok = (", 1)
        lines[-1] += ")"
    out += [f"        {line}" for line in lines]
    unpack = f"{sequence_text(pys)} = _inputs({given})"
    symmetric = [f"        _symmetric({py[n]}, {n!r}, {_MATRIX_KINDS[v.attr[1]]!r}, "
                 f"{v.attr[1] == 'spd'})"
                 for n, v in variables.items() if v.attr[1] in _MATRIX_KINDS]
    out += ["    except Exception:", "        _ok = False", "    if not _ok:", f"        {unpack}"]
    if symmetric:
        out += ["    else:"] + symmetric
    return out


def inputs_function(variables: dict[str, E.Node], py: dict[str, str]) -> str:
    """Each argument checked in turn: converted to float64 where it can be, else an error
    naming it (missing, unexpected, misshaped, empty, complex, asymmetric). The slow path of
    fast_checks, and the whole check where a module keeps **vars."""
    names = list(variables)
    pys = [py[n] for n in names]
    out = ['def _inputs(given):',
           '    """The arguments as arrays, checked against the expression\'s kinds and shapes."""']
    out += check_lines(variables, py, "given")
    out.append(f'    return {sequence_text(pys)}')
    return "\n".join(out)


class NumpyBackend(Backend):
    name = "numpy"
    label = "NumPy"
    reserved = RESERVED
    one_blas_rerun = True
    values_sentence = "Vectors are 1-D arrays, matrices 2-D arrays, scalars floats."
    body = NumpyBody

    def for_code(self, code: str, emitter=None) -> list[str]:
        return helpers_for(code, emitter is not None and emitter.one_blas)

    def imports(self, text: str) -> list[str]:
        return ["import numpy as np"] + (["import scipy.linalg as sla"] if "sla." in text else [])

    def undefined_doc(self, variables: dict[str, E.Node], code: str) -> list[str]:
        """How the functions answer where f is undefined, as far as this module is concerned."""
        out = ["Where f is undefined the functions answer as NumPy does."]
        if "_lu(" in code or "_logdet(" in code or "cho_factor" in code:
            out.append("A singular matrix that must be inverted, solved with or log-determined "
                       "raises numpy.linalg.LinAlgError, as np.linalg.inv does (so does an spd "
                       "argument that is not positive definite); the log-determinant of a matrix "
                       "whose determinant is negative is nan.")
        if any(v.kind == "scalar" for v in variables.values()):
            out.append("Scalar arithmetic follows IEEE rules: 1/0 = inf, (-1)^0.5 = nan, "
                       "10^1000 = inf.")
        if any(v.attr[1] in ("symmetric", "spd") for v in variables.values()):
            out.append("A symmetric (or spd) argument that is not symmetric beyond round-off "
                       "raises ValueError.")
        out.append("Complex, non-numeric or empty input raises TypeError or ValueError naming "
                   "the argument.")
        return textwrap.wrap(" ".join(out), 92)

    def out(self, node: E.Node, expr: str) -> str:
        return f"float({expr})" if node.kind == "scalar" else expr

    def check_lines(self, variables, py, given):
        return check_lines(variables, py, given)

    def inputs_function(self, variables, py):
        return inputs_function(variables, py)

    def parameters(self, variables, py):
        return "*, " + ", ".join(variables) if _keyword_only(variables, py) else "**vars"

    def checks_everywhere(self, variables, py):
        return _keyword_only(variables, py)

    def inline_checks(self, variables, py):
        return fast_checks(variables, py, _keyword_only(variables, py))

    def direction_lines(self, v, name, scalar, of, expected):
        if scalar:
            return [f"    if type({v}) is not float:", f"        {v} = _scalar({v}, {name!r})"]
        return [f"    if type({v}) is not np.ndarray or {v}.dtype is not _F64:",
                f"        {v} = _array({v}, {name!r})",
                f"    if {v}.shape != {expected}:",
                f"        _direction_error({name!r}, {v}.shape, {of!r}, {expected})"]


BACKEND = NumpyBackend()
