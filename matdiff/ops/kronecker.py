"""Kronecker products, column stacking and its inverse, the two block contractions that
transpose a Kronecker product, and the commutation matrix of the vec forms of
`matdiff jacobian --vec` (vec(AXB) = (Bᵀ ⊗ A) vec X, vec(Xᵀ) = K vec X).

In the language: kron(A, B), vec(X), unvec(u, M) (u cut into columns of M's height),
blockdot(G, B) (the matrix of ⟨G_ij, B⟩ over the blocks G_ij of B's size) and blocksum(G, A)
(Σ A_ij G_ij over the blocks of G on A's grid)."""

from __future__ import annotations

from ..ir import expr as E
from .combinators import the_differential_factor
from .language import Call, declare_call
from .lazy import np
from .registry import ATOM, PRODUCT, UNARY, DRule, Operator, PeelRule, Spelling, declare


def _np_commutation(rows: int, cols: int):
    """K with K @ vec(M) = vec(M.T) for M of shape (rows, cols), vec column-major."""
    k = np.zeros((rows * cols, rows * cols))
    for i in range(rows):
        for j in range(cols):
            k[i * cols + j, j * rows + i] = 1.0
    return k


def _kron_infix(sep: str):
    def spell(printer, node):
        a, b = node.args
        return f"{printer.first_factor(a, 'kron')}{sep}{printer.at(b, UNARY)}", PRODUCT
    return spell


def _mp_kron(mp, a, b):
    out = mp.zeros(a.rows * b.rows, a.cols * b.cols)
    for i in range(a.rows):
        for j in range(a.cols):
            for k in range(b.rows):
                for m in range(b.cols):
                    out[i * b.rows + k, j * b.cols + m] = a[i, j] * b[k, m]
    return out


def _mp_vec(mp, a):
    return mp.matrix([[a[i, j]] for j in range(a.cols) for i in range(a.rows)])


# ---------------------------------------------------------------- NumPy lowering
# (emitted code holds vectors and rows as 1-D arrays: they are made 2-D around kron and the
# block contractions, and results that are vectors are flattened back)


def _np_2d(node, text: str) -> str:
    if node.is_scalar:
        return f"np.reshape({text}, (1, 1))"
    if node.shape[1] is E.ONE:
        return f"np.reshape({text}, (-1, 1))"
    if node.shape[0] is E.ONE:
        return f"np.reshape({text}, (1, -1))"
    return text


def _np_result(n, text: str) -> str:
    return f"np.ravel({text})" if (n.shape[0] is E.ONE) != (n.shape[1] is E.ONE) else text


def _np_lower_kron(ctx, n, a):
    return _np_result(n, f"np.kron({_np_2d(n.args[0], a[0])}, {_np_2d(n.args[1], a[1])})")


def _np_lower_block(spec: str, block_of):
    """np.einsum over G seen as [block row, row, block column, column]."""
    def lower(ctx, n, a):
        g, w = _np_2d(n.args[0], a[0]), _np_2d(n.args[1], a[1])
        rows, cols = block_of
        text = (f"(lambda g, w: np.einsum({spec!r}, g.reshape({rows}, {cols}), w))"
                f"({g}, {w})")
        return _np_result(n, text)
    return lower


# ---------------------------------------------------------------- JAX and PyTorch lowering
# jax.numpy spells these as NumPy does (order='F' included); PyTorch has no order='F', so
# vec and unvec transpose instead. The NumPy text is built around placeholders, so that the
# arguments' own code is not renamed.


def _xp(lower, xp: str):
    def lowered(ctx, n, a):
        marks = [f"\x00{i}\x00" for i in range(len(a))]
        text = lower(ctx, n, marks).replace("np.", f"{xp}.")
        for mark, code in zip(marks, a):
            text = text.replace(mark, code)
        return text
    return lowered


def _torch_vec(ctx, n, a):
    x = n.args[0]
    return f"torch.reshape({a[0]}.T, (-1,))" if x.kind == "matrix" else \
        f"torch.reshape({a[0]}, (-1,))"


# ---------------------------------------------------------------- kron


def _d_kron(ctx, n, d):
    a, b = n.args  # each differential factor remembers its primal (unvec's shape witness)
    return E.add(E.kron(d(a), b, a), E.kron(a, d(b), b))


def _peel_kron(n, g):
    a, b = n.args
    if the_differential_factor(n) == 0:
        yield a, E.blockdot(g, b, a.shape)
    else:
        yield b, E.blocksum(g, a, b.shape, n.attr)


declare(Operator(
    "kron", "Kronecker product",
    d=DRule("d(A ⊗ B) = dA ⊗ B + A ⊗ dB", _d_kron),
    peel=PeelRule("Kronecker blocks: tr(Gᵀ(dA ⊗ B)) = tr(Cᵀ dA) with C_ij = tr(G_ijᵀ B) "
                  "(blockdot), tr(Gᵀ(A ⊗ dB)) = tr((Σ A_ij G_ij)ᵀ dB) (blocksum); "
                  "for G = uvᵀ, C = UᵀBV and Σ A_ij G_ij = UAVᵀ with U = unvec(u), "
                  "V = unvec(v)", _peel_kron),
    numeric=lambda n, a, s: np.kron(a[0], a[1]),
    exact=lambda sp, n, a, s: sp.kronecker_product(a[0], a[1]),
    precise=lambda mp, n, a, s: _mp_kron(mp, a[0], a[1]),
    spelling=Spelling("kron", _kron_infix(" ⊗ "), _kron_infix(r" \otimes ")),
    lower={"numpy": _np_lower_kron, "jax": _xp(_np_lower_kron, "jnp"),
           "torch": _xp(_np_lower_kron, "torch")},
))

# ---------------------------------------------------------------- vec and unvec


def _witness(linear: E.Node) -> E.Node:
    """A node without differentials with linear's row count, when vec(L) carries no primal
    (built outside the differential): L with each dX read as X."""
    mapping = {}
    for x in E.walk(linear):
        if x.op == "dvar":
            kind = "scalar" if x.is_scalar else ("vector" if x.shape[1] is E.ONE else "matrix")
            mapping[x] = E.var(x.attr, kind, x.shape)
    return E.substitute(linear, mapping)


def _peel_vec(n, g):
    x = n.args[0]
    yield x, E.unvec(g, n.attr if n.attr is not None else _witness(x), x.shape)


declare(Operator(
    "vec", "column stacking",
    d=DRule("d vec(X) = vec(dX)", lambda ctx, n, d: E.vec(d(n.args[0]), n.args[0])),
    peel=PeelRule("vec is linear: uᵀvec(L) = tr(unvec(u)ᵀ L), unvec(u) = u reshaped to L's "
                  "shape", _peel_vec),
    numeric=lambda n, a, s: a[0].reshape(-1, 1, order="F"),
    exact=lambda sp, n, a, s: a[0].T.reshape(a[0].rows * a[0].cols, 1),
    precise=lambda mp, n, a, s: _mp_vec(mp, a[0]),
    spelling=Spelling("vec", "vec", r"\operatorname{vec}"),
    lower={"numpy": lambda ctx, n, a: f"np.ravel({a[0]}, order='F')",
           "jax": lambda ctx, n, a: f"jnp.ravel({a[0]}, order='F')", "torch": _torch_vec},
))


def _whole(total: int, part: int) -> int:
    if total % part:
        raise ValueError("sizes that do not fit")  # the evaluators' 'cannot evaluate'
    return total // part


def _sp_unvec(sp, u, rows):
    cols = _whole(u.rows, rows)
    return sp.Matrix(rows, cols, lambda i, j: u[j * rows + i, 0])


def _mp_unvec(mp, u, rows):
    cols = _whole(u.rows, rows)
    out = mp.zeros(rows, cols)
    for j in range(cols):
        for i in range(rows):
            out[i, j] = u[j * rows + i, 0]
    return out


def _peel_unvec(n, g):
    yield n.args[0], E.vec(g)


declare(Operator(
    "unvec", "reshape to columns",
    d=DRule("d unvec(u) = unvec(du)",
            lambda ctx, n, d: E.unvec(d(n.args[0]), n.args[1], n.shape)),
    peel=PeelRule("unvec is linear: tr(Gᵀ unvec(l)) = vec(G)ᵀ l", _peel_unvec),
    # the witness gives the row count; the columns are what the entries fill
    numeric=lambda n, a, s: _np_unvec(n, a[0], a[1], s),
    exact=lambda sp, n, a, s: _sp_unvec(sp, a[0], a[1].rows),
    precise=lambda mp, n, a, s: _mp_unvec(mp, a[0], a[1].rows),
    spelling=Spelling("unvec", "unvec", r"\operatorname{unvec}"),
    lower={"numpy": lambda ctx, n, a:
           f"np.reshape({a[0]}, (np.shape({a[1]})[0], -1), order='F')",
           "jax": lambda ctx, n, a:
           f"jnp.reshape({a[0]}, (jnp.shape({a[1]})[0], -1), order='F')",
           "torch": lambda ctx, n, a: f"torch.reshape({a[0]}, (-1, {a[1]}.shape[0])).T"},
))

# ---------------------------------------------------------------- the Kronecker contractions

# blockdot(G, B) = [tr(G_ijᵀ B)]_ij and blocksum(G, A) = Σ A_ij G_ij, for G cut into blocks of
# B's size (on A's grid): ⟨G, A ⊗ B⟩ = ⟨blockdot(G, B), A⟩ = ⟨blocksum(G, A), B⟩. Both are
# bilinear; their peel rules lead back to kron and to each other.


def _blocks(g, rows, cols):
    """g as a 4-index array [i, k, j, l]: block (i, j), entry (k, l), blocks rows × cols."""
    return g.reshape(g.shape[0] // rows, rows, g.shape[1] // cols, cols)


def _fits(g, w) -> bool:
    """G is a whole number of w-sized blocks (sizes that do not fit give NaN, never raise:
    the sizes of a constant such as matrix(1) may be a guess)."""
    return g.shape[0] % w.shape[0] == 0 and g.shape[1] % w.shape[1] == 0


def _np_blockdot(n, g, b, s):
    if not _fits(g, b):
        return np.full(s(n.shape), np.nan)
    return np.einsum("ikjl,kl->ij", _blocks(g, *b.shape), b)


def _np_blocksum(n, g, a, s):
    if not _fits(g, a):
        return np.full(s(n.shape), np.nan)
    return np.einsum("ikjl,ij->kl", _blocks(g, g.shape[0] // a.shape[0],
                                            g.shape[1] // a.shape[1]), a)


def _np_unvec(n, u, w, s):
    if u.shape[0] % w.shape[0]:
        return np.full(s(n.shape), np.nan)
    return u.reshape(w.shape[0], -1, order="F")


def _blockdot_entries(g, b, zero):
    p, q = b.rows, b.cols
    m, n = _whole(g.rows, p), _whole(g.cols, q)
    out = [[zero for _ in range(n)] for _ in range(m)]
    for i in range(m):
        for j in range(n):
            out[i][j] = sum((g[i * p + k, j * q + l] * b[k, l] for k in range(p)
                             for l in range(q)), zero)
    return out


def _blocksum_entries(g, a, zero):
    m, n = a.rows, a.cols
    p, q = _whole(g.rows, m), _whole(g.cols, n)
    out = [[zero for _ in range(q)] for _ in range(p)]
    for k in range(p):
        for l in range(q):
            out[k][l] = sum((a[i, j] * g[i * p + k, j * q + l] for i in range(m)
                             for j in range(n)), zero)
    return out


def _d_bilinear(build):
    def apply(ctx, n, d):
        g, w = n.args
        return E.add(build(d(g), w, n.shape), build(g, d(w), n.shape))
    return apply


def _peel_blockdot(n, h):
    g, b = n.args
    if the_differential_factor(n) == 0:  # ⟨H, blockdot(dG, B)⟩ = ⟨H ⊗ B, dG⟩
        yield g, E.kron(h, b)
    else:  # ⟨H, blockdot(G, dB)⟩ = ⟨Σ H_ij G_ij, dB⟩
        yield b, E.blocksum(g, h, b.shape)


def _peel_blocksum(n, k):
    g, a = n.args
    if the_differential_factor(n) == 0:  # ⟨K, blocksum(dG, A)⟩ = ⟨A ⊗ K, dG⟩
        yield g, E.kron(a, k)
    else:  # ⟨K, blocksum(G, dA)⟩ = ⟨blockdot(G, K), dA⟩
        yield a, E.blockdot(g, k, a.shape)


declare(Operator(
    "blockdot", "block inner products",
    d=DRule("d blockdot(G, B) = blockdot(dG, B) + blockdot(G, dB)", _d_bilinear(E.blockdot)),
    peel=PeelRule("tr(Hᵀ blockdot(dG, B)) = tr((H ⊗ B)ᵀ dG), "
                  "tr(Hᵀ blockdot(G, dB)) = tr(blocksum(G, H)ᵀ dB)", _peel_blockdot),
    numeric=lambda n, a, s: _np_blockdot(n, a[0], a[1], s),
    exact=lambda sp, n, a, s: sp.Matrix(_blockdot_entries(a[0], a[1], sp.Integer(0))),
    precise=lambda mp, n, a, s: mp.matrix(_blockdot_entries(a[0], a[1], mp.mpf(0))),
    spelling=Spelling("blockdot", "blockdot", r"\operatorname{blockdot}"),
    lower={target: _xp(_np_lower_block(
        "ikjl,kl->ij", ("g.shape[0] // w.shape[0], w.shape[0]",
                        "g.shape[1] // w.shape[1], w.shape[1]")), xp)
           for target, xp in (("numpy", "np"), ("jax", "jnp"), ("torch", "torch"))},
))
declare(Operator(
    "blocksum", "weighted sum of blocks",
    d=DRule("d blocksum(G, A) = blocksum(dG, A) + blocksum(G, dA)", _d_bilinear(E.blocksum)),
    peel=PeelRule("tr(Kᵀ blocksum(dG, A)) = tr((A ⊗ K)ᵀ dG), "
                  "tr(Kᵀ blocksum(G, dA)) = tr(blockdot(G, K)ᵀ dA)", _peel_blocksum),
    numeric=lambda n, a, s: _np_blocksum(n, a[0], a[1], s),
    exact=lambda sp, n, a, s: sp.Matrix(_blocksum_entries(a[0], a[1], sp.Integer(0))),
    precise=lambda mp, n, a, s: mp.matrix(_blocksum_entries(a[0], a[1], mp.mpf(0))),
    spelling=Spelling("blocksum", "blocksum", r"\operatorname{blocksum}"),
    lower={target: _xp(_np_lower_block(
        "ikjl,ij->kl", ("w.shape[0], g.shape[0] // w.shape[0]",
                        "w.shape[1], g.shape[1] // w.shape[1]")), xp)
           for target, xp in (("numpy", "np"), ("jax", "jnp"), ("torch", "torch"))},
))

# ---------------------------------------------------------------- the language's names

declare_call(Call("kron", "kron", lambda a, b, shape: E.kron(a, b), arity=2))
declare_call(Call("vec", "vec", lambda x, shape: E.vec(x)))
declare_call(Call("unvec", "unvec", lambda u, w, shape: E.unvec(u, w, shape), arity=2))
declare_call(Call("blockdot", "blockdot", lambda g, b, shape: E.blockdot(g, b, shape),
                  arity=2))
declare_call(Call("blocksum", "blocksum", lambda g, a, shape: E.blocksum(g, a, shape),
                  arity=2))


def _commutation_size(n, s):
    return s((n.attr[0], E.ONE))[0], s((n.attr[1], E.ONE))[0]


def _sp_commutation(sp, rows, cols):
    k = sp.zeros(rows * cols, rows * cols)
    for i in range(rows):
        for j in range(cols):
            k[i * cols + j, j * rows + i] = 1
    return k


def _mp_commutation(mp, rows, cols):
    k = mp.zeros(rows * cols, rows * cols)
    for i in range(rows):
        for j in range(cols):
            k[i * cols + j, j * rows + i] = 1
    return k


declare(Operator(
    "commutation", "commutation matrix",
    numeric=lambda n, a, s: _np_commutation(*_commutation_size(n, s)),
    exact=lambda sp, n, a, s: _sp_commutation(sp, *_commutation_size(n, s)),
    precise=lambda mp, n, a, s: _mp_commutation(mp, *_commutation_size(n, s)),
    spelling=Spelling(lambda p, n: (f"K({n.attr[0].name},{n.attr[1].name})", ATOM),
                      lambda p, n: (f"K({n.attr[0].name},{n.attr[1].name})", ATOM),
                      lambda p, n: (rf"K_{{{n.attr[0].name},{n.attr[1].name}}}", ATOM)),
))
