"""Axis forms for mini-batches (samples as columns), MATLAB's dimension argument: d = 1 runs
down the columns (one result per column), d = 2 along the rows (one result per row).

    sum(X, 1) = 1ᵀX, sum(X, 2) = X1        products with the ones vector (no operator of their own)
    mean(X), mean(X, d)                     `mean`: linear, its peel rule spreads G over the axis
    size(X, d)                              the number of rows (1) or columns (2): the n of 1/n
    softmax(Z, d)                           `softmax_axis`: each column (row) sums to 1
    logsumexp(Z, d)                         `logsumexp_axis`: a row (column) of log-sum-exps
    log(softmax(Z, d))                      `log_softmax_axis`: Z − 1·logsumexp(Z, 1), stable

Vectors and scalars reduce to the operators they already have (softmax(z, 1) of a column z is
softmax(z), logsumexp(z, 2) is z); the axis operators are only built for matrices. Every
lowering is max-shifted with one pass of exponentials."""

from __future__ import annotations

from ..ir import expr as E
from . import reductions  # noqa: F401  (sum, softmax, logsumexp are declared first)
from .combinators import constant_d, linear_d
from .language import Call, declare_axis_form, declare_call
from .lazy import np
from .registry import ATOM, DRule, Operator, PeelRule, Spelling, declare

ONE = E.ONE


def _ones_col(d: E.Dim) -> E.Node:
    return E.ones((d, ONE))


def _ones_row(d: E.Dim) -> E.Node:
    return E.ones((ONE, d))


def column_sums(x: E.Node) -> E.Node:
    """1ᵀX (1×n); for a column vector the scalar 1ᵀx."""
    if x.shape[0] is ONE:
        return x
    if x.shape[1] is ONE:
        return E.reduction("sum", x)
    return E.matmul(_ones_row(x.shape[0]), x)


def row_sums(x: E.Node) -> E.Node:
    """X1 (m×1); for a row vector the scalar xᵀ1."""
    if x.shape[1] is ONE:
        return x
    if x.shape[0] is ONE:
        return E.reduction("sum", x)
    return E.matmul(x, _ones_col(x.shape[1]))


def axis_sum(x: E.Node, d: int) -> E.Node:
    return column_sums(x) if d == 1 else row_sums(x)


def spread(g: E.Node, like: E.Node, d: int) -> E.Node:
    """g (a row for d = 1, a column for d = 2) repeated to like's shape: 1g or g1ᵀ."""
    if d == 1:
        return g if like.shape[0] is ONE else E.matmul(_ones_col(like.shape[0]), g)
    return g if like.shape[1] is ONE else E.matmul(g, _ones_row(like.shape[1]))


# ---------------------------------------------------------------- builders


def size(x: E.Node, d: int) -> E.Node:
    """The number of rows (d = 1) or columns (d = 2) of x, as a scalar. A leaf: `attr` holds
    (witness, d), the witness being a variable with that dimension where one exists (so the
    text spelling size(W, 1) reads back with the same size)."""
    dim = x.shape[d - 1]
    if dim is ONE:
        return E.const(1)
    witness = _witness(x, dim)
    return E.make("size", (), witness, E.SCALAR)


def _witness(x: E.Node, dim: E.Dim) -> tuple[E.Node, int]:
    """A variable with the dimension (dX read as X inside a differential), and its axis."""
    for n in E.walk(x):
        if n.op in ("var", "dvar") and dim in n.shape:
            if n.op == "dvar":
                kind = "vector" if n.shape[1] is ONE else "matrix"
                n = E.var(n.attr, "scalar" if n.is_scalar else kind, n.shape)
            return (n, 1) if n.shape[0] is dim else (n, 2)
    return (x, 1) if x.shape[0] is dim else (x, 2)


def size_dim(n: E.Node) -> E.Dim:
    witness, d = n.attr
    return witness.shape[d - 1]


def mean(x: E.Node, d: int | None = None) -> E.Node:
    """mean(X) over all entries (d None), or of each column (1) / row (2)."""
    if x.is_scalar:
        return x
    if d is not None and x.shape[d - 1] is ONE:  # a mean over one entry
        return x
    if d is not None and x.shape[2 - d] is ONE:  # a vector along the axis: all entries
        d = None
    if x.op == "scale":
        return E.scale(x.args[0], mean(x.args[1], d))
    if x.op == "ones":
        return E.ones(_mean_shape(x, d))
    if E.is_zero(x):
        return E.zero(_mean_shape(x, d))
    return E.make("mean", (x,), d, _mean_shape(x, d))


def _mean_shape(x: E.Node, d: int | None) -> E.Shape:
    if d is None:
        return E.SCALAR
    return (ONE, x.shape[1]) if d == 1 else (x.shape[0], ONE)


def _count(x: E.Node, d: int | None) -> E.Node:
    """How many entries mean(x, d) averages."""
    if d is not None:
        return size(x, d)
    return E.scale(size(x, 1), size(x, 2)) if x.shape[1] is not ONE and \
        x.shape[0] is not ONE else size(x, 1 if x.shape[1] is ONE else 2)


def softmax(z: E.Node, d: int) -> E.Node:
    """softmax(Z, d): each column (d = 1) or row (d = 2) of Z mapped to a distribution."""
    if z.is_scalar or z.shape[d - 1] is ONE:  # a distribution over one entry
        return E.ones(z.shape)
    if z.shape[2 - d] is ONE:  # a vector along the axis
        return E.softmax(z) if d == 1 else E.transpose(E.softmax(E.transpose(z)))
    return E.make("softmax_axis", (z,), d, z.shape)


def logsumexp(z: E.Node, d: int) -> E.Node:
    if z.is_scalar or z.shape[d - 1] is ONE:  # log(exp(z)) = z
        return z
    if z.shape[2 - d] is ONE:
        return E.reduction("logsumexp", z)
    return E.make("logsumexp_axis", (z,), d, _mean_shape(z, d))


def log_softmax(z: E.Node, d: int) -> E.Node:
    """log(softmax(Z, d)) = Z − 1·logsumexp(Z, 1) (d = 1), computed without forming the
    softmax (whose underflowed entries would give −∞)."""
    return E.make("log_softmax_axis", (z,), d, z.shape)


for _op, _build in (("mean", lambda n, a: mean(a[0], n.attr)),
                    ("softmax_axis", lambda n, a: softmax(a[0], n.attr)),
                    ("logsumexp_axis", lambda n, a: logsumexp(a[0], n.attr)),
                    ("log_softmax_axis", lambda n, a: log_softmax(a[0], n.attr))):
    E.BUILDERS[_op] = _build  # how substitute/rebuild remake the node from new arguments


# ---------------------------------------------------------------- spellings


def _axis_call(name: str, latex: str | None = None):
    """name(Z, d) in every notation (the LaTeX form reads back: \\operatorname{softmax}(Z, 1))."""
    def text(printer, node):
        inner = printer.doc(node.args[0])
        d = node.attr
        if latex is not None:
            return rf"{latex}\left({inner}, {d}\right)", ATOM
        return f"{name}({inner}, {d})", ATOM
    return text


def _mean_spelling(latex: bool):
    def spell(printer, node):
        inner = printer.doc(node.args[0])
        head = r"\operatorname{mean}\left(" if latex else "mean("
        tail = r"\right)" if latex else ")"
        return (f"{head}{inner}{tail}" if node.attr is None else
                f"{head}{inner}, {node.attr}{tail}"), ATOM
    return spell


def _size_spelling(latex: bool):
    def spell(printer, node):
        witness, d = node.attr
        inner = printer.doc(witness)
        if latex:
            return rf"\operatorname{{size}}\left({inner}, {d}\right)", ATOM
        return f"size({inner}, {d})", ATOM
    return spell


def _log_softmax_spelling(latex: bool):
    def spell(printer, node):
        inner = printer.doc(node.args[0])
        if latex:
            return (rf"\log\left(\operatorname{{softmax}}\left({inner}, {node.attr}\right)"
                    r"\right)"), ATOM
        return f"log(softmax({inner}, {node.attr}))", ATOM
    return spell


# ---------------------------------------------------------------- numeric helpers (float64)


def _np_softmax(z, axis):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_log_softmax(z, axis):
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _np_logsumexp(z, axis):
    m = np.max(z, axis=axis, keepdims=True)
    return m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def _np_mean(n, x):
    if n.attr is None:
        return np.full((1, 1), np.mean(x))
    return np.mean(x, axis=n.attr - 1, keepdims=True)


# ---------------------------------------------------------------- exact (SymPy) and mpmath


def _lines(m, d):
    """The columns (d = 1) or rows (d = 2) of m as lists of entries."""
    if d == 1:
        return [[m[i, j] for i in range(m.rows)] for j in range(m.cols)]
    return [[m[i, j] for j in range(m.cols)] for i in range(m.rows)]


def _from_lines(lines, d, rows, cols, make):
    """A rows×cols matrix from its columns (d = 1) or rows (d = 2)."""
    if d == 1:
        return make([[lines[j][i] for j in range(cols)] for i in range(rows)])
    return make([[lines[i][j] for j in range(cols)] for i in range(rows)])


def _sp_softmax(sp, z, d, log=False):
    out = []
    for line in _lines(z, d):
        total = sum(sp.exp(x) for x in line)
        out.append([x - sp.log(total) if log else sp.exp(x) / total for x in line])
    return _from_lines(out, d, z.rows, z.cols, sp.Matrix)


def _sp_logsumexp(sp, z, d):
    values = [sp.log(sum(sp.exp(x) for x in line)) for line in _lines(z, d)]
    return sp.Matrix([values]) if d == 1 else sp.Matrix([[v] for v in values])


def _mp_lse(mp, line):
    top = max(line)
    return top + mp.log(mp.fsum(mp.exp(x - top) for x in line))


def _mp_softmax(mp, z, d, log=False):
    out = []
    for line in _lines(z, d):
        lse = _mp_lse(mp, line)
        out.append([x - lse if log else mp.exp(x - lse) for x in line])
    return _from_lines(out, d, z.rows, z.cols, mp.matrix)


def _mp_logsumexp(mp, z, d):
    values = [_mp_lse(mp, line) for line in _lines(z, d)]
    return mp.matrix([values]) if d == 1 else mp.matrix([[v] for v in values])


def _mean_of(x, d, zero, fsum):
    lines = _lines(x, d) if d is not None else [[x[i, j] for i in range(x.rows)
                                                 for j in range(x.cols)]]
    return [fsum(line) / len(line) for line in lines] if lines else [zero]


def _sp_mean(sp, n, x):
    values = _mean_of(x, n.attr, sp.Integer(0), lambda xs: sum(xs, sp.Integer(0)))
    if n.attr == 2:
        return sp.Matrix([[v] for v in values])
    return sp.Matrix([values])


def _mp_mean(mp, n, x):
    values = _mean_of(x, n.attr, mp.mpf(0), mp.fsum)
    if n.attr == 2:
        return mp.matrix([[v] for v in values])
    return mp.matrix([values])


# ---------------------------------------------------------------- NumPy lowering
# (rows and columns of the emitted code are 1-D arrays; the axis operators take matrices)


def _np_lower_axis(helper: str):
    return lambda ctx, n, a: f"{helper}({a[0]}, {n.attr - 1})"


def _np_lower_softmax(ctx, n, a):
    # exp(log softmax) when the log-softmax is already computed: no second max and sum
    known = ctx.names.get(log_softmax(n.args[0], n.attr))
    if known is not None:
        return f"np.exp({known})"
    return f"_softmax_axis({a[0]}, {n.attr - 1})"


def _np_lower_mean(ctx, n, a):
    if n.attr is None:
        return f"np.mean({a[0]})"
    return f"np.mean({a[0]}, axis={n.attr - 1})"


def _np_lower_size(ctx, n, a):
    return f"float({ctx.dim(size_dim(n))})"


# JAX and PyTorch: the same helpers in jnp / torch (backends/jax.py, backends/torch.py); a
# softmax next to its log-softmax or logsumexp is fused by the body (codegen/body.py)


def _xp_lower_softmax(xp: str):
    def lower(ctx, n, a):
        known = ctx.names.get(log_softmax(n.args[0], n.attr))
        if known is not None:
            return f"{xp}.exp({known})"
        return f"_softmax_axis({a[0]}, {n.attr - 1})"
    return lower


def _xp_lower_mean(xp: str):
    def lower(ctx, n, a):
        return f"{xp}.mean({a[0]})" if n.attr is None else f"{xp}.mean({a[0]}, {n.attr - 1})"
    return lower


# ---------------------------------------------------------------- mean


def _peel_mean(n, g):
    x = n.args[0]
    d = n.attr
    count = E.power(_count(x, d), E.const(-1))
    if d is None:
        yield x, E.scale(E.scale(count, g), E.ones(x.shape))
    else:
        yield x, E.scale(count, spread(g, x, d))


declare(Operator(
    "mean", "mean",
    d=linear_d("d mean(X) = mean(dX)", lambda n, dx: mean(dx, n.attr)),
    peel=PeelRule("mean is linear: gᵀmean(L, 1) = tr((1g/m)ᵀ L) (m rows), "
                  "mean(L) = tr((1 1ᵀ/(mn))ᵀ L)", _peel_mean),
    numeric=lambda n, a, s: _np_mean(n, a[0]),
    exact=lambda sp, n, a, s: _sp_mean(sp, n, a[0]),
    precise=lambda mp, n, a, s: _mp_mean(mp, n, a[0]),
    spelling=Spelling(_mean_spelling(False), _mean_spelling(False), _mean_spelling(True)),
    lower={"numpy": _np_lower_mean, "jax": _xp_lower_mean("jnp"),
           "torch": _xp_lower_mean("torch")},
))

# ---------------------------------------------------------------- size


def _size_value(n, s):
    return s((size_dim(n), ONE))[0]


declare(Operator(
    "size", "size",
    d=constant_d("d size(X, k) = 0 (a size is a constant)"),
    numeric=lambda n, a, s: np.full((1, 1), float(_size_value(n, s))),
    exact=lambda sp, n, a, s: sp.Matrix([[sp.Integer(_size_value(n, s))]]),
    precise=lambda mp, n, a, s: mp.matrix([[mp.mpf(_size_value(n, s))]]),
    spelling=Spelling(_size_spelling(False), _size_spelling(False), _size_spelling(True)),
    lower={"numpy": _np_lower_size, "jax": _np_lower_size, "torch": _np_lower_size},
))

# ---------------------------------------------------------------- softmax(Z, d)


def _hadamard_axis_correction(s: E.Node, p: E.Node, d: int) -> E.Node:
    """S ⊙ (1·1ᵀP) for d = 1, S ⊙ (P1·1ᵀ) for d = 2."""
    return E.hadamard(s, spread(axis_sum(p, d), s, d))


def _d_softmax_axis(ctx, n, d):
    dz = d(n.args[0])
    p = E.hadamard(n, dz)
    return E.sub(p, _hadamard_axis_correction(n, p, n.attr))


declare(Operator(
    "softmax_axis", "softmax by columns or rows",
    d=DRule("d softmax(Z, 1) = S ⊙ dZ − S ⊙ (1·1ᵀ(S ⊙ dZ)), S = softmax(Z, 1) (each column "
            "is a softmax; for d = 2 the same along the rows)", _d_softmax_axis),
    numeric=lambda n, a, s: _np_softmax(a[0], n.attr - 1),
    exact=lambda sp, n, a, s: _sp_softmax(sp, a[0], n.attr),
    precise=lambda mp, n, a, s: _mp_softmax(mp, a[0], n.attr),
    spelling=Spelling(_axis_call("softmax"), _axis_call("softmax"),
                      _axis_call("softmax", r"\operatorname{softmax}")),
    lower={"numpy": _np_lower_softmax, "jax": _xp_lower_softmax("jnp"),
           "torch": _xp_lower_softmax("torch")},
))

# ---------------------------------------------------------------- logsumexp(Z, d)


def _d_logsumexp_axis(ctx, n, d):
    z = n.args[0]
    return axis_sum(E.hadamard(softmax(z, n.attr), d(z)), n.attr)


declare(Operator(
    "logsumexp_axis", "log-sum-exp by columns or rows",
    d=DRule("d logsumexp(Z, 1) = 1ᵀ(softmax(Z, 1) ⊙ dZ) (one log-sum-exp per column; "
            "for d = 2, (softmax(Z, 2) ⊙ dZ)1 per row)", _d_logsumexp_axis),
    numeric=lambda n, a, s: _np_logsumexp(a[0], n.attr - 1),
    exact=lambda sp, n, a, s: _sp_logsumexp(sp, a[0], n.attr),
    precise=lambda mp, n, a, s: _mp_logsumexp(mp, a[0], n.attr),
    spelling=Spelling(_axis_call("logsumexp"), _axis_call("logsumexp"),
                      _axis_call("logsumexp", r"\operatorname{logsumexp}")),
    lower={t: _np_lower_axis("_logsumexp_axis") for t in ("numpy", "jax", "torch")},
))

# ---------------------------------------------------------------- log(softmax(Z, d))


def _d_log_softmax_axis(ctx, n, d):
    z = n.args[0]
    dz = d(z)
    s = softmax(z, n.attr)
    return E.sub(dz, spread(axis_sum(E.hadamard(s, dz), n.attr), z, n.attr))


declare(Operator(
    "log_softmax_axis", "log-softmax by columns or rows",
    d=DRule("log softmax(Z, 1) = Z − 1·logsumexp(Z, 1): d = dZ − 1·1ᵀ(softmax(Z, 1) ⊙ dZ) "
            "(for d = 2: dZ − (softmax(Z, 2) ⊙ dZ)1·1ᵀ)", _d_log_softmax_axis),
    numeric=lambda n, a, s: _np_log_softmax(a[0], n.attr - 1),
    exact=lambda sp, n, a, s: _sp_softmax(sp, a[0], n.attr, log=True),
    precise=lambda mp, n, a, s: _mp_softmax(mp, a[0], n.attr, log=True),
    spelling=Spelling(_log_softmax_spelling(False), _log_softmax_spelling(False),
                      _log_softmax_spelling(True)),
    lower={t: _np_lower_axis("_log_softmax_axis") for t in ("numpy", "jax", "torch")},
))

# ---------------------------------------------------------------- the language's names

declare_call(Call("mean", "any_to_scalar", lambda x, shape: mean(x),
                  axis=lambda x, d, shape: mean(x, d), axis_shape="reduce_axis"))
declare_call(Call("size", "needs_axis", lambda x, shape: size(x, 1),
                  axis=lambda x, d, shape: size(x, d), axis_shape="size_axis"))

# sum, softmax and logsumexp are declared with their operators (reductions.py); their axis
# forms are added here
declare_axis_form("sum", lambda x, d, shape: axis_sum(x, d), "reduce_axis")
declare_axis_form("softmax", lambda x, d, shape: softmax(x, d), "keep_axis")
declare_axis_form("logsumexp", lambda x, d, shape: logsumexp(x, d), "reduce_axis")
