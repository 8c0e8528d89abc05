"""The JAX backend: spells a Plan (codegen/plan.py) in jax.numpy and jax.scipy.linalg.

The emitted functions are traceable under jax.jit and jax.vmap: no in-place writes, no
Python float() of a traced value, no NumPy call on a traced array (the argument checks read
only shapes and dtypes, which are static under tracing; the symmetry of an spd argument is
checked only on concrete arrays). Factorizations are shared as in the NumPy module
(jsla.cho_factor/cho_solve for spd, jsla.lu_factor/lu_solve otherwise). Where the NumPy
module raises LinAlgError (a singular matrix, an spd argument that is not positive definite)
a traced function cannot raise on values: the JAX module gives inf or nan there.

The module also defines `f_custom(**vars)`: f as a jax.custom_vjp whose backward rule is
matdiff's gradient, so that jax.grad through a larger model uses matdiff's formula."""

from __future__ import annotations

import builtins
import keyword
import textwrap

from ...ir import expr as E
from ..body import ARGUMENT_HELPERS, Body, Helpers, strip, tuple_text
from . import Backend
from .numpy import argument_checks

HELPERS = r"""
def _sigmoid(z):
    # XLA's logistic: one fused, stable op (exp(-logaddexp(0, -z)) took three transcendentals)
    return jax.nn.sigmoid(z)


def _dsigmoid(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


import jax.scipy.special as _special


def _derf(z):
    # erf'(z) = 2/sqrt(pi) * exp(-z^2)
    return 1.1283791670955126 * jnp.exp(-z * z)


def _logsumexp(x):
    m = jnp.max(x)
    return m + jnp.log(jnp.sum(jnp.exp(x - m)))


def _softmax(x):
    e = jnp.exp(x - jnp.max(x))
    return e / jnp.sum(e)


def _logsumexp_softmax(x):
    # both from one pass of exponentials
    m = jnp.max(x)
    e = jnp.exp(x - m)
    s = jnp.sum(e)
    return m + jnp.log(s), e / s


def _log_softmax(x):
    shifted = x - jnp.max(x)
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted)))


def _softmax_axis(z, axis):
    # softmax of each column (axis 0) or row (axis 1): max-shifted, one pass of exponentials
    e = jnp.exp(z - jnp.max(z, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def _log_softmax_axis(z, axis):
    shifted = z - jnp.max(z, axis=axis, keepdims=True)
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def _logsumexp_axis(z, axis):
    m = jnp.max(z, axis=axis, keepdims=True)
    return jnp.squeeze(m + jnp.log(jnp.sum(jnp.exp(z - m), axis=axis, keepdims=True)), axis)


def _log_softmax_softmax_axis(z, axis):
    # log softmax and softmax of each column (axis 0) or row (axis 1), one pass of exponentials
    shifted = z - jnp.max(z, axis=axis, keepdims=True)
    e = jnp.exp(shifted)
    s = jnp.sum(e, axis=axis, keepdims=True)
    return shifted - jnp.log(s), e / s


def _logsumexp_softmax_axis(z, axis):
    m = jnp.max(z, axis=axis, keepdims=True)
    e = jnp.exp(z - m)
    s = jnp.sum(e, axis=axis, keepdims=True)
    return jnp.squeeze(m + jnp.log(s), axis), e / s


def _logdet(x):
    # -inf for a singular matrix, nan for a negative determinant (no exception under jit)
    sign, value = jnp.linalg.slogdet(x)
    return jnp.where(sign > 0, value, jnp.where(sign == 0, -jnp.inf, jnp.nan))


def _lu(a):
    return jsla.lu_factor(a)


def _swap_sign(piv):
    # (-1)^(number of row interchanges) of an LU factorization
    swaps = jnp.count_nonzero(piv != jnp.arange(piv.shape[0]))
    return jnp.where(swaps % 2 == 1, -1.0, 1.0)


def _det_lu(f):
    lu, piv = f
    return _swap_sign(piv) * jnp.prod(jnp.diag(lu))


def _logdet_lu(f):
    lu, piv = f
    diag = jnp.diag(lu)
    sign = _swap_sign(piv) * jnp.prod(jnp.sign(diag))
    value = jnp.sum(jnp.log(jnp.abs(diag)))
    return jnp.where(sign > 0, value, jnp.where(sign == 0, -jnp.inf, jnp.nan))


def _inv_lu(f):
    return jsla.lu_solve(f, jnp.eye(f[0].shape[0], dtype=f[0].dtype))


def _inv_chol(f):
    return jsla.cho_solve(f, jnp.eye(f[0].shape[0], dtype=f[0].dtype))


def _det_chol(f):
    return jnp.prod(jnp.diag(f[0])) ** 2


def _logdet_chol(f):
    return 2.0 * jnp.sum(jnp.log(jnp.abs(jnp.diag(f[0]))))


# Matrix functions (ops/matrix_functions.py): one eigendecomposition of the symmetric part, or
# one thin SVD, per matrix and function body, named once and shared by f and the gradient
def _factor(kind, a):
    if kind.endswith("eigh"):
        return jnp.linalg.eigh(a if kind.startswith("symmetric") else (a + a.T) / 2)
    if kind.endswith("eigvalsh"):
        return jnp.linalg.eigvalsh(a if kind.startswith("symmetric") else (a + a.T) / 2)
    if kind == "svd":
        return jnp.linalg.svd(a, full_matrices=False)
    return jnp.linalg.svd(a, compute_uv=False)


def _spectral_fn(op, w):
    # log and sqrt of a non-positive eigenvalue give nan (or -inf), no exception under jit
    return {"expm": jnp.exp, "logm": jnp.log, "sqrtm": jnp.sqrt}[op](w)


def _matfun_eig(eig, op):
    w, u = eig
    return (u * _spectral_fn(op, w)) @ u.T


def _frechet_eig(eig, e, op):
    # Daleckii-Krein: U (F * (U^T E U)) U^T, F the divided differences of f at the eigenvalues
    # (the derivative where two eigenvalues agree to sqrt(eps))
    w, u = eig
    f = _spectral_fn(op, w)
    fp = f if op == "expm" else 1.0 / w if op == "logm" else 0.5 / f
    dw = w[:, None] - w[None, :]
    tol = jnp.finfo(w.dtype).eps ** 0.5
    close = jnp.abs(dw) <= tol * jnp.maximum(1.0, jnp.abs(w[:, None]))
    k = jnp.where(close, (fp[:, None] + fp[None, :]) / 2,
                  (f[:, None] - f[None, :]) / jnp.where(close, 1.0, dw))
    return u @ (k * (u.T @ e @ u)) @ u.T


def _unit_sign(v):
    # the entry of largest magnitude positive
    return v * jnp.where(v[jnp.argmax(jnp.abs(v))] >= 0, 1.0, -1.0).astype(v.dtype)


def _eigvec_eig(eig, last):
    return _unit_sign(eig[1][:, -1 if last else 0])


def _eigvec_svd(svd):
    # the first right singular vector of X: the top eigenvector of X^T X
    return _unit_sign(svd[2][0])


def _trilhalf(a):
    return jnp.tril(a, -1) + jnp.diag(jnp.diag(a)) / 2


def _pinv_corank1(a):
    # (λI − S)⁺ for an eigenvalue λ of S: the eigenvalue of a that is 0 in exact arithmetic is
    # rounding, which jnp.linalg.pinv may invert; it is dropped by position
    w, u = jnp.linalg.eigh((a + a.T) / 2)
    keep = jnp.arange(w.shape[0]) != jnp.argmin(jnp.abs(w))
    inverse = jnp.where(keep, 1.0 / jnp.where(keep, w, 1.0), 0.0)
    return (u * inverse) @ u.T


def _inv_tri(l):
    return jsla.solve_triangular(l, jnp.eye(l.shape[0], dtype=l.dtype), lower=True)


_Array = jax.Array


def _array(value, name):
    # the slow path of the argument checks: anything that is not already a float jax array
    # (NumPy arrays, lists, integer arrays); under tracing only dtypes and shapes are read
    a = value if isinstance(value, _Array) else np.asarray(value)
    if a.dtype.kind not in "biuf":
        hint = " (complex input: pass the real part, if that is what you mean)" \
            if a.dtype.kind == "c" else ""
        raise TypeError(f"{name} must be an array of real numbers, got dtype {a.dtype}{hint}")
    # floats keep their precision as far as the configuration allows (float64 needs
    # jax_enable_x64); integers and booleans become JAX's default float
    return jnp.asarray(a) if a.dtype.kind == "f" else jnp.asarray(a, jnp.result_type(float))


def _scalar(value, name, dtype):
    # a real number (or 0-d array) as a 0-d array of the arguments' dtype
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return jnp.asarray(value, dtype=dtype)
    if isinstance(value, (_Array, np.ndarray)) and value.ndim == 0 and \
            value.dtype.kind in "biuf":
        return jnp.asarray(value, dtype=dtype if value.dtype.kind != "f" else value.dtype)
    what = f"an array of shape {value.shape}" if hasattr(value, "shape") else \
        f"{type(value).__name__} {value!r}"[:80]
    raise TypeError(f"{name} must be a real number (a float), got {what}")


def _float_dtype(arrays):
    return jnp.result_type(*arrays) if arrays else jnp.result_type(float)


def _symmetric(a, name, kind, definite):
    # checked on concrete arrays only: a traced array has no values to compare (under jit
    # the caller's matrix is taken as given)
    if isinstance(a, jax.core.Tracer):
        return
    a = np.asarray(a)
    worst = np.abs(a - a.T).max()
    if not worst:
        return
    scale = max(np.diagonal(a).max(), 0.0) if definite else max(a.max(), -a.min())
    bound = 1e-8 if a.dtype == np.float64 else 1e-5
    if worst > bound * scale:
        d = np.abs(a - a.T)
        i, j = np.unravel_index(np.argmax(d), d.shape)
        raise ValueError(f"{name} must be a {kind}, but {name}[{i}, {j}] = {float(a[i, j])!r} "
                         f"and {name}[{j}, {i}] = {float(a[j, i])!r}")


def _not_derived(names):
    raise TypeError("f_custom has matdiff's gradient only with respect to "
                    + ", ".join(names) + ": emit the module with --wrt for the others too, "
                    "or pass them through jax.lax.stop_gradient")
"""

_HELPERS = Helpers(HELPERS + ARGUMENT_HELPERS)

RESERVED = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist) | {
    "np", "jax", "jnp", "jsla", "math", "vars", "f", "f_and_grad", "f_custom"}


class JaxBody(Body):
    TARGET = "jax"
    LABEL = "JAX"
    XP = "jnp"
    LIKE = "dtype=_dt"

    def factor_call(self, x: E.Node, text: str) -> str:
        return f"jsla.cho_factor({text})" if self._spd(x) else f"_lu({text})"

    def solve(self, x: E.Node, transposed: bool, rhs: str) -> str:
        if x.op == "chol":  # a triangular factor: solved as it is, never factored again
            return f"jsla.solve_triangular({strip(self.expr(x))}, {rhs}, lower=True" \
                f"{', trans=1' if transposed else ''})"
        f = self.factor(x)
        if self._spd(x):
            return f"jsla.cho_solve({f}, {rhs})"
        return f"jsla.lu_solve({f}, {rhs}{', trans=1' if transposed else ''})"

    def inverse_call(self, x: E.Node) -> str:
        if x.op == "chol":
            return f"_inv_tri({strip(self.expr(x))})"
        return f"_inv_{'chol' if self._spd(x) else 'lu'}({self.factor(x)})"

    def outer(self, a: str, b: str) -> str:
        return f"jnp.outer({a}, {b})"

    def dot_self(self, u: str, vector: bool = False) -> str:
        return f"jnp.vdot({u}, {u})"

    def softplus(self, z: str) -> str:
        return f"jnp.logaddexp(0.0, {z})"

    def matrix_product(self, a: E.Node, b: E.Node) -> str | None:
        # XLA on the CPU copies a transposed matrix before a matrix-vector product (20x slower
        # at n = 1024 than without): Aᵀv is spelled v @ A and uᵀBᵀ is B @ u (vectors are 1-D)
        if a.op == "transpose" and a.kind == "matrix" and b.shape[1] is E.ONE and \
                not b.is_scalar:
            return f"({self.expr(b)} @ {self.expr(a.args[0])})"
        if b.op == "transpose" and b.kind == "matrix" and a.shape[0] is E.ONE and \
                not a.is_scalar:
            return f"({self.expr(b.args[0])} @ {self.expr(a)})"
        return None


def _array_check(p: str, name: str) -> list[str]:
    return [f"    if not isinstance({p}, _Array) or {p}.dtype.kind != 'f':",
            f"        {p} = _array({p}, {name!r})"]


def _no_scalar_check(p: str, name: str) -> list[str]:
    return []  # after the arrays: scalars take their dtype


def _literal(expr: str) -> bool:
    try:
        float(expr.strip("()"))
    except ValueError:
        return False
    return True


class JaxBackend(Backend):
    name = "jax"
    label = "JAX"
    package = "jax"
    extra = "jax"
    reserved = RESERVED
    body = JaxBody
    values_sentence = "\n".join(textwrap.wrap(
                      "Arguments are jax arrays (NumPy arrays and numbers are converted): "
                       "vectors 1-D, matrices 2-D, scalars 0-d arrays or numbers; float32 or "
                       "float64 (jax_enable_x64). Values are returned as jax arrays (a scalar "
                       "as a 0-d array). Every function is traceable under jax.jit and "
                       "jax.vmap; f_custom(**vars) is f with matdiff's gradient as its "
                       "custom_vjp backward rule.", 92))

    def for_code(self, code: str, emitter=None) -> list[str]:
        return _HELPERS.for_code(code)

    def imports(self, text: str) -> list[str]:
        out = ["import jax", "import jax.numpy as jnp"]
        if "jsla." in text:
            out.append("import jax.scipy.linalg as jsla")
        if "np." in text.replace("jnp.", ""):
            out.append("import numpy as np")
        return out

    def undefined_doc(self, variables, code: str) -> list[str]:
        out = ["Where f is undefined the functions answer as jax.numpy does (inf or nan; a "
               "traced function cannot raise on values)."]
        if "_lu(" in code or "_logdet(" in code or "cho_factor" in code:
            out.append("A singular matrix that must be inverted or solved with gives inf or "
                       "nan entries, its log-determinant -inf; an spd argument that is not "
                       "positive definite gives nan; the log-determinant of a matrix whose "
                       "determinant is negative is nan.")
        if any(v.attr[1] in ("symmetric", "spd") for v in variables.values()):
            out.append("A symmetric (or spd) argument that is not symmetric beyond round-off "
                       "raises ValueError when the function is called on concrete arrays "
                       "(under jit the matrix is taken as given).")
        out.append("Complex, non-numeric or empty input raises TypeError or ValueError naming "
                   "the argument.")
        return textwrap.wrap(" ".join(out), 92)

    def out(self, node: E.Node, expr: str) -> str:
        return f"jnp.asarray({expr}, dtype=_dt)" if _literal(expr) else expr

    def check_lines(self, variables, py, given):
        out = argument_checks(variables, py, given, _array_check, _no_scalar_check)
        arrays = [py[n] for n, v in variables.items() if v.kind != "scalar"]
        out.append(f"    _dt = {arrays[0]}.dtype" if len(arrays) == 1 else
                   f"    _dt = _float_dtype(({', '.join(arrays)}{',' if arrays else ''}))")
        for n, v in variables.items():
            if v.kind == "scalar":
                out.append(f"    {py[n]} = _scalar({py[n]}, {n!r}, _dt)")
        return out

    def inputs_function(self, variables, py):
        pys = [py[n] for n in variables] + ["_dt"]
        out = ['def _inputs(given):',
               '    """The arguments as jax arrays, checked against the expression\'s kinds and '
               'shapes\n    (only shapes and dtypes are read: traceable)."""']
        out += self.check_lines(variables, py, "given")
        out.append(f'    return {", ".join(pys)}')
        return "\n".join(out)

    bound = ("_dt",)

    def inline_checks(self, variables, py):
        return self.check_lines(variables, py, "vars")

    def direction_lines(self, v, name, scalar, of, expected):
        if scalar:
            return [f"    {v} = _scalar({v}, {name!r}, _dt)"]
        return [f"    if not isinstance({v}, _Array) or {v}.dtype.kind != 'f':",
                f"        {v} = _array({v}, {name!r})",
                f"    if {v}.shape != {expected}:",
                f"        _direction_error({name!r}, {v}.shape, {of!r}, {expected})"]

    def trailer(self, em) -> list[str]:
        d = em.d
        if not d.wrt:
            return []
        names = list(d.typed.variables)
        pys = [em.var_py[n] for n in names]
        wrt = [n for n in names if n in d.wrt]
        others = [n for n in names if n not in d.wrt]
        call = ", ".join(f"{n!r}: {p}" for n, p in zip(names, pys))
        params = ", ".join(pys)
        out = [
            f"def _f_positional({params}):",
            f"    return f(**{{{call}}})",
            "",
            "",
            "_f_vjp = jax.custom_vjp(_f_positional)",
            "",
            "",
            f"def _f_fwd({params}):",
            "    # the primals come wrapped (symbolic_zeros=True): .value, and .perturbed for",
            "    # whether jax differentiates with respect to this argument",
        ]
        if others:
            out.append(f"    if {' or '.join(f'{em.var_py[n]}.perturbed' for n in others)}:")
            out.append(f"        _not_derived({wrt!r})")
        out += ["    value, grads = f_and_grad(**{"
                + ", ".join(f"{n!r}: {p}.value" for n, p in zip(names, pys)) + "})",
                "    return value, grads",
                "",
                "",
                "def _f_bwd(grads, g):",
                "    return " + tuple_text(
                    f"g * grads[{n!r}]" if n in d.wrt else "None" for n in names),
                "",
                "",
                "_f_vjp.defvjp(_f_fwd, _f_bwd, symbolic_zeros=True)",
                "",
                "",
                "def f_custom(**vars):",
                *_docstring(
                    f"f = {_doc_f(d)}, differentiable by jax.grad with matdiff's gradient as "
                    "its backward rule (jax.custom_vjp): "
                    + ", ".join(f"∂f/∂{w}" for w in wrt) + ". "
                    + ("The other arguments are constants (differentiating with respect to "
                       "them raises TypeError). " if others else "")
                    + "Traceable under jit and vmap."),
                f"    {', '.join(pys + ['_dt'])} = _inputs(vars)",
                f"    return _f_vjp({params})",
                ]
        return out


def _docstring(text: str) -> list[str]:
    lines = textwrap.wrap(text, 88)
    lines[0] = '    """' + lines[0]
    return [lines[0]] + ["    " + ln for ln in lines[1:-1]] + \
        ([f'    {lines[-1]}"""'] if len(lines) > 1 else [lines[0] + '"""'])


def _doc_f(d) -> str:
    from ...printing.text import to_text

    return to_text(d.f)


BACKEND = JaxBackend()
