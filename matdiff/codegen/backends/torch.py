"""The PyTorch backend: spells a Plan (codegen/plan.py) in torch and torch.linalg.

The emitted functions take tensors on any device (NumPy arrays, lists and numbers are
converted; new tensors take the arguments' dtype and device), factor with torch.linalg
(cholesky_ex and cholesky_solve for spd, lu_factor_ex and lu_solve otherwise) and never
read a value back to Python inside the functions: no device synchronisation. On the CPU,
where reading back costs nothing, a singular matrix or an spd argument that is not
positive definite raises torch.linalg.LinAlgError as torch.linalg.inv does, and the
symmetry of an spd argument is checked; on an accelerator those checks are skipped and the
answer is inf or nan.

The module also defines `MatdiffF`, a torch.autograd.Function whose forward is f and whose
backward is matdiff's gradient: MatdiffF.apply(A, x, …) with the arguments in the order the
module docstring lists."""

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
    return torch.sigmoid(z)


def _dsigmoid(z):
    s = torch.sigmoid(z)
    return s * (1.0 - s)


import torch.special as _special


def _derf(z):
    # erf'(z) = 2/sqrt(pi) * exp(-z^2)
    return 1.1283791670955126 * torch.exp(-z * z)


def _softplus(z):
    # log(1 + exp(z)) without overflow
    return torch.logaddexp(z, torch.zeros_like(z))


def _vdot(a, b):
    # the sum of a ⊙ b over every entry (torch.vdot takes only 1-D tensors)
    return torch.dot(a.reshape(-1), b.reshape(-1))


def _logsumexp(x):
    return torch.logsumexp(x.reshape(-1), 0)


def _softmax(x):
    return torch.softmax(x, 0)


def _logsumexp_softmax(x):
    # both from one pass of exponentials
    m = torch.max(x)
    e = torch.exp(x - m)
    s = torch.sum(e)
    return m + torch.log(s), e / s


def _log_softmax(x):
    return torch.log_softmax(x, 0)


def _softmax_axis(z, axis):
    # softmax of each column (axis 0) or row (axis 1), max-shifted by torch
    return torch.softmax(z, axis)


def _log_softmax_axis(z, axis):
    return torch.log_softmax(z, axis)


def _logsumexp_axis(z, axis):
    return torch.logsumexp(z, axis)


def _log_softmax_softmax_axis(z, axis):
    # log softmax and softmax of each column (axis 0) or row (axis 1), one pass of exponentials
    shifted = z - torch.amax(z, axis, keepdim=True)
    e = torch.exp(shifted)
    s = torch.sum(e, axis, keepdim=True)
    return shifted - torch.log(s), e / s


def _logsumexp_softmax_axis(z, axis):
    m = torch.amax(z, axis, keepdim=True)
    e = torch.exp(z - m)
    s = torch.sum(e, axis, keepdim=True)
    return torch.squeeze(m + torch.log(s), axis), e / s


def _check_info(info, name):
    # only on the CPU, where reading the status back costs nothing (no device sync)
    if info.device.type == "cpu" and int(info) > 0:
        raise torch.linalg.LinAlgError(
            f"{name} is singular or not positive definite: it has no inverse (nor "
            "log-determinant)")


def _logdet(x, name):
    # -inf for a singular matrix, nan for a negative determinant (as the NumPy module, but
    # without an exception where that would need a device sync)
    sign, value = torch.linalg.slogdet(x)
    return torch.where(sign > 0, value, torch.where(sign == 0, -torch.inf, torch.nan))


def _chol(a, name):
    c, info = torch.linalg.cholesky_ex(a)
    _check_info(info, name)
    return c


def _lu(a, name):
    lu, piv, info = torch.linalg.lu_factor_ex(a)
    if name is not None:
        _check_info(info, name)
    return lu, piv


def _cho_solve(c, b):
    if b.ndim == 1:
        return torch.cholesky_solve(b[:, None], c)[:, 0]
    return torch.cholesky_solve(b, c)


def _lu_solve(f, b, adjoint=False):
    if b.ndim == 1:
        return torch.linalg.lu_solve(f[0], f[1], b[:, None], adjoint=adjoint)[:, 0]
    return torch.linalg.lu_solve(f[0], f[1], b, adjoint=adjoint)


def _swap_sign(piv):
    # (-1)^(number of row interchanges); torch's pivots count from 1
    steps = torch.arange(1, piv.shape[0] + 1, device=piv.device, dtype=piv.dtype)
    return 1.0 - 2.0 * (torch.count_nonzero(piv != steps) % 2)


def _det_lu(f):
    lu, piv = f
    return _swap_sign(piv) * torch.prod(torch.diagonal(lu))


def _logdet_lu(f):
    lu, piv = f
    diag = torch.diagonal(lu)
    sign = _swap_sign(piv) * torch.prod(torch.sign(diag))
    value = torch.sum(torch.log(torch.abs(diag)))
    return torch.where(sign > 0, value, torch.where(sign == 0, -torch.inf, torch.nan))


def _inv_lu(f):
    return torch.linalg.lu_solve(f[0], f[1], torch.eye(f[0].shape[0], dtype=f[0].dtype,
                                                       device=f[0].device))


def _inv_chol(c):
    return torch.cholesky_inverse(c)


def _det_chol(c):
    return torch.prod(torch.diagonal(c)) ** 2


def _logdet_chol(c):
    # the Cholesky factor's diagonal is positive
    return 2.0 * torch.sum(torch.log(torch.diagonal(c)))


# Matrix functions (ops/matrix_functions.py): one eigendecomposition of the symmetric part, or
# one thin SVD, per matrix and function body, named once and shared by f and the gradient
def _factor(kind, a):
    if kind.endswith("eigh"):
        return torch.linalg.eigh(a if kind.startswith("symmetric") else (a + a.mT) / 2)
    if kind.endswith("eigvalsh"):
        return torch.linalg.eigvalsh(a if kind.startswith("symmetric") else (a + a.mT) / 2)
    if kind == "svd":
        return torch.linalg.svd(a, full_matrices=False)
    return torch.linalg.svdvals(a)


def _spectral_fn(op, w):
    # log and sqrt of a non-positive eigenvalue give nan (or -inf)
    return {"expm": torch.exp, "logm": torch.log, "sqrtm": torch.sqrt}[op](w)


def _matfun_eig(eig, op):
    w, u = eig
    return (u * _spectral_fn(op, w)) @ u.mT


def _frechet_eig(eig, e, op):
    # Daleckii-Krein: U (F * (U^T E U)) U^T, F the divided differences of f at the eigenvalues
    # (the derivative where two eigenvalues agree to sqrt(eps))
    w, u = eig
    f = _spectral_fn(op, w)
    fp = f if op == "expm" else 1.0 / w if op == "logm" else 0.5 / f
    dw = w[:, None] - w[None, :]
    tol = torch.finfo(w.dtype).eps ** 0.5
    close = torch.abs(dw) <= tol * torch.clamp(torch.abs(w[:, None]), min=1.0)
    k = torch.where(close, (fp[:, None] + fp[None, :]) / 2,
                    (f[:, None] - f[None, :]) / torch.where(close, torch.ones_like(dw), dw))
    return u @ (k * (u.mT @ e @ u)) @ u.mT


def _unit_sign(v):
    # the entry of largest magnitude positive
    return v * torch.where(v[torch.argmax(torch.abs(v))] >= 0, 1.0, -1.0).to(v.dtype)


def _eigvec_eig(eig, last):
    return _unit_sign(eig[1][:, -1 if last else 0])


def _eigvec_svd(svd):
    # the first right singular vector of X: the top eigenvector of X^T X
    return _unit_sign(svd[2][0])


def _expm_frechet(a, e):
    # the block identity expm([[A, E], [0, A]]) = [[expm(A), L(A, E)], [0, expm(A)]]
    n = a.shape[0]
    top = torch.cat([a, e], 1)
    bottom = torch.cat([torch.zeros_like(a), a], 1)
    return torch.linalg.matrix_exp(torch.cat([top, bottom], 0))[:n, n:]


def _trilhalf(a):
    return torch.tril(a, -1) + torch.diag(torch.diagonal(a)) / 2


def _pinv_corank1(a):
    # (λI − S)⁺ for an eigenvalue λ of S: the eigenvalue of a that is 0 in exact arithmetic is
    # rounding, which torch.linalg.pinv may invert; it is dropped by position
    w, u = torch.linalg.eigh((a + a.mT) / 2)
    keep = torch.arange(w.shape[0]) != torch.argmin(torch.abs(w))
    inverse = torch.where(keep, 1.0 / torch.where(keep, w, torch.ones_like(w)),
                          torch.zeros_like(w))
    return (u * inverse) @ u.mT


def _tri_solve(l, b, trans=False):
    # L^-1 b (L^-T b) for a lower-triangular L, b a vector or a matrix
    m = b[:, None] if b.ndim == 1 else b
    x = torch.linalg.solve_triangular(l.mT if trans else l, m, upper=trans)
    return x[:, 0] if b.ndim == 1 else x


def _inv_tri(l):
    eye = torch.eye(l.shape[0], dtype=l.dtype, device=l.device)
    return torch.linalg.solve_triangular(l, eye, upper=False)


_Tensor = torch.Tensor


def _array(value, name):
    # the slow path of the argument checks: anything that is not already a floating tensor
    if isinstance(value, _Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must be a tensor of real numbers, got dtype {value.dtype} "
                            "(complex input: pass the real part, if that is what you mean)")
        return value.to(torch.get_default_dtype())
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        hint = " (complex input: pass the real part, if that is what you mean)" \
            if a.dtype.kind == "c" else ""
        raise TypeError(f"{name} must be an array of real numbers, got dtype {a.dtype}{hint}")
    return torch.as_tensor(a if a.dtype.kind == "f" else a.astype(np.float64),
                           dtype=None if a.dtype.kind == "f" else torch.get_default_dtype())


def _scalar(value, name, dtype, device):
    # a real number (or 0-d tensor) as a 0-d tensor of the arguments' dtype and device;
    # torch.full launches a fill, it does not copy from the host and wait
    if isinstance(value, _Tensor) and value.ndim == 0 and not value.is_complex():
        return value if value.is_floating_point() else value.to(dtype)
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return torch.full((), float(value), dtype=dtype, device=device)
    what = f"an array of shape {tuple(value.shape)}" if hasattr(value, "shape") else \
        f"{type(value).__name__} {value!r}"[:80]
    raise TypeError(f"{name} must be a real number (a float), got {what}")


def _scalar_like(values):
    for v in values:
        if isinstance(v, _Tensor) and v.is_floating_point():
            return v.dtype, v.device
    return torch.float64, None


def _symmetric(a, name, kind, definite):
    # on the CPU only: elsewhere the comparison would wait for the device
    if a.device.type != "cpu" or torch.equal(a, a.T):  # exactly symmetric: one comparison
        return
    d = (a - a.T).abs()
    worst = float(d.max())
    if not worst:
        return
    scale = max(float(torch.diagonal(a).max()), 0.0) if definite else float(a.abs().max())
    bound = 1e-8 if a.dtype == torch.float64 else 1e-5
    if worst > bound * scale:
        i, j = divmod(int(torch.argmax(d)), a.shape[1])
        raise ValueError(f"{name} must be a {kind}, but {name}[{i}, {j}] = {float(a[i, j])!r} "
                         f"and {name}[{j}, {i}] = {float(a[j, i])!r}")


def _not_derived(names):
    raise RuntimeError("MatdiffF has matdiff's gradient only with respect to "
                       + ", ".join(names) + ": emit the module with --wrt for the others too, "
                       "or pass them detached")
"""

_HELPERS = Helpers(HELPERS + ARGUMENT_HELPERS)

RESERVED = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist) | {
    "np", "torch", "math", "vars", "f", "f_and_grad", "MatdiffF", "ctx"}


class TorchBody(Body):
    TARGET = "torch"
    LABEL = "PyTorch"
    XP = "torch"
    LIKE = "dtype=_dt, device=_dev"

    def factor_call(self, x: E.Node, text: str) -> str:
        if self._spd(x):
            return f"_chol({text}, {self.ctx.text(x)!r})"
        det_only = x in self.plan.dets and x not in self.plan.inverted and \
            x not in self.plan.logdets
        return f"_lu({text}, {None if det_only else self.ctx.text(x)!r})"

    def solve(self, x: E.Node, transposed: bool, rhs: str) -> str:
        if x.op == "chol":  # a triangular factor: solved as it is, never factored again
            return f"_tri_solve({strip(self.expr(x))}, {rhs}{', True' if transposed else ''})"
        f = self.factor(x)
        if self._spd(x):
            return f"_cho_solve({f}, {rhs})"
        return f"_lu_solve({f}, {rhs}{', True' if transposed else ''})"

    def inverse_call(self, x: E.Node) -> str:
        if x.op == "chol":
            return f"_inv_tri({strip(self.expr(x))})"
        return f"_inv_{'chol' if self._spd(x) else 'lu'}({self.factor(x)})"

    def outer(self, a: str, b: str) -> str:
        return f"torch.outer({a}, {b})"

    def dot_self(self, u: str, vector: bool = False) -> str:
        return f"_vdot({u}, {u})"

    def dot(self, a: str, b: str, vector: bool = False) -> str:
        return f"_vdot({a}, {b})"

    def softplus(self, z: str) -> str:
        return f"_softplus({z})"


def _array_check(p: str, name: str) -> list[str]:
    return [f"    if type({p}) is not _Tensor or not {p}.is_floating_point():",
            f"        {p} = _array({p}, {name!r})"]


def _no_scalar_check(p: str, name: str) -> list[str]:
    return []  # after the arrays: scalars take their dtype and device


def _literal(expr: str) -> bool:
    try:
        float(expr.strip("()"))
    except ValueError:
        return False
    return True


class TorchBackend(Backend):
    name = "torch"
    label = "PyTorch"
    package = "torch"
    extra = "torch"
    reserved = RESERVED
    body = TorchBody
    bound = ("_dt", "_dev")
    values_sentence = "\n".join(textwrap.wrap(
        "Arguments are torch tensors on any one device (NumPy arrays and numbers are "
        "converted): vectors 1-D, matrices 2-D, scalars 0-d tensors or numbers; float32 or "
        "float64. Values are returned as tensors (a scalar as a 0-d tensor) and are never "
        "read back to Python inside the functions (no device synchronisation). "
        "MatdiffF.apply(…) is f as a torch.autograd.Function whose backward is matdiff's "
        "gradient.", 92))

    def for_code(self, code: str, emitter=None) -> list[str]:
        return _HELPERS.for_code(code)

    def imports(self, text: str) -> list[str]:
        out = ["import torch"]
        if "np." in text:
            out.append("import numpy as np")
        return out

    def undefined_doc(self, variables, code: str) -> list[str]:
        out = ["Where f is undefined the functions answer as torch does (inf or nan)."]
        if "_lu(" in code or "_logdet(" in code or "_chol(" in code:
            out.append("On the CPU a singular matrix that must be inverted or solved with (or "
                       "an spd argument that is not positive definite) raises "
                       "torch.linalg.LinAlgError; on other devices the answer is inf or nan. "
                       "The log-determinant of a singular matrix is -inf, of a matrix whose "
                       "determinant is negative nan.")
        if any(v.attr[1] in ("symmetric", "spd") for v in variables.values()):
            out.append("A symmetric (or spd) tensor on the CPU that is not symmetric beyond "
                       "round-off raises ValueError (elsewhere it is taken as given).")
        out.append("Complex, non-numeric or empty input raises TypeError or ValueError naming "
                   "the argument.")
        return textwrap.wrap(" ".join(out), 92)

    def out(self, node: E.Node, expr: str) -> str:
        if _literal(expr):
            return f"torch.full((), {expr}, dtype=_dt, device=_dev)"
        return expr

    def check_lines(self, variables, py, given):
        out = argument_checks(variables, py, given, _array_check, _no_scalar_check)
        arrays = [py[n] for n, v in variables.items() if v.kind != "scalar"]
        if arrays:
            out.append(f"    _dt, _dev = {arrays[0]}.dtype, {arrays[0]}.device")
        else:  # scalars only: a tensor's dtype and device, or float64 for Python numbers
            scalars = [py[n] for n in variables]
            out.append(f"    _dt, _dev = _scalar_like(({', '.join(scalars)},))")
        for n, v in variables.items():
            if v.kind == "scalar":
                out.append(f"    {py[n]} = _scalar({py[n]}, {n!r}, _dt, _dev)")
        return out

    def inputs_function(self, variables, py):
        pys = [py[n] for n in variables] + list(self.bound)
        out = ['def _inputs(given):',
               '    """The arguments as tensors, checked against the expression\'s kinds and '
               'shapes."""']
        out += self.check_lines(variables, py, "given")
        out.append(f'    return {", ".join(pys)}')
        return "\n".join(out)

    def inline_checks(self, variables, py):
        return self.check_lines(variables, py, "vars")

    def direction_lines(self, v, name, scalar, of, expected):
        if scalar:
            return [f"    {v} = _scalar({v}, {name!r}, _dt, _dev)"]
        return [f"    if type({v}) is not _Tensor or not {v}.is_floating_point():",
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
        others = [i for i, n in enumerate(names) if n not in d.wrt]
        params = ", ".join(pys)
        doc = textwrap.wrap(
            "f as a torch.autograd.Function: forward is f, backward is matdiff's gradient ("
            + ", ".join(f"∂f/∂{w}" for w in wrt) + "). Call MatdiffF.apply(" + params
            + ") with the arguments in this order (a Function takes no keywords). "
            + ("The other arguments are constants: one that requires grad raises "
               "RuntimeError. " if others else "")
            + "Only first derivatives (backward is once differentiable).", 88)
        out = ["class MatdiffF(torch.autograd.Function):", '    """' + doc[0]]
        out += ["    " + ln for ln in doc[1:]] + ['    """', "",
                "    @staticmethod",
                f"    def forward(ctx, {params}):",
                f"        given = {{{', '.join(f'{n!r}: {p}' for n, p in zip(names, pys))}}}",
                "        needs = ctx.needs_input_grad"]
        if others:
            out += [f"        if {' or '.join(f'needs[{i}]' for i in others)}:",
                    f"            _not_derived({wrt!r})"]
        out += ["        if not any(needs):",
                "            ctx.grads = None",
                "            return f(**given)",
                "        value, ctx.grads = f_and_grad(**given)",
                "        return value",
                "",
                "    @staticmethod",
                "    @torch.autograd.function.once_differentiable",
                "    def backward(ctx, g):",
                "        grads = ctx.grads",
                "        return " + tuple_text(
                    f"g * grads[{n!r}]" if n in d.wrt else "None" for n in names)]
        return out


BACKEND = TorchBackend()
