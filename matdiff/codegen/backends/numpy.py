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
import re
from dataclasses import dataclass

from ... import expr as E
from ...ops import OPERATORS
from ...printing.text import to_text
from ...simplify import logistic_argument
from ..naming import python_name
from ..plan import Plan, inverse_of, summed_square
from ..product_order import order_cost

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


def helpers_for(code: str) -> list[str]:
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


def size_name(d: E.Dim) -> str:
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


def strip(text: str) -> str:
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        return text[1:-1]
    return text


class NumpyBody:
    """One function body.

    Before lowering, every product is rewritten into binary products in the cheapest order
    (matrix-chain dynamic programming over the symbolic sizes), sums inside products that
    reach a vector are distributed, and scalings go to the smallest factor. Equal binary
    products are then one interned node, so a sub-product that f and a gradient share (Ax in
    xᵀAx and (A + Aᵀ)x) is computed once. Inverses are never formed unless an expression
    needs one whole: each inverted matrix is factored once (Cholesky for spd, LU otherwise)
    and X⁻¹B, BX⁻¹, X⁻ᵀB, det X and log det X all reuse that factorization. tr(AB) never
    forms AB; diag(v)·A scales rows."""

    def __init__(self, emitter, roots: list[E.Node]):
        self.em = emitter
        self.plan = Plan(roots, emitter.labels)
        self.lines: list[str] = []
        self.taken = set(emitter.taken)  # temporaries are local to each function
        self.exprs: dict[E.Node, str] = {}
        self.factors: dict[E.Node, str] = {}
        self.inverses: dict[E.Node, str] = {}
        self.bound_dims: set[E.Dim] = set()  # sizes named _m, _n, … for run-time choices
        self.counter = 0  # temporaries t1, t2, …
        self.ctx = _Ctx({}, emitter.dims)
        self.lse_softmax: dict[E.Node, tuple[str, str]] = {}

    def run(self) -> tuple[list[str], list[str]]:
        for n in self.plan.order:
            if n.op == "var":
                self.exprs[n] = self.em.var_py[n.attr[0]]
                continue
            if inverse_of(n) is not None:
                continue  # lowered where it is used: as a solve, or formed on demand
            if n.op == "chain_by_size":
                self.exprs[n] = self.ctx.names[n] = self.chain_by_size(n)
                continue
            text = self.lower(n)
            if text.isidentifier():  # already a name (a pair from _logsumexp_softmax)
                self.exprs[n] = self.ctx.names[n] = text
            elif (self.plan.uses.get(n, 0) >= 2 and n.op not in ("const", "transpose")) or \
                    n in self.em.labels:
                label = self.em.labels.get(n)
                if label is None:
                    label = self.temporary()
                name = python_name(label.replace("∂f/∂", "g_"), self.taken)
                self.lines.append(f"    {name} = {strip(text)}")
                self.ctx.names[n] = name
                self.exprs[n] = name
            else:
                self.exprs[n] = text
        return self.lines, [self.expr(r) for r in self.plan.roots]

    def lse_and_softmax(self, z: E.Node) -> tuple[str, str]:
        names = self.lse_softmax.get(z)
        if names is None:
            label = self.em.labels.get(self.plan.fused_softmax[z])  # s1 in the where block
            names = (python_name(self.temporary(), self.taken),
                     python_name(label or self.temporary(), self.taken))
            self.lines.append(f"    {names[0]}, {names[1]} = _logsumexp_softmax("
                              f"{strip(self.expr(z))})")
            self.lse_softmax[z] = names
        return names

    def temporary(self) -> str:
        """The next free t1, t2, … (skipping names the derivation's labels use)."""
        while True:
            self.counter += 1
            name = f"t{self.counter}"
            if name not in self.taken and name not in self.plan.label_names:
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
        sizes = {d: size_name(d) for d in dims}
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
                           f"        {name} = {strip(product_text(orders[0]))}",
                           "    else:",
                           f"        {name} = {strip(product_text(orders[1]))}"]
            return name
        self.lines.append(f"    _costs = ({', '.join(costs)})")
        self.lines.append("    _cheapest = _costs.index(min(_costs))")
        for k, order in enumerate(orders):
            head = "if" if k == 0 else "elif"
            if k == len(orders) - 1:
                self.lines.append("    else:")
            else:
                self.lines.append(f"    {head} _cheapest == {k}:")
            self.lines.append(f"        {name} = {strip(product_text(order))}")
        return name

    def expr(self, n: E.Node) -> str:
        hit = self.exprs.get(n)
        if hit is not None:
            return hit
        x, transposed = inverse_of(n)
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
                call = f"sla.cho_factor({strip(self.expr(x))}, check_finite=False)"
            else:
                det_only = x in self.plan.dets and x not in self.plan.inverted and \
                    x not in self.plan.logdets
                call = f"_lu({strip(self.expr(x))}, {None if det_only else to_text(x)!r})"
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
        NumpyBody.SPECIAL), else the generic one."""
        for special in NumpyBody.SPECIAL.get(f"fn:{n.attr}" if n.op == "fn" else n.op, ()):
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
        if self.plan.solvable(a) or self.plan.solvable(b) or a.op == "diag_embed" or \
                _is_vector(a) or _is_vector(b):
            return None
        return f"np.einsum('ij,ji->', {self.expr(a)}, {self.expr(b)})"

    def _det_from_factor(self, n: E.Node) -> str | None:
        x = n.args[0]
        if not (x in self.plan.inverted or self._spd(x) or self.em.one_blas):
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
        if z in self.plan.fused_softmax:
            return f"({self.expr(z)} - {self.lse_and_softmax(z)[0]})"
        # z − logsumexp(z): log of an underflowed softmax entry would be −inf (and 0·−inf in
        # yᵀlog(softmax(z)) NaN)
        return f"_log_softmax({self.expr(z)})"

    def _fused_with_softmax(self, n: E.Node) -> str | None:
        if n.args[0] not in self.plan.fused_softmax:
            return None
        return self.lse_and_softmax(n.args[0])[n.op == "softmax"]

    def _sigmoid_from_softplus(self, n: E.Node) -> str | None:
        """σ(z) = exp(z − softplus(z)) when softplus(z) is computed: one exponential."""
        softplus = self.ctx.names.get(self.plan.softplus.get(n.args[0]))
        return None if softplus is None else f"np.exp({self.expr(n.args[0])} - {softplus})"

    def _dsigmoid_from_sigmoid(self, n: E.Node) -> str | None:
        """σ' = σ(1 − σ) from the σ already computed."""
        s = self.ctx.names.get(E.fn("sigmoid", n.args[0]))
        return None if s is None else f"({s} * (1.0 - {s}))"

    def _dot_of_square(self, n: E.Node) -> str | None:
        """Σ u² and ‖u‖²: one dot product, no square, sum or square root."""
        u = summed_square(n)
        return None if u is None else f"np.vdot({self.expr(u)}, {self.expr(u)})"

    def product(self, a: E.Node, b: E.Node) -> str:
        if self.plan.solvable(a):
            x, transposed = inverse_of(a)
            return self.solve(x, transposed, self.expr(b))
        if self.plan.solvable(b):  # L·X⁻¹ = (X⁻ᵀ·Lᵀ)ᵀ
            x, transposed = inverse_of(b)
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
NumpyBody.SPECIAL = {
    "matmul": [NumpyBody._binary_product],
    "add": [NumpyBody.sum],
    "tr": [NumpyBody._trace_without_product],
    "det": [NumpyBody._det_from_factor],
    "logdet": [NumpyBody._det_from_factor],
    "fn:log": [NumpyBody._log],
    "logsumexp": [NumpyBody._fused_with_softmax],
    "softmax": [NumpyBody._fused_with_softmax],
    "fn:sigmoid": [NumpyBody._sigmoid_from_softplus],
    "fn:sigmoid'": [NumpyBody._dsigmoid_from_sigmoid],
    "sum": [NumpyBody._dot_of_square],
    "pow": [NumpyBody._dot_of_square],
}
