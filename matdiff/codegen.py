"""NumPy code generation: a self-contained module with f, grad_NAME and f_and_grad.

Inside the emitted functions vectors are 1-D arrays, as at the public boundary (SPEC §2), so
no call pays for reshaping: a transpose of a vector is a no-op, an outer product uvᵀ is
np.einsum('i,j->ij', u, v), and u @ v is the scalar uᵀv. Scalars are floats. Every
subexpression used more than once is computed once (common-subexpression elimination over f
and all gradients together), and named as in the derivation's `where` block (a1, h1, …)."""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap
import unicodedata
from dataclasses import dataclass

from . import expr as E
from .errors import DerivationError
from .ops import OPERATORS
from .printing.report import shared_intermediates
from .printing.text import to_text
from .product_order import RUNTIME_CHAIN_MAX, cheapest_orders, dp_order, order_cost
from .simplify import logistic_argument

# Every helper an emitted module may need; a module carries only those its functions use (and
# the ones those use). Each entry is one top-level definition (or assignment).
HELPERS = r"""
def _sigmoid(z):
    # stable for large |z|: 1/(1+exp(-z)) = exp(-log(1+exp(-z)))
    return np.exp(-np.logaddexp(0.0, -z))


def _dsigmoid(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


import scipy.special as _special


def _derf(z):
    # erf'(z) = 2/sqrt(pi) * exp(-z^2)
    return 1.1283791670955126 * np.exp(-z * z)


def _logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def _logsumexp_softmax(x):
    # both from one pass of exponentials
    m = np.max(x)
    e = np.exp(x - m)
    s = np.sum(e)
    return m + np.log(s), e / s


def _log_softmax(x):
    shifted = x - np.max(x)
    return shifted - np.log(np.sum(np.exp(shifted)))


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
    # the inverse from the Cholesky factor: LAPACK potri fills one triangle (read here as the
    # upper one), the other is mirrored block by block (a whole-matrix transpose-add strides
    # through memory)
    c, lower = f
    tri, info = sla.lapack.dpotri(c, lower=lower)
    full = np.triu(tri.T if lower else tri)
    n, b = full.shape[0], 256
    for i in range(0, n, b):
        block = full[i:i + b, i:i + b]
        block += np.triu(block, 1).T
        for j in range(i + b, n, b):
            full[j:j + b, i:i + b] = full[i:i + b, j:j + b].T
    return full


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


_F64 = np.dtype(np.float64)


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
        worst = np.abs(a @ u - u @ a).max()
        bound = 1e-8 * u.sum()
    scale = max(np.diagonal(a).max(), 0.0) if definite else max(a.max(), -a.min())
    if worst > bound * scale:
        d = np.abs(a - a.T)
        i, j = np.unravel_index(np.argmax(d), d.shape)
        raise ValueError(f"{name} must be a {kind}, but {name}[{i}, {j}] = {float(a[i, j])!r} "
                         f"and {name}[{j}, {i}] = {float(a[j, i])!r}")


def _probe(n, _cache={}):
    u = _cache.get(n)
    if u is None:
        u = _cache[n] = np.sqrt(np.arange(2.0, n + 2.0))
    return u


def _argument_error(given, names):
    missing = [n for n in names if n not in given]
    extra = [n for n in given if n not in names]
    if missing:
        raise TypeError("missing argument(s): " + ", ".join(missing))
    raise TypeError("unexpected argument(s): " + ", ".join(extra))


def _shape_words(shape):
    if len(shape) == 1:
        return f"has length {shape[0]}"
    return "is " + "×".join(str(k) for k in shape) if len(shape) == 2 else f"has shape {shape}"


def _shape_error(name, kind, symbolic, shape, ndim, expected=None, others=()):
    if expected is None:
        raise ValueError(f"{name} must be a {kind} ({ndim}-D array), got shape {shape}")
    clash = "".join(f"{other} {_shape_words(s)} but " for other, s in others)
    raise ValueError(f"{clash}{name} {_shape_words(shape)}: {name} must have shape "
                     f"{symbolic} = {expected}")


def _empty_error(name, shape):
    raise ValueError(f"{name} is empty (shape {shape}): every size must be at least 1")


def _direction_error(name, shape, variable, expected):
    raise ValueError(f"the direction {name} must have the shape of {variable}, {expected}, "
                     f"got {shape}")
"""


def _split_helpers(text: str) -> list[tuple[set[str], str]]:
    """(names it defines, text with its leading comment lines) of each top-level definition."""
    out = []
    for block in text.strip("\n").split("\n\n\n"):
        first = next(ln for ln in block.splitlines() if not ln.startswith("#"))
        if first.startswith("def "):
            names = {first[4:first.index("(")]}
        elif first.startswith("import "):  # import a.b as _name
            names = {first.rsplit(" as ", 1)[1].strip()}
        else:
            names = {t.strip() for t in first.split("=")[0].split(",")}
        out.append((names, block))
    return out


_HELPERS = _split_helpers(HELPERS)
_HELPER_TEXT = {name: block for names, block in _HELPERS for name in names}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _helpers_for(code: str) -> list[str]:
    """The helper definitions the code refers to, and those they refer to, in HELPERS order."""
    need: set[str] = set()
    todo = [code]
    while todo:
        for word in set(_IDENTIFIER.findall(todo.pop())):
            if word in _HELPER_TEXT and word not in need:
                need.add(word)
                todo.append(_HELPER_TEXT[word])
    return [block for names, block in _HELPERS if names & need]


# names a variable may not take in the emitted code: every builtin (the bodies call float,
# type, len, …; the checks catch KeyError), the module's imports and its public functions.
# Helpers, sizes and run-time temporaries all begin with "_", which python_name never returns.
RESERVED = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist) | {
    "np", "sla", "math", "vars", "f", "f_and_grad"}


def function_name(prefix: str, name: str) -> str:
    """grad_NAME as SPEC §2 says (grad_lambda is fine even though lambda is a keyword); a name
    Python cannot spell gets its characters' code points: grad_x₁ is grad_v_x_u2081."""
    candidate = prefix + name
    if candidate.isidentifier() and unicodedata.normalize("NFKC", candidate) == candidate:
        return candidate
    return prefix + "v_" + "".join(c if (c.isalnum() and c.isascii()) or c == "_"
                                   else f"_u{ord(c):04x}" for c in name)


def python_name(name: str, taken: set[str]) -> str:
    ok = name.isidentifier() and not keyword.iskeyword(name) and \
        unicodedata.normalize("NFKC", name) == name and not name.startswith("_")
    base = name if ok else "v_" + "".join(c if c.isalnum() and c.isascii() else "_" for c in name)
    out, i = base, 1
    while out in taken:
        i += 1
        out = f"{base}{i}"
    taken.add(out)
    return out


@dataclass
class _Ctx:
    """What an operator's NumPy lowering may ask of the module being written."""

    names: dict[E.Node, str]  # materialised nodes → Python variable
    dims: dict[E.Dim, str]  # symbolic dimension → expression giving its size

    def dim(self, d: E.Dim) -> str:
        return _dim(self, d)

    def shape(self, shape) -> str:
        return _shape(self, shape)

    @staticmethod
    def is_vector(n: E.Node) -> bool:
        return _is_vector(n)

    @staticmethod
    def text(n: E.Node) -> str:
        """n in the expression language (for messages the emitted code raises)."""
        return to_text(n)


def _dim(ctx: _Ctx, d: E.Dim) -> str:
    return "1" if d is E.ONE else ctx.dims[d]


def _shape(ctx: _Ctx, shape) -> str:
    """The NumPy shape: vectors (and rows, which are vectors here) are 1-D."""
    rows, cols = shape
    if cols is E.ONE:
        return _dim(ctx, rows)
    if rows is E.ONE:
        return _dim(ctx, cols)
    return f"({_dim(ctx, rows)}, {_dim(ctx, cols)})"


def _size_name(d: E.Dim) -> str:
    """_m for the size m (a local of the emitted functions; "_" keeps it off every variable)."""
    return "_" + re.sub(r"\W", "_", d.name, flags=re.ASCII)


def _is_vector(n: E.Node) -> bool:
    return (n.shape[0] is E.ONE) != (n.shape[1] is E.ONE)


def _lower(ctx: _Ctx, n: E.Node, a: list[str]) -> str:
    """A NumPy expression for node n, given its arguments' expressions: the operator's own
    NumPy lowering (matdiff/ops); products and sums, which need to see their operands, are
    lowered by _Body."""
    lowering = OPERATORS[n.op].lower.get("numpy") if n.op in OPERATORS else None
    if lowering is None:
        raise NotImplementedError(f"no NumPy lowering for '{n.op}'")
    return lowering(ctx, n, a)


class _Emitter:
    def __init__(self, derivation, extras=(), one_blas=False):
        self.d = derivation
        self.one_blas = one_blas  # every product through SciPy's BLAS (see _mm in HELPERS)
        self.taken: set[str] = set(RESERVED) | {
            function_name("grad_", w) for w in derivation.wrt} | {x.name for x in extras}
        self.var_py = {name: python_name(name, self.taken)
                       for name in derivation.typed.variables}
        for x in extras:  # a direction V is a parameter of its own function only
            if x.direction is not None:
                self.var_py[x.direction.attr[0]] = python_name(x.direction.attr[0],
                                                               set(self.taken))
        self.dims: dict[E.Dim, str] = {}
        for name, v in derivation.typed.variables.items():
            for axis, d in enumerate(v.shape):
                if d is not E.ONE and d not in self.dims:
                    self.dims[d] = f"{self.var_py[name]}.shape[{axis}]"
        roots = [derivation.f] + [derivation.gradients[w] for w in derivation.wrt] + [
            x.root for x in extras]
        free = {d for r in roots for n in E.walk(r) for d in n.shape
                if d is not E.ONE and d not in self.dims}
        if free:
            raise DerivationError(
                f"the size {', '.join(sorted(d.name for d in free))} is fixed by no variable "
                "(only by a constant such as vector(…) or eye), so generated code cannot know it")
        grads = [derivation.gradients[w] for w in derivation.wrt]
        self.labels = {x.node: x.name for x in shared_intermediates([derivation.f] + grads)}
        self.uses_scipy = False

    def body(self, roots: list[E.Node]) -> tuple[list[str], list[str]]:
        """Assignment lines computing every root once; returns (lines, root expressions)."""
        return _Body(self, roots).run()


def _size(d: E.Dim) -> int:
    return 1 if d is E.ONE else 1000


def _push_scale(c: E.Node, x: E.Node, memo: dict) -> E.Node:
    """c·x with the constant c moved through the last factor of a product and the first
    factor of a Hadamard product, down to where the backward pass starts."""
    key = (c, x)
    out = memo.get(key)
    if out is None:
        if x.op == "matmul" and len(x.args) == 2 and not x.args[1].is_scalar:
            out = E.make("matmul", (x.args[0], _push_scale(c, x.args[1], memo)), None, x.shape)
        elif x.op == "transpose" and x.kind == "matrix":  # c·Aᵀ = (c·A)ᵀ: shared with c·A
            inner = _push_scale(c, x.args[0], memo)
            out = E.make("transpose", (inner,), None, x.shape)
        elif x.op == "hadamard":
            out = E.make("hadamard", (_push_scale(c, x.args[0], memo),) + x.args[1:], None,
                         x.shape)
        else:
            out = E.make("scale", (c, x), None, x.shape)
        memo[key] = out
    return out


def _dag_cost(roots: list[E.Node]) -> float:
    """Floating-point operations of evaluating the DAG once (every dimension 1000)."""
    cost, seen = 0.0, set()
    for r in roots:
        for n in E.postorder(r, known=seen):
            seen.add(n)
            if n.op in ("var", "const"):
                continue
            size = _size(n.shape[0]) * _size(n.shape[1])
            cost += size * (_size(n.args[0].shape[1]) if n.op == "matmul" else 1)
    return cost


def _hoist_scalings(roots: list[E.Node]) -> list[E.Node]:
    """Constant factors moved to the start of the backward pass when that saves work: in
    ‖W₄tanh(…) − y‖² the 2 of each ∂f/∂Wₖ = 2(…)hᵀ becomes one 2(W₄h₃ − y) shared by all."""
    memo: dict = {}
    done: dict[E.Node, E.Node] = {}
    for r in roots:
        for n in E.postorder(r, known=done):
            args = tuple(done[a] for a in n.args)
            if n.op == "scale" and args[0].op == "const" and not n.is_scalar:
                done[n] = _push_scale(args[0], args[1], memo)
            else:
                done[n] = n if args == n.args else E.make(n.op, args, n.attr, n.shape)
    hoisted = [done[r] for r in roots]
    return hoisted if _dag_cost(hoisted) < _dag_cost(roots) else roots


def _softplus_argument(n: E.Node) -> E.Node | None:
    """z when n is softplus(z) or log(exp(z) + 1)."""
    if n.op == "fn" and n.attr == "softplus":
        return n.args[0]
    if n.op == "fn" and n.attr == "log":
        return logistic_argument(n.args[0])
    return None


def _summed_square(n: E.Node) -> E.Node | None:
    """u when n is sum(u⊙u), sum(u.^2) or ‖u‖²."""
    if n.op == "pow" and n.args[0].op == "norm2" and n.args[1].op == "const" and \
            n.args[1].attr == 2:
        return n.args[0].args[0]
    if n.op != "sum":
        return None
    x = n.args[0]
    if x.op == "hadamard" and len(x.args) == 2 and x.args[0] is x.args[1]:
        return x.args[0]
    if x.op == "epow" and x.args[1].op == "const" and x.args[1].attr == 2:
        return x.args[0]
    return None


def _inverse_of(n: E.Node) -> tuple[E.Node, bool] | None:
    """(X, transposed) when n is X⁻¹ or X⁻ᵀ."""
    if n.op == "inv":
        return n.args[0], False
    if n.op == "transpose" and n.args[0].op == "inv":
        return n.args[0].args[0], True
    return None


class _Body:
    """One function body.

    Before lowering, every product is rewritten into binary products in the cheapest order
    (matrix-chain dynamic programming over the symbolic sizes), sums inside products that
    reach a vector are distributed, and scalings go to the smallest factor. Equal binary
    products are then one interned node, so a sub-product that f and a gradient share (Ax in
    xᵀAx and (A + Aᵀ)x) is computed once. Inverses are never formed unless an expression
    needs one whole: each inverted matrix is factored once (Cholesky for spd, LU otherwise)
    and X⁻¹B, BX⁻¹, X⁻ᵀB, det X and log det X all reuse that factorization. tr(AB) never
    forms AB; diag(v)·A scales rows."""

    def __init__(self, emitter: _Emitter, roots: list[E.Node]):
        self.em = emitter
        self.lines: list[str] = []
        self.taken = set(emitter.taken)  # temporaries are local to each function
        self.exprs: dict[E.Node, str] = {}
        self.factors: dict[E.Node, str] = {}
        self.inverses: dict[E.Node, str] = {}
        self.bound_dims: set[E.Dim] = set()  # sizes named _m, _n, … for run-time choices
        self.counter = 0  # temporaries t1, t2, …
        self.ctx = _Ctx({}, emitter.dims)
        # inverses some expression needs whole (not only applied to something)
        parents: dict[E.Node, set[str]] = {}
        original = [n for r in roots for n in E.postorder(r)]
        for n in original:
            for a in n.args:
                parents.setdefault(a, set()).add(n.op)
        self.whole = {_inverse_of(n)[0] for n in original if _inverse_of(n) is not None and
                      (n in roots or parents.get(n, set()) - {"matmul", "transpose"})}
        self.inverted = {inv[0] for n in original if (inv := _inverse_of(n)) is not None}
        self.dets = {n.args[0] for n in original if n.op == "det"}
        self.logdets = {n.args[0] for n in original if n.op == "logdet"} | {
            n.args[0].args[0] for n in original
            if n.op == "fn" and n.attr == "log" and n.args[0].op == "det"}
        self.products: dict[tuple, E.Node] = {}  # flat factor list → its binary product
        self.static: dict[E.Node, E.Node] = {}  # chain_by_size → the order chosen statically
        done: dict[E.Node, E.Node] = {}
        for n in original:
            if n not in done:
                done[n] = self.binarize(n, done)
        self.roots = _hoist_scalings([done[r] for r in roots])
        self.uses: dict[E.Node, int] = {}
        self.order: list[E.Node] = []
        seen: set[E.Node] = set()
        for r in self.roots:
            for n in E.postorder(r):
                if n not in seen:
                    seen.add(n)
                    self.order.append(n)
                    for a in n.args:
                        self.uses[a] = self.uses.get(a, 0) + 1
        for r in self.roots:
            self.uses[r] = self.uses.get(r, 0) + 2
        self.label_names = {emitter.labels[n] for n in self.order if n in emitter.labels}
        for n in self.order:  # ‖u‖ and sum(u⊙u) read u twice (np.vdot(u, u)): u once, named
            u = n.args[0] if n.op == "norm2" else _summed_square(n)
            if u is not None:
                self.uses[u] = self.uses.get(u, 0) + 1
        # logsumexp(z) (or log softmax(z)) and softmax(z) together: one pass of exponentials
        needs_lse = {n.args[0] for n in self.order if n.op == "logsumexp"} | {
            n.args[0].args[0] for n in self.order
            if n.op == "fn" and n.attr == "log" and n.args[0].op == "softmax"}
        softmax_of = {n.args[0]: n for n in self.order if n.op == "softmax"}
        self.fused_softmax = {z: softmax_of[z] for z in needs_lse & set(softmax_of)}
        self.lse_softmax: dict[E.Node, tuple[str, str]] = {}
        # softplus(z) = log(1 + exp(z)) computed here makes σ(z) = exp(z − softplus(z)) one
        # exponential instead of two; such a softplus is named so that σ can read it
        self.softplus: dict[E.Node, E.Node] = {}
        for n in self.order:
            z = _softplus_argument(n)
            if z is not None:
                self.softplus.setdefault(z, n)
        for n in self.order:
            if n.op == "fn" and n.attr == "sigmoid" and n.args[0] in self.softplus:
                sp = self.softplus[n.args[0]]
                self.uses[sp] = self.uses.get(sp, 0) + 1

    # ------------------------------------------------------------ rewriting products

    def solvable(self, f: E.Node) -> bool:
        inv = _inverse_of(f)
        return inv is not None and inv[0] not in self.whole

    def binarize(self, n: E.Node, done: dict) -> E.Node:
        args = tuple(done[a] for a in n.args)
        if n.op == "matmul":
            return self.chain(list(args))
        if n.op == "tr" and args[0].op == "chain_by_size":  # a trace splits a static order
            return E.make("tr", (self.static[args[0]],), None, n.shape)
        if n.op == "scale" and args[1].op == "matmul" and not n.is_scalar:
            # c·(LR): the constant goes on the smallest of LR, L and R (in that order on ties),
            # never inside a product, so that L and R stay shared (X⁻ᵀu in uᵀX⁻¹v and in
            # −X⁻ᵀuvᵀX⁻ᵀ is one solve)
            c, product = args
            left, right = product.args

            def area(x):
                return _size(x.shape[0]) * _size(x.shape[1])
            options = [(area(product), 0)] + [
                (area(x), k) for k, x in ((1, left), (2, right))
                if _inverse_of(x) is None and x.op != "diag_embed"]
            pick = min(options)[1]
            if pick:
                operands = [left, right]
                x = operands[pick - 1]
                operands[pick - 1] = E.make("scale", (c, x), None, x.shape)
                return E.make("matmul", tuple(operands), None, product.shape)
        return n if args == n.args else E.make(n.op, args, n.attr, n.shape)

    def chain(self, factors: list[E.Node]) -> E.Node:
        key = tuple(factors)
        known = self.products.get(key)
        if known is not None:
            return known
        mirrored = self.products.get(tuple(E.transpose(f) for f in reversed(factors)))
        if mirrored is not None:  # (S⁻¹CS⁻¹)ᵀ when S⁻¹CᵀS⁻¹ is asked for and S is symmetric
            return E.make("transpose", (mirrored,), None, (mirrored.shape[1], mirrored.shape[0]))
        reaches_vector = any(d is E.ONE for f in factors for d in f.shape)
        if reaches_vector:  # (A + Aᵀ)x → Ax + Aᵀx: matrix-vector products beat the sum
            for i, f in enumerate(factors):
                if f.op == "add" and all(t.kind == "matrix" for t in f.args):
                    terms = [self.chain(factors[:i] + [t] + factors[i + 1:]) for t in f.args]
                    return E.make("add", tuple(terms), None, terms[0].shape)
        k = len(factors)
        size = [(_size(f.shape[0]), _size(f.shape[1])) for f in factors]
        best: dict[tuple[int, int], tuple[float, int]] = {
            (i, i): (float(size[i][0]) ** 3 if self.solvable(f) else 0.0, i)
            for i, f in enumerate(factors)}
        for length in range(2, k + 1):
            for i in range(k - length + 1):
                j = i + length - 1
                options = []
                for m in range(i, j):
                    left, right = best[(i, m)][0], best[(m + 1, j)][0]
                    rows, inner, cols = size[i][0], size[m][1], size[j][1]
                    if m == i and self.solvable(factors[i]):
                        step, left = inner * inner * cols, 0.0  # X⁻¹·R by a solve
                    elif m + 1 == j and self.solvable(factors[j]):
                        step, right = rows * inner * inner, 0.0  # L·X⁻¹ by a solve
                    else:
                        step = rows * inner * cols
                    # ties go to the rightmost split: ((AX)B)C, the order a person writes,
                    # so equal sub-products in f and the gradients coincide
                    options.append((left + right + step, -m))
                cost, m = min(options)
                # a sub-product computed elsewhere (Xw of softplus(Xw) in yᵀXw) costs nothing
                best[(i, j)] = (0.0 if tuple(factors[i:j + 1]) in self.products else cost, -m)
        chosen = self._tree(factors, best, 0, k - 1)
        if 3 <= k <= RUNTIME_CHAIN_MAX and all(
                f.kind == "matrix" and f.op != "diag_embed" and not self.solvable(f)
                for f in factors):
            orders = cheapest_orders(factors, dp_order(best, 0, k - 1))
            # which order is cheapest depends on the actual sizes; past three candidates the
            # branches would outweigh what they save, and the static order stands
            if 2 <= len(orders) <= 3:
                node = E.make("chain_by_size", tuple(factors), tuple(orders), chosen.shape)
                self.static[node] = chosen
                return node
        return chosen

    def _tree(self, factors, best, i: int, j: int) -> E.Node:
        if i == j:
            return factors[i]
        key = tuple(factors[i:j + 1])
        if key in self.products:  # the same sub-product elsewhere: one node, computed once
            return self.products[key]
        mirrored = self.products.get(tuple(E.transpose(f) for f in reversed(key)))
        if mirrored is not None:  # X⁻ᵀu where uᵀX⁻¹ is computed: its transpose
            return E.make("transpose", (mirrored,), None, (mirrored.shape[1], mirrored.shape[0]))
        m = best[(i, j)][1]
        left, right = self._tree(factors, best, i, m), self._tree(factors, best, m + 1, j)
        node = E.make("matmul", (left, right), None, (left.shape[0], right.shape[1]))
        self.products[key] = node
        return node

    # ------------------------------------------------------------ emitting

    def run(self) -> tuple[list[str], list[str]]:
        for n in self.order:
            if n.op == "var":
                self.exprs[n] = self.em.var_py[n.attr[0]]
                continue
            if _inverse_of(n) is not None:
                continue  # lowered where it is used: as a solve, or formed on demand
            if n.op == "chain_by_size":
                self.exprs[n] = self.ctx.names[n] = self.chain_by_size(n)
                continue
            text = self.lower(n)
            if text.isidentifier():  # already a name (a pair from _logsumexp_softmax)
                self.exprs[n] = self.ctx.names[n] = text
            elif (self.uses.get(n, 0) >= 2 and n.op not in ("const", "transpose")) or \
                    n in self.em.labels:
                label = self.em.labels.get(n)
                if label is None:
                    label = self.temporary()
                name = python_name(label.replace("∂f/∂", "g_"), self.taken)
                self.lines.append(f"    {name} = {_strip(text)}")
                self.ctx.names[n] = name
                self.exprs[n] = name
            else:
                self.exprs[n] = text
        return self.lines, [self.expr(r) for r in self.roots]

    def lse_and_softmax(self, z: E.Node) -> tuple[str, str]:
        names = self.lse_softmax.get(z)
        if names is None:
            label = self.em.labels.get(self.fused_softmax[z])  # s1 in the where block
            names = (python_name(self.temporary(), self.taken),
                     python_name(label or self.temporary(), self.taken))
            self.lines.append(f"    {names[0]}, {names[1]} = _logsumexp_softmax("
                              f"{_strip(self.expr(z))})")
            self.lse_softmax[z] = names
        return names

    def temporary(self) -> str:
        """The next free t1, t2, … (skipping names the derivation's labels use)."""
        while True:
            self.counter += 1
            name = f"t{self.counter}"
            if name not in self.taken and name not in self.label_names:
                return name

    def chain_by_size(self, n: E.Node) -> str:
        """A product whose cheapest order depends on sizes only known at run time: the
        candidate orders' costs compared on the actual shapes, each branch one order."""
        factors, orders = n.args, n.attr
        # every factor's own statements (a factorization, an inverse formed whole) come before
        # the branch: emitted inside one, they would be unindented there and missing in the others
        for factor in factors:
            self.expr(factor)
        dims = sorted({d for f in factors for d in f.shape}, key=lambda d: d.name)
        sizes = {d: _size_name(d) for d in dims}
        if not self.bound_dims.issuperset(dims):
            self.lines.append(f"    {', '.join(sizes[d] for d in dims)} = "
                              f"{', '.join(self.ctx.dims[d] for d in dims)}")
            self.bound_dims.update(dims)

        def cost_text(poly) -> str:
            terms = sorted((" * ".join(sorted(sizes[d] for d in mono)), c)
                           for mono, c in poly.items() if c)
            return " + ".join(("" if c == 1 else f"{c} * ") + t for t, c in terms)

        def product_text(order) -> str:
            if isinstance(order, int):
                return self.expr(factors[order])
            a, b = product_text(order[0]), product_text(order[1])
            return f"_mm({a}, {b})" if self.em.one_blas else f"({a} @ {b})"
        name = python_name(self.temporary(), self.taken)
        polys = [order_cost(o, list(factors))[0] for o in orders]
        if len(orders) == 2:  # terms both orders pay cancel
            for mono in set(polys[0]) & set(polys[1]):
                common = min(polys[0][mono], polys[1][mono])
                for poly in polys:
                    poly[mono] -= common
        costs = [cost_text(p) for p in polys]
        if len(orders) == 2:
            self.lines += [f"    if {costs[0]} <= {costs[1]}:",
                           f"        {name} = {_strip(product_text(orders[0]))}",
                           "    else:",
                           f"        {name} = {_strip(product_text(orders[1]))}"]
            return name
        self.lines.append(f"    _costs = ({', '.join(costs)})")
        self.lines.append("    _cheapest = _costs.index(min(_costs))")
        for k, order in enumerate(orders):
            head = "if" if k == 0 else "elif"
            if k == len(orders) - 1:
                self.lines.append("    else:")
            else:
                self.lines.append(f"    {head} _cheapest == {k}:")
            self.lines.append(f"        {name} = {_strip(product_text(order))}")
        return name

    def expr(self, n: E.Node) -> str:
        hit = self.exprs.get(n)
        if hit is not None:
            return hit
        x, transposed = _inverse_of(n)
        base = self.inverses.get(x)
        if base is None:  # needed whole (e.g. the gradient X⁻ᵀ): formed once, named
            base = python_name(f"{self._stem(x)}_inv", self.taken)
            how = f"_inv_chol({self.factor(x)})" if self._spd(x) else \
                f"_inv_lu({self.factor(x)}, {to_text(x)!r})"
            self.lines.append(f"    {base} = {how}")
            self.inverses[x] = base
        hit = self.exprs[n] = f"{base}.T" if transposed and not self._spd(x) else base
        return hit

    def factor(self, x: E.Node) -> str:
        name = self.factors.get(x)
        if name is None:
            name = python_name(f"{self._stem(x)}_{'chol' if self._spd(x) else 'lu'}", self.taken)
            # check_finite=False: NumPy's own solvers do not scan the input either (NaN in,
            # NaN out), and the scan is a full extra pass over the matrix. A matrix that is not
            # positive definite makes cho_factor raise LinAlgError; a singular one makes _lu
            # raise it, unless only its determinant (0) is taken from the factors
            if self._spd(x):
                call = f"sla.cho_factor({_strip(self.expr(x))}, check_finite=False)"
            else:
                det_only = x in self.dets and x not in self.inverted and x not in self.logdets
                call = f"_lu({_strip(self.expr(x))}, {None if det_only else to_text(x)!r})"
            self.lines.append(f"    {name} = {call}")
            self.factors[x] = name
            self.em.uses_scipy = True
        return name

    def _stem(self, x: E.Node) -> str:
        return self.em.var_py[x.attr[0]] if x.op == "var" else "m"

    def _spd(self, x: E.Node) -> bool:
        return x.op == "var" and x.attr[1] == "spd"

    def solve(self, x: E.Node, transposed: bool, rhs: str) -> str:
        """X⁻¹·rhs (or X⁻ᵀ·rhs) from the shared factorization of X."""
        f = self.factor(x)
        if self._spd(x):
            return f"sla.cho_solve({f}, {rhs}, check_finite=False)"
        return f"sla.lu_solve({f}, {rhs}{', trans=1' if transposed else ''}, check_finite=False)"

    def lower(self, n: E.Node) -> str:
        """NumPy text for n: the first special lowering of n's operator that applies (see
        _Body.SPECIAL), else the generic one."""
        for special in _Body.SPECIAL.get(f"fn:{n.attr}" if n.op == "fn" else n.op, ()):
            text = special(self, n)
            if text is not None:
                return text
        return _lower(self.ctx, n, [self.expr(a) for a in n.args])

    def _binary_product(self, n: E.Node) -> str:
        return self.product(n.args[0], n.args[1])

    def _trace_without_product(self, n: E.Node) -> str | None:
        """tr(AB) as Σ A ⊙ Bᵀ: AB is never formed."""
        if n.args[0].op != "matmul" or n.args[0] in self.ctx.names:
            return None
        a, b = n.args[0].args
        if self.solvable(a) or self.solvable(b) or a.op == "diag_embed" or \
                _is_vector(a) or _is_vector(b):
            return None
        return f"np.einsum('ij,ji->', {self.expr(a)}, {self.expr(b)})"

    def _det_from_factor(self, n: E.Node) -> str | None:
        x = n.args[0]
        if not (x in self.inverted or self._spd(x) or self.em.one_blas):
            return None
        return f"_{n.op}_{'chol' if self._spd(x) else 'lu'}({self.factor(x)})"

    def _log(self, n: E.Node) -> str | None:
        x = n.args[0]
        if x.op == "det":
            return self.lower(E.reduction("logdet", x.args[0]))
        z = logistic_argument(x)
        if z is not None:  # log(1 + exp(z)) without overflow: softplus
            return f"np.logaddexp(0.0, {self.expr(z)})"
        if x.op != "softmax":
            return None
        z = x.args[0]
        if z in self.fused_softmax:
            return f"({self.expr(z)} - {self.lse_and_softmax(z)[0]})"
        # z − logsumexp(z): log of an underflowed softmax entry would be −inf (and 0·−inf in
        # yᵀlog(softmax(z)) NaN)
        return f"_log_softmax({self.expr(z)})"

    def _fused_with_softmax(self, n: E.Node) -> str | None:
        if n.args[0] not in self.fused_softmax:
            return None
        return self.lse_and_softmax(n.args[0])[n.op == "softmax"]

    def _sigmoid_from_softplus(self, n: E.Node) -> str | None:
        """σ(z) = exp(z − softplus(z)) when softplus(z) is computed: one exponential."""
        softplus = self.ctx.names.get(self.softplus.get(n.args[0]))
        return None if softplus is None else f"np.exp({self.expr(n.args[0])} - {softplus})"

    def _dsigmoid_from_sigmoid(self, n: E.Node) -> str | None:
        """σ' = σ(1 − σ) from the σ already computed."""
        s = self.ctx.names.get(E.fn("sigmoid", n.args[0]))
        return None if s is None else f"({s} * (1.0 - {s}))"

    def _dot_of_square(self, n: E.Node) -> str | None:
        """Σ u² and ‖u‖²: one dot product, no square, sum or square root."""
        u = _summed_square(n)
        return None if u is None else f"np.vdot({self.expr(u)}, {self.expr(u)})"

    def product(self, a: E.Node, b: E.Node) -> str:
        if self.solvable(a):
            x, transposed = _inverse_of(a)
            return self.solve(x, transposed, self.expr(b))
        if self.solvable(b):  # L·X⁻¹ = (X⁻ᵀ·Lᵀ)ᵀ
            x, transposed = _inverse_of(b)
            if _is_vector(a):  # vectors are 1-D: no transposes
                return self.solve(x, not transposed, self.expr(a))
            return f"{self.solve(x, not transposed, f'{self.expr(a)}.T')}.T"
        if a.is_scalar or b.is_scalar:  # u(vᵀw): a 1×1 factor is a number, not a matrix
            return f"({self.expr(a)} * {self.expr(b)})"
        if a.op == "diag_embed":  # diag(v)·B scales the rows of B
            v = self.expr(a.args[0])
            return f"({v} * {self.expr(b)})" if _is_vector(b) else \
                f"({v}[:, None] * {self.expr(b)})"
        if a.shape[1] is E.ONE and not a.is_scalar and not b.is_scalar:
            # an outer product uvᵀ, not a rank-1 matrix product
            # (einsum's product loop is 1.5-2.5x faster than np.outer's broadcast for n ≥ 64)
            return f"np.einsum('i,j->ij', {self.expr(a)}, {self.expr(b)})"
        if self.em.one_blas and a.kind == "matrix":
            how = "_mm" if b.kind == "matrix" else "_mv"
            return f"{how}({self.expr(a)}, {self.expr(b)})"
        if self.em.one_blas and b.kind == "matrix" and a.shape[0] is E.ONE:  # xᵀB = (Bᵀx)ᵀ
            return f"_mv({self.expr(b)}.T, {self.expr(a)})"
        return f"({self.expr(a)} @ {self.expr(b)})"

    def sum(self, n: E.Node) -> str:
        """a − b rather than a + (−1·b); a constant all-ones term as the number 1.0."""
        out = ""
        for t in n.args:
            negative = t.op == "scale" and t.args[0].op == "const" and t.args[0].attr < 0
            body = t.args[1] if negative else t
            text = "1.0" if body.op == "ones" else self.expr(body)
            if negative and t.args[0].attr != -1:
                text = f"{float(-t.args[0].attr)!r} * {text}"
            sign = (" - " if negative else " + ") if out else ("-" if negative else "")
            out += sign + text
        return f"({out})"



# operator (fn:NAME for an element-wise function) → its special lowerings, tried in order;
# each returns None when it does not apply, and _lower takes what none of them does
_Body.SPECIAL = {
    "matmul": [_Body._binary_product],
    "add": [_Body.sum],
    "tr": [_Body._trace_without_product],
    "det": [_Body._det_from_factor],
    "logdet": [_Body._det_from_factor],
    "fn:log": [_Body._log],
    "logsumexp": [_Body._fused_with_softmax],
    "softmax": [_Body._fused_with_softmax],
    "fn:sigmoid": [_Body._sigmoid_from_softplus],
    "fn:sigmoid'": [_Body._dsigmoid_from_sigmoid],
    "sum": [_Body._dot_of_square],
    "pow": [_Body._dot_of_square],
}


def _strip(text: str) -> str:
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        return text[1:-1]
    return text


def _out(node: E.Node, expr: str) -> str:
    kind = node.kind
    if kind == "scalar":
        return f"float({expr})"
    return expr


def _shape_words(shape) -> str:
    rows, cols = shape
    if rows is E.ONE and cols is E.ONE:
        return "a float"
    if rows is E.ONE or cols is E.ONE:
        return f"{(cols if rows is E.ONE else rows).name}-vector"
    return f"{rows.name}×{cols.name} matrix"


def _returns(n: E.Node) -> str:
    words = _shape_words(n.shape)
    return words if n.is_scalar else ("an " if words[0] in "aeiofhlmnrsx" else "a ") + words


def _formula_doc(name: str, node: E.Node, labels: dict[E.Node, str]) -> str:
    """`name = formula (its shape)`; a long formula is written with the intermediates the
    function body names (a1 = W1*x, h1 = tanh(a1), …), as the derivation's where block."""
    text = to_text(node)
    if len(text) <= 90 or not labels:
        return f"{name} = {text} ({_returns(node)})"
    present = {n for n in E.postorder(node)}
    named = [(n, label) for n, label in labels.items() if n in present]
    placeholders = {n: E.var(label, "matrix" if n.kind == "matrix" else n.kind, n.shape)
                    for n, label in named}
    lines = [f"{name} = {to_text(E.substitute(node, placeholders))} ({_returns(node)})",
             "    where"]
    for n, label in named:  # each definition in terms of the earlier ones
        inner = {m: p for m, p in placeholders.items() if m is not n}
        lines.append(f"        {label} = {to_text(E.substitute(n, inner))}")
    return "\n".join(lines)


_KIND_WORDS = {"symmetric": "symmetric ", "spd": "symmetric positive definite "}


def _variable_doc(name: str, v: E.Node) -> str:
    """`x: vector of size n`, `A: m×n matrix`, `S: symmetric positive definite n×n matrix`."""
    shape = E.shape_text(v.shape)
    if v.kind == "matrix":
        shape += " matrix"
    return f"{name}: {_KIND_WORDS.get(v.attr[1], '')}{shape}"


def _arguments_doc(variables: dict[str, E.Node]) -> str:
    """The keyword arguments with their NumPy shapes, for each emitted docstring."""
    return "Arguments: " + "; ".join(_variable_doc(n, v) for n, v in variables.items()) + "."


@dataclass
class Extra:
    """One more emitted function: jac_NAME, hess_NAME or hvp_NAME(V, **vars)."""

    name: str
    doc: str
    root: E.Node
    direction: E.Node | None = None  # the V of an HVP (a var node)


def numpy_module(derivation, extras: list[Extra] = ()) -> str:
    seen: dict[str, Extra] = {}
    for x in extras:  # --wrt x --wrt x --hessian: one hess_x, one hvp_x
        seen.setdefault(x.name, x)
    extras = list(seen.values())
    functions = ["f"] + [function_name("grad_", w) for w in derivation.wrt] + \
        (["f_and_grad"] if derivation.wrt else []) + [x.name for x in extras]
    if len(set(functions)) < len(functions):
        twice = sorted({n for n in functions if functions.count(n) > 1})
        raise DerivationError(
            f"two variables would give the emitted module the same function name "
            f"({', '.join(twice)}): rename one of them")
    source, em = _module(derivation, extras, one_blas=False)
    if em.uses_scipy:  # a factorization is shared: keep every BLAS call in SciPy's OpenBLAS
        source, em = _module(derivation, extras, one_blas=True)
    return source


def _undefined_doc(variables: dict[str, E.Node], code: str) -> list[str]:
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
    out.append("Complex, non-numeric or empty input raises TypeError or ValueError naming the "
               "argument.")
    return textwrap.wrap(" ".join(out), 92)


def _module(derivation, extras: list[Extra], one_blas: bool) -> tuple[str, _Emitter]:
    em = _Emitter(derivation, extras, one_blas)
    d = derivation
    f_text = to_text(d.f)
    unpack = ", ".join(em.var_py[n] for n in d.typed.variables)
    names = list(d.typed.variables)
    head = f"    {unpack}{',' if len(names) == 1 else ''} = _inputs(vars)"

    arguments = _arguments_doc(d.typed.variables)

    def function(name: str, doc: str, roots: list[E.Node], ret: str,
                 inline_checks: bool = False) -> list[str]:
        body, exprs = em.body(roots)
        checks = [head] if not inline_checks else [
            "    # the checks of _inputs, inline (a call costs ~0.5 µs at small sizes)",
            "    _ndarray, _f64 = np.ndarray, _F64"] + check_lines(d.typed.variables, em.var_py,
                                                               "vars")
        out = [f"def {name}(**vars):", f'    """{doc}', "", f"    {arguments}", '    """'] + \
            checks + body
        out.append("    return " + ret.format(*[_out(r, e) for r, e in zip(roots, exprs)]))
        return out + ["", ""]

    functions = function("f", f"f = {f_text} ({_returns(d.f)})", [d.f], "{0}")
    for w in d.wrt:
        g = d.gradients[w]
        functions += function(function_name("grad_", w),
                              _formula_doc(f"∂f/∂{w}", g, em.labels), [g], "{0}")
    grads = [d.gradients[w] for w in d.wrt]
    pairs = ", ".join(f"{w!r}: {{{i + 1}}}" for i, w in enumerate(d.wrt))
    if d.wrt:
        functions += function("f_and_grad",
                              "(f, {" + ", ".join(f"{w!r}: ∂f/∂{w}" for w in d.wrt) +
                              "}) from one shared forward pass",
                              [d.f] + grads, "{0}, {{" + pairs + "}}", inline_checks=True)
    for extra in extras:
        body, exprs = em.body([extra.root])
        if extra.direction is None:
            out = [f"def {extra.name}(**vars):", f'    """{extra.doc}"""', head]
        else:
            out = [f"def {extra.name}({em.var_py[extra.direction.attr[0]]}, **vars):",
                   f'    """{extra.doc}"""', head] + _direction_check(em, extra)
        functions += out + body + [f"    return {_out(extra.root, exprs[0])}", "", ""]

    code = "\n".join([inputs_function(d.typed.variables, em.var_py), "", ""] + functions)
    helpers = _helpers_for(code)
    lines = [
        f'"""Generated by matdiff for f = {f_text}',
        "",
        "Variables: " + "; ".join(_variable_doc(n, v) for n, v in d.typed.variables.items())
        + ".",
    ]
    lines += [f"∂f/∂{w} = {to_text(d.gradients[w])}" for w in d.wrt]
    lines += ["Vectors are 1-D arrays, matrices 2-D arrays, scalars floats."]
    renamed = [f"{n} is {em.var_py[n]}" for n in names if em.var_py[n] != n]
    if renamed:
        lines += ["Inside the functions (not in their keyword arguments) the variable "
                  + ", ".join(renamed) + "."]
    defined = {function_name("grad_", w) for w in d.wrt} | {x.name for x in extras}
    called = [f"{function_name(p, w)} is {p}{w}" for w in names
              for p in ("grad_", "hess_", "hvp_", "jac_")
              if function_name(p, w) != p + w and function_name(p, w) in defined]
    if called:
        lines += ["Python identifiers cannot spell every name: " + ", ".join(called) + "."]
    lines += [""] + _undefined_doc(d.typed.variables, code) + ['"""', "", "import numpy as np"]
    if any("sla." in text for text in helpers + [code]):
        lines.append("import scipy.linalg as sla")
    for text in helpers:
        lines += ["", "", text]
    lines += ["", "", code]
    return "\n".join(lines).rstrip() + "\n", em


def _direction_check(em: _Emitter, extra: Extra) -> list[str]:
    """An HVP direction checked as the arguments are: real, and the shape of its variable."""
    direction = extra.direction
    v = em.var_py[direction.attr[0]]
    name = direction.attr[0]
    if direction.is_scalar:
        return [f"    if type({v}) is not float:", f"        {v} = _scalar({v}, {name!r})"]
    variables = em.d.typed.variables
    of = next((w for w in variables if function_name("hvp_", w) == extra.name),
              next(w for w, x in variables.items() if x.shape == direction.shape))
    dims = [em.dims[d] for d in direction.shape if d is not E.ONE]
    expected = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    return [f"    if type({v}) is not np.ndarray or {v}.dtype is not _F64:",
            f"        {v} = _array({v}, {name!r})",
            f"    if {v}.shape != {expected}:",
            f"        _direction_error({name!r}, {v}.shape, {of!r}, {expected})"]


def check_lines(variables: dict[str, E.Node], py: dict[str, str], given: str) -> list[str]:
    """The statements of the argument checks, reading the keyword dictionary `given` and
    binding each argument to its Python name (and each size to _m, _n, …)."""
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
    for name, p in zip(names, pys):
        v = variables[name]
        if v.kind == "scalar":
            out.append(f'    if type({p}) is not float:')
            out.append(f'        {p} = _scalar({p}, {name!r})')
            continue
        out.append(f'    if type({p}) is not _ndarray or {p}.dtype is not _f64:')
        out.append(f'        {p} = _array({p}, {name!r})')
        dims = [d for d in v.shape if d is not E.ONE]
        kind = {"symmetric": "symmetric matrix", "spd": "symmetric positive definite matrix"}.get(
            v.attr[1], v.attr[1])
        symbolic = "(" + ", ".join(d.name for d in dims) + ("," if len(dims) == 1 else "") + ")"
        fail = f'_shape_error({name!r}, {kind!r}, {symbolic!r}, {p}.shape, {len(dims)}'
        fresh = []  # sizes this argument fixes first
        if any(d not in bound for d in dims):
            out.append(f'    if {p}.ndim != {len(dims)}:')
            out.append(f'        {fail})')
            for axis, d in enumerate(dims):
                if d not in bound:
                    bound[d] = _size_name(d)
                    source[d] = p
                    out.append(f'    {bound[d]} = {p}.shape[{axis}]')
                    fresh.append(bound[d])
            out.append(f'    if not {" * ".join(fresh)}:')
            out.append(f'        _empty_error({name!r}, {p}.shape)')
        if len(fresh) < len(dims):  # some size is known already (or repeats, as in a square S)
            expected = "(" + ", ".join(bound[d] for d in dims) + ("," if len(dims) == 1 else "") \
                + ")"
            others = list(dict.fromkeys(source[d] for d in dims if source[d] != p))
            py_name = dict(zip(pys, names))
            blame = "".join(f"({py_name[o]!r}, {o}.shape)," for o in others)
            out.append(f'    if {p}.shape != {expected}:')
            out.append(f'        {fail}, {expected}, ({blame}))' if blame else
                       f'        {fail}, {expected})')
        if v.attr[1] in ("symmetric", "spd"):
            out.append(f'    _symmetric({p}, {name!r}, {kind!r}, {v.attr[1] == "spd"})')
    return out


def inputs_function(variables: dict[str, E.Node], py: dict[str, str]) -> str:
    """Straight-line argument checks for this expression's variables: one dictionary lookup
    per argument, an identity test for arrays that are already float64, one tuple comparison
    per shape. The hand-written functions this code competes with check nothing, so the
    checks must cost well under a microsecond; messages are built only on failure."""
    names = list(variables)
    pys = [py[n] for n in names]
    out = ['def _inputs(given, _ndarray=np.ndarray, _f64=_F64):',
           '    """The arguments as arrays, checked against the expression\'s kinds and shapes."""']
    out += check_lines(variables, py, "given")
    out.append(f'    return {", ".join(pys)}{"," if len(names) == 1 else ""}')
    return "\n".join(out)
