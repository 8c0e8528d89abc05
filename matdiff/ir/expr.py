"""The typed IR: immutable, interned nodes that know their shape.

Every node is (op, args, attr, shape). Equal subtrees are one object (hash-consing), so
equality is identity, hashing is O(1), and derivatives of deep expressions share structure
instead of swelling. What each `op` means (shape rule, derivative, spelling) lives in tables
in the modules downstream; the builders here do only the cheap normalisations that every
stage relies on (flattening, zeros and ones, identities, double transposes, X·X⁻¹)."""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Iterable
from fractions import Fraction

from ..errors import DerivationError

# ---------------------------------------------------------------- dimensions and shapes


class Dim:
    """A symbolic dimension (or the literal 1). Interned by name."""

    __slots__ = ("name", "__weakref__")
    _table: dict[str, Dim] = {}

    def __new__(cls, name: str) -> Dim:
        dim = cls._table.get(name)
        if dim is None:
            dim = object.__new__(cls)
            dim.name = name
            cls._table[name] = dim
        return dim

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        return (Dim, (self.name,))


ONE = Dim("1")
# composite dimensions of vec/Kronecker forms: Dim("q·m") stands for the product q·m
PRODUCTS: dict[Dim, tuple[Dim, Dim]] = {}


def dim_product(a: Dim, b: Dim) -> Dim:
    if a is ONE:
        return b
    if b is ONE:
        return a
    d = Dim(f"{a.name}·{b.name}")
    PRODUCTS[d] = (a, b)
    return d
Shape = tuple[Dim, Dim]
SCALAR: Shape = (ONE, ONE)

KINDS = ("scalar", "vector", "matrix", "symmetric", "spd")


def shape_kind(shape: Shape) -> str:
    rows, cols = shape
    if rows is ONE and cols is ONE:
        return "scalar"
    if cols is ONE:
        return "vector"
    if rows is ONE:
        return "row vector"
    return "matrix"


def shape_text(shape: Shape) -> str:
    rows, cols = shape
    if rows is ONE and cols is ONE:
        return "scalar"
    if cols is ONE:
        return f"vector of size {rows.name}"
    return f"{rows.name}×{cols.name}"


def shape_dims(shape: Shape) -> list[str]:
    """SPEC §2 JSON: [] scalar, ["n"] vector, ["m", "n"] matrix (a row vector: ["1", "n"])."""
    rows, cols = shape
    if rows is ONE and cols is ONE:
        return []
    if cols is ONE:
        return [rows.name]
    return [rows.name, cols.name]


# ---------------------------------------------------------------- nodes


class Node:
    """One IR node. Build with the functions below, never with Node(...) directly."""

    __slots__ = ("op", "args", "attr", "shape", "_hash", "_memo", "__weakref__")
    _interned: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    op: str
    args: tuple[Node, ...]
    attr: object
    shape: Shape

    def __repr__(self) -> str:
        return f"<{self} : {shape_text(self.shape)}>"

    def __str__(self) -> str:
        # the expression language, once the printers are loaded (they register themselves:
        # the IR does not import the printers, which import the IR)
        return _PRINTER(self) if _PRINTER is not None else f"{self.op}{self.args}"

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other

    def __ne__(self, other) -> bool:
        return self is not other

    @property
    def is_scalar(self) -> bool:
        return self.shape[0] is ONE and self.shape[1] is ONE

    @property
    def kind(self) -> str:
        return shape_kind(self.shape)

    def memo(self, key: str, compute):
        """Per-node cache for derived facts (symmetry, free variables, …)."""
        m = self._memo
        if m is None:
            m = self._memo = {}
        if key not in m:
            m[key] = compute(self)
        return m[key]


_PRINTER = None  # node → text in the expression language, set by printing/text.py


def set_printer(printer) -> None:
    """How str() and repr() spell a node (printing/text.py registers to_text)."""
    global _PRINTER
    _PRINTER = printer


def make(op: str, args: tuple[Node, ...] = (), attr: object = None, shape: Shape = SCALAR) -> Node:
    # a double and the equal fraction are different constants (1e-30 == Fraction(1e-30))
    key = (op, args, attr, shape) if op != "const" else (op, type(attr), attr, shape)
    node = Node._interned.get(key)
    if node is None:
        node = object.__new__(Node)
        node.op, node.args, node.attr, node.shape = op, args, attr, shape
        node._hash = hash(key)
        node._memo = None
        Node._interned[key] = node
    return node


def rebuild(node: Node, args: Iterable[Node]) -> Node:
    """The same operation on new arguments, through the normalising builders."""
    args = tuple(args)
    if args == node.args:
        return node
    return BUILDERS[node.op](node, args)


# ---------------------------------------------------------------- leaves


def var(name: str, kind: str, shape: Shape) -> Node:
    return make("var", (), (name, kind), shape)


def dnode(d: Node) -> Node:
    """d(node) as one node of the linear DAG (the differential of an intermediate), so the
    trace pass can report ∂f/∂node even where sums flatten; invisible in print."""
    return make("dnode", (d,), None, d.shape)


def dvar(name: str, shape: Shape) -> Node:
    """The differential dX of variable X."""
    return make("dvar", (), name, shape)


def const(value) -> Node:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            value = Fraction(int(value))
        elif not math.isfinite(value):
            raise DerivationError("number too large (overflows a double): a constant of the "
                                  "expression or of its derivative is beyond ±1.8e308",
                                  hint="scale the expression down")
        elif 1e-12 <= abs(value) < 1e12:
            near = Fraction(value).limit_denominator(10**6)
            # a double that is a short fraction (0.1, 1/3) stays exact; others stay doubles
            value = near if float(near) == value else value
    elif isinstance(value, int):
        value = Fraction(value)
    if isinstance(value, Fraction) and abs(value) > _LARGEST_DOUBLE:  # 1e300·1e300 folded
        raise DerivationError("number too large (overflows a double): a constant of the "
                              "expression or of its derivative is beyond ±1.8e308",
                              hint="scale the expression down")
    return make("const", (), value, SCALAR)


_LARGEST_DOUBLE = Fraction(sys.float_info.max)


def zero(shape: Shape) -> Node:
    return const(0) if shape == SCALAR else make("zero", (), None, shape)


def ones(shape: Shape) -> Node:
    return const(1) if shape == SCALAR else make("ones", (), None, shape)


def eye(dim: Dim) -> Node:
    return const(1) if dim is ONE else make("eye", (), None, (dim, dim))


def is_const(node: Node, value=None) -> bool:
    return node.op == "const" and (value is None or node.attr == value)


def is_zero(node: Node) -> bool:
    return node.op == "zero" or (node.op == "const" and node.attr == 0)


# ---------------------------------------------------------------- builders


def add(*terms: Node) -> Node:
    flat: list[Node] = []
    for t in terms:
        if t.op == "add":
            flat.extend(t.args)
        elif not is_zero(t):
            flat.append(t)
    shape = terms[0].shape
    consts = [t for t in flat if t.op == "const"]
    if len(consts) > 1:
        total = sum((c.attr for c in consts), Fraction(0))
        flat = [t for t in flat if t.op != "const"] + ([const(total)] if total != 0 else [])
    if not flat:
        return zero(shape)
    if len(flat) == 1:
        return flat[0]
    return make("add", tuple(flat), None, shape)


def scale(coef: Node, x: Node) -> Node:
    """coef · x for a scalar coef (x of any shape, scalars included)."""
    assert coef.is_scalar, "scale by a non-scalar"
    if is_zero(coef) or is_zero(x):
        return zero(x.shape)
    if x.is_scalar and x.op == "const":
        coef, x = x, coef
    if is_const(coef, 1):
        return x
    if x.op == "const" and coef.op == "const":
        return const(coef.attr * x.attr)
    if x.op == "scale":
        return scale(scale(coef, x.args[0]), x.args[1])
    return make("scale", (coef, x), None, x.shape)


def neg(x: Node) -> Node:
    return scale(const(-1), x)


def sub(a: Node, b: Node) -> Node:
    return add(a, neg(b))


def matmul(*factors: Node) -> Node:
    """Matrix product; (1×1) factors become scalings, identities drop, X·X⁻¹ cancels."""
    rows, cols = factors[0].shape[0], factors[-1].shape[1]
    coefs: list[Node] = []
    chain: list[Node] = []
    for q in _product_atoms(factors, coefs):
        if q.is_scalar:
            coefs.append(q)
        elif q.op == "eye":
            continue
        elif is_zero(q):
            return zero((rows, cols))
        elif chain and _cancels(chain[-1], q):
            chain.pop()
        else:
            chain.append(q)
    if not chain:
        body = eye(rows)
    elif len(chain) == 1:
        body = chain[0]
    else:
        body = make("matmul", tuple(chain), None, (chain[0].shape[0], chain[-1].shape[1]))
    for c in reversed(coefs):
        body = scale(c, body)
    return body


def _product_atoms(factors, coefs: list[Node]):
    """The factors of a product with nested products flattened and scalings pulled into coefs."""
    for f in factors:
        while f.op == "scale" and not f.is_scalar:
            coefs.append(f.args[0])
            f = f.args[1]
        if f.op == "matmul" and not f.is_scalar:
            yield from f.args
        else:  # a 1×1 product (xᵀAx) stays whole: a number that scales the rest
            yield f


def _cancels(a: Node, b: Node) -> bool:
    """X·X⁻¹ = X⁻¹·X = I, and the same for transposes: X⁻ᵀ·Xᵀ = I."""
    if a.op == "transpose" and b.op == "transpose":
        a, b = a.args[0], b.args[0]
    return (a.op == "inv" and a.args[0] is b) or (b.op == "inv" and b.args[0] is a)


def transpose(x: Node) -> Node:
    if x.is_scalar:
        return x
    op = x.op
    if op == "transpose":
        return x.args[0]
    if op == "zero":
        return zero((x.shape[1], x.shape[0]))
    if op == "ones":
        return ones((x.shape[1], x.shape[0]))
    if op == "scale":
        return scale(x.args[0], transpose(x.args[1]))
    if is_symmetric(x):
        return x
    return make("transpose", (x,), None, (x.shape[1], x.shape[0]))


def inv(x: Node) -> Node:
    if x.is_scalar:
        return power(x, const(-1))
    if x.op == "inv":
        return x.args[0]
    if x.op == "eye":
        return x
    if x.op == "transpose" and x.args[0].op != "inv":
        # keep X⁻ᵀ spelled as (X⁻¹)ᵀ, the textbook's inverse-transpose
        return transpose(inv(x.args[0]))
    return make("inv", (x,), None, x.shape)


def matpow(x: Node, k: int) -> Node:
    if k == 0:
        return eye(x.shape[0])
    if k < 0:
        return matpow(inv(x), -k)
    if k == 1:
        return x
    return make("matpow", (x,), k, x.shape)


def power(base: Node, exponent: Node) -> Node:
    """Scalar power."""
    if is_const(exponent, 1):
        return base
    if is_const(exponent, 0):
        return const(1)
    if exponent.op == "const" and isinstance(exponent.attr, float):
        exponent = make("const", (), Fraction(exponent.attr), SCALAR)  # exponents stay exact
    if base.op == "const" and exponent.op == "const":
        b, e = base.attr, exponent.attr
        if e.denominator == 1 and (b != 0 or e > 0):
            folded = _const_power(b, int(e))
            if folded is not None:
                return const(folded)
    if base.op == "pow" and exponent.op == "const" and base.args[1].op == "const" \
            and exponent.attr.denominator == 1:
        # (a^p)^k = a^(pk) for integer k
        return power(base.args[0], const(base.args[1].attr * exponent.attr))
    return make("pow", (base, exponent), None, SCALAR)


def _const_power(b, k: int):
    """b**k for a constant b, exact when small, else a double; None when it overflows (the
    power then stays unevaluated rather than building a huge number)."""
    if b in (0, 1) or k in (0, 1):
        return b ** k
    if b == -1:
        return Fraction(-1 if k % 2 else 1)
    if isinstance(b, Fraction) and abs(k) <= 64 and \
            max(b.numerator.bit_length(), b.denominator.bit_length()) * abs(k) <= 4096:
        return b ** k
    try:
        value = float(b) ** k
    except (OverflowError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value != 0 else None


def hadamard(*factors: Node) -> Node:
    shape = next((f.shape for f in factors if not f.is_scalar), SCALAR)
    coefs: list[Node] = []
    flat: list[Node] = []
    for f in factors:
        while f.op == "scale" and not f.is_scalar:
            coefs.append(f.args[0])
            f = f.args[1]
        for p in (f.args if f.op == "hadamard" else (f,)):
            if p.is_scalar:
                coefs.append(p)
            elif p.op == "ones":
                continue
            elif is_zero(p):
                return zero(shape)
            else:
                flat.append(p)
    if not flat:
        body = ones(shape)
    elif len(flat) == 1:
        body = flat[0]
    else:
        body = make("hadamard", tuple(flat), None, shape)
    for c in reversed(coefs):
        body = scale(c, body)
    return body


def hdiv(a: Node, b: Node) -> Node:
    if b.is_scalar:
        return scale(power(b, const(-1)), a)
    if b.op == "ones":
        return a
    if is_zero(a):
        return zero(b.shape)
    if a.is_scalar:
        return scale(a, hdiv(ones(b.shape), b))
    return make("hdiv", (a, b), None, a.shape)


def epow(x: Node, p: Node) -> Node:
    """Element-wise power x .^ p for a scalar p."""
    if x.is_scalar:
        return power(x, p)
    if is_const(p, 1):
        return x
    if is_const(p, 0):
        return ones(x.shape)
    return make("epow", (x, p), None, x.shape)


def fn(name: str, x: Node) -> Node:
    """An element-wise function (exp, log, σ, …, and the derivative functions σ', …)."""
    return make("fn", (x,), name, x.shape)


def trace(x: Node) -> Node:
    if x.is_scalar:
        return x
    if x.op == "scale":
        return scale(x.args[0], trace(x.args[1]))
    if x.op == "transpose":
        return trace(x.args[0])
    if x.op == "matpow" and x.args[0].op == "transpose":  # tr((Xᵀ)ᵏ) = tr(Xᵏ)
        return trace(matpow(x.args[0].args[0], x.attr))
    if is_zero(x):
        return const(0)
    return make("tr", (x,), None, SCALAR)


def reduction(op: str, x: Node) -> Node:
    """Scalar-valued functions of one argument: det, logdet, sum, norm1, norm2, logsumexp."""
    if op == "sum" and x.op == "scale":
        return scale(x.args[0], reduction("sum", x.args[1]))
    if op == "sum" and x.is_scalar:
        return x
    if op == "sum" and x.op == "transpose":
        return reduction("sum", x.args[0])
    return make(op, (x,), None, SCALAR)


def diag_embed(v: Node) -> Node:
    """diag(v): vector → diagonal matrix."""
    if v.op == "ones":
        return eye(v.shape[0])
    if v.op == "scale":
        return scale(v.args[0], diag_embed(v.args[1]))
    return make("diag_embed", (v,), None, (v.shape[0], v.shape[0]))


def diag_extract(x: Node) -> Node:
    """diag(X): square matrix → vector of its diagonal."""
    if x.op == "diag_embed":
        return x.args[0]
    if x.op == "scale":
        return scale(x.args[0], diag_extract(x.args[1]))
    if x.op == "eye":
        return ones((x.shape[0], ONE))
    return make("diag_extract", (x,), None, (x.shape[0], ONE))


def softmax(x: Node) -> Node:
    return make("softmax", (x,), None, x.shape)


def kron(a: Node, b: Node, witness: Node | None = None) -> Node:
    """The Kronecker product a ⊗ b. In a differential, `witness` is the primal of the factor
    that holds the differential (B for A ⊗ dB): a node of its shape that the trace form may
    print (attr only: no stage evaluates or differentiates it)."""
    if is_zero(a) or is_zero(b):
        return zero((dim_product(a.shape[0], b.shape[0]), dim_product(a.shape[1], b.shape[1])))
    if a.is_scalar:
        return scale(a, b)
    if b.is_scalar:
        return scale(b, a)
    if a.op == "scale":
        return scale(a.args[0], kron(a.args[1], b, witness))
    if b.op == "scale":
        return scale(b.args[0], kron(a, b.args[1], witness))
    if a.op == "eye" and b.op == "eye":
        return eye(dim_product(a.shape[0], b.shape[0]))
    if a.shape[1] is ONE and b.shape[0] is ONE:  # x ⊗ yᵀ = x yᵀ
        return matmul(a, b)
    if a.shape[0] is ONE and b.shape[1] is ONE:  # xᵀ ⊗ y = y xᵀ
        return matmul(b, a)
    return make("kron", (a, b), witness, (dim_product(a.shape[0], b.shape[0]),
                                           dim_product(a.shape[1], b.shape[1])))


def vec(x: Node, witness: Node | None = None) -> Node:
    """The columns of x stacked into one column (column-major, as in vec(AXB) = (Bᵀ⊗A)vec X).
    In a differential, `witness` is the primal of x (vec(dY) remembers Y): a node of x's shape
    that the trace form prints as unvec's shape (attr only, never evaluated)."""
    if x.shape[1] is ONE:
        return x
    if x.shape[0] is ONE and x.op == "transpose":  # vec(vᵀ) = v
        return x.args[0]
    shape = (dim_product(x.shape[1], x.shape[0]), ONE)
    if is_zero(x):
        return zero(shape)
    if x.op == "ones":
        return ones(shape)
    if x.op == "scale":
        return scale(x.args[0], vec(x.args[1], witness))
    if x.op == "unvec":
        return x.args[0]
    return make("vec", (x,), witness, shape)


def unvec(u: Node, witness: Node, shape: Shape) -> Node:
    """The column u cut into columns of the witness's height, i.e. reshaped (column-major) to
    `shape` = (rows of witness, len(u) / rows): the inverse of vec. `witness` is an argument
    only for its row count (the language's unvec(u, M)); its value is never used."""
    if shape[1] is ONE:
        return u
    if shape[0] is ONE:
        return transpose(u)
    if is_zero(u):
        return zero(shape)
    if u.op == "ones":
        return ones(shape)
    if u.op == "scale":
        return scale(u.args[0], unvec(u.args[1], witness, shape))
    if u.op == "add":
        return add(*[unvec(t, witness, shape) for t in u.args])
    if u.op == "vec" and u.args[0].shape == shape:
        return u.args[0]
    return make("unvec", (u, rows_witness(witness, shape[0])), None, shape)


def rows_witness(w: Node, rows: Dim) -> Node:
    """The smallest node found in w with `rows` rows (a variable, or a transposed one)."""
    if w.op in ("var", "eye"):
        return w
    for n in walk(w):
        if n.op == "var" and n.shape[0] is rows:
            return n
    for n in walk(w):
        if n.op == "var" and n.shape[1] is rows:
            return transpose(n)
    return w


def _kron_grid(g: Node, block: Shape, grid: Shape) -> bool:
    """g is a grid × block matrix of blocks: (grid₀·block₀) × (grid₁·block₁)."""
    return g.shape == (dim_product(grid[0], block[0]), dim_product(grid[1], block[1]))


def _outer(g: Node) -> tuple[Node, Node] | None:
    """(u, v) when g = u vᵀ (a product with a 1-wide inner dimension)."""
    if g.op != "matmul":
        return None
    f = g.args
    for i in range(1, len(f)):
        if f[i - 1].shape[1] is ONE:
            return matmul(*f[:i]), transpose(matmul(*f[i:]))
    return None


def blockdot(g: Node, b: Node, shape: Shape) -> Node:
    """C with C_ij = ⟨G_ij, B⟩, G_ij the blocks of G of B's size (C has `shape`): the
    gradient of ⟨G, A ⊗ B⟩ with respect to A."""
    if is_zero(g) or is_zero(b):
        return zero(shape)
    if b.is_scalar:
        return scale(b, g)
    if g.op == "scale":
        return scale(g.args[0], blockdot(g.args[1], b, shape))
    if b.op == "scale":
        return scale(b.args[0], blockdot(g, b.args[1], shape))
    if g.op == "add":
        return add(*[blockdot(t, b, shape) for t in g.args])
    if g.op == "kron" and g.args[0].shape == shape and g.args[1].shape == b.shape:
        return scale(inner(g.args[1], b), g.args[0])
    if _kron_grid(g, b.shape, shape):
        if g.op == "eye" and shape[0] is shape[1] and b.shape[0] is b.shape[1]:
            return scale(trace(b), eye(shape[0]))  # I = I ⊗ I
        if g.op == "ones":
            return scale(reduction("sum", b), ones(shape))  # 11ᵀ = 11ᵀ ⊗ 11ᵀ
        uv = _outer(g)
        if uv is not None:
            u, v = uv  # u vᵀ: C_ij = u_iᵀ B v_j = (UᵀBV)_ij, U = unvec(u), V = unvec(v)
            return matmul(transpose(unvec(u, b, (b.shape[0], shape[0]))), b,
                          unvec(v, transpose(b), (b.shape[1], shape[1])))
    return make("blockdot", (g, b), None, shape)


def blocksum(g: Node, a: Node, shape: Shape, witness: Node | None = None) -> Node:
    """Σ_ij A_ij G_ij, G_ij the blocks of G (`shape` each) on A's grid: the gradient of
    ⟨G, A ⊗ B⟩ with respect to B. `witness`, a node of `shape`, lets u vᵀ print as U A Vᵀ."""
    if is_zero(g) or is_zero(a):
        return zero(shape)
    if a.is_scalar:
        return scale(a, g)
    if g.op == "scale":
        return scale(g.args[0], blocksum(g.args[1], a, shape, witness))
    if a.op == "scale":
        return scale(a.args[0], blocksum(g, a.args[1], shape, witness))
    if g.op == "add":
        return add(*[blocksum(t, a, shape, witness) for t in g.args])
    if g.op == "kron" and g.args[0].shape == a.shape and g.args[1].shape == shape:
        return scale(inner(g.args[0], a), g.args[1])
    if _kron_grid(g, shape, a.shape):
        if g.op == "eye" and shape[0] is shape[1] and a.shape[0] is a.shape[1]:
            return scale(trace(a), eye(shape[0]))
        if g.op == "ones":
            return scale(reduction("sum", a), ones(shape))
        uv = _outer(g)
        if uv is not None and witness is not None and witness.shape == shape:
            u, v = uv  # Σ_ij A_ij u_i v_jᵀ = U A Vᵀ
            return matmul(unvec(u, witness, (shape[0], a.shape[0])), a,
                          transpose(unvec(v, transpose(witness), (shape[1], a.shape[1]))))
    return make("blocksum", (g, a), None, shape)


def commutation(rows: Dim, cols: Dim) -> Node:
    """K with K·vec(M) = vec(Mᵀ) for an r×c matrix M."""
    return make("commutation", (), (rows, cols), (dim_product(rows, cols),
                                                   dim_product(cols, rows)))


def inner(g: Node, m: Node) -> Node:
    """⟨G, M⟩ = tr(Gᵀ M) for G, M of one shape, spelled as a person would: g·m, gᵀm, sum(G),
    or tr(GᵀM)."""
    if g.is_scalar:
        return scale(g, m)
    if m.op == "ones":
        return reduction("sum", g)
    if g.op == "ones":
        return reduction("sum", m)
    if g.shape[1] is ONE:
        return matmul(transpose(g), m)
    if g.shape[0] is ONE:
        return matmul(g, transpose(m))
    return trace(matmul(transpose(g), m))


# ---------------------------------------------------------------- facts about nodes


def is_symmetric(x: Node) -> bool:
    """Provably symmetric (from kinds and structure); False means 'not known to be'."""
    return x.memo("sym", _symmetric)


def _symmetric(x: Node) -> bool:
    op = x.op
    if x.shape[0] is not x.shape[1]:
        return False
    if op == "var":
        return x.attr[1] in ("symmetric", "spd")
    if op in ("eye", "diag_embed", "const", "zero", "ones"):
        return True
    if op in ("inv", "matpow", "fn", "epow"):
        return is_symmetric(x.args[0])
    if op in ("add", "hadamard", "kron"):
        return all(is_symmetric(a) for a in x.args)
    if op == "scale":
        return is_symmetric(x.args[1])
    if op == "matmul":
        f = x.args
        k = len(f)
        for i in range(k // 2):
            if transpose(f[i]) is not f[k - 1 - i]:
                return False
        return k % 2 == 0 or is_symmetric(f[k // 2])
    return False


def free_vars(x: Node) -> frozenset[str]:
    """Names of the variables below x (memoised per node, computed without recursion)."""
    for n in postorder(x, known=_Memoised("free")):
        if n.op == "var":
            value = frozenset((n.attr[0],))
        else:
            value = frozenset().union(*(a._memo["free"] for a in n.args))
        n.memo("free", lambda _n, v=value: v)
    return x._memo["free"]


class _Memoised:
    """`n in _Memoised(key)`: n already carries that memo (postorder skips it)."""

    def __init__(self, key: str):
        self.key = key

    def __contains__(self, n: Node) -> bool:
        return n._memo is not None and self.key in n._memo

    def __bool__(self) -> bool:
        return True


def has_differential(x: Node) -> bool:
    """x contains a differential dX (memoised per node, computed without recursion)."""
    for n in postorder(x, known=_Memoised("lin")):
        value = n.op == "dvar" or any(a._memo["lin"] for a in n.args)
        n.memo("lin", lambda _n, v=value: v)
    return x._memo["lin"]


def variables(x: Node) -> dict[str, Node]:
    """Every variable of x, by name, in order of first appearance (left to right)."""
    out: dict[str, Node] = {}
    for n in walk(x):
        if n.op == "var":
            out.setdefault(n.attr[0], n)
    return out


def walk(x: Node):
    """Nodes in depth-first pre-order, each shared node once (no recursion)."""
    seen: set[int] = set()
    stack = [x]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        yield n
        stack.extend(reversed(n.args))


def postorder(x: Node, right_first: bool = False, known=()) -> list[Node]:
    """Children before parents, each shared node once (no recursion). With right_first the
    last child is visited first, so the reversed list meets first children first. Nodes in
    `known` (and everything below them) are left out: callers that memoise pass their memo."""
    out: list[Node] = []
    seen: set[int] = set()
    if x in known:
        return out
    stack: list[tuple[Node, bool]] = [(x, False)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            out.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        for a in (n.args if right_first else reversed(n.args)):
            if id(a) not in seen and a not in known:
                stack.append((a, False))
    return out


def substitute(x: Node, mapping: dict[Node, Node]) -> Node:
    """Replace subtrees (by identity), rebuilding through the builders."""
    done: dict[Node, Node] = dict(mapping)
    for n in postorder(x):
        if n in done:
            continue
        done[n] = rebuild(n, (done[a] for a in n.args)) if n.args else n
    return done[x]


# How to rebuild each op from new arguments (used by rebuild/substitute).
BUILDERS = {
    "add": lambda n, a: add(*a),
    "scale": lambda n, a: scale(a[0], a[1]),
    "matmul": lambda n, a: matmul(*a),
    "transpose": lambda n, a: transpose(a[0]),
    "inv": lambda n, a: inv(a[0]),
    "matpow": lambda n, a: matpow(a[0], n.attr),
    "pow": lambda n, a: power(a[0], a[1]),
    "hadamard": lambda n, a: hadamard(*a),
    "hdiv": lambda n, a: hdiv(a[0], a[1]),
    "epow": lambda n, a: epow(a[0], a[1]),
    "fn": lambda n, a: fn(n.attr, a[0]),
    "tr": lambda n, a: trace(a[0]),
    "det": lambda n, a: reduction("det", a[0]),
    "logdet": lambda n, a: reduction("logdet", a[0]),
    "sum": lambda n, a: reduction("sum", a[0]),
    "norm1": lambda n, a: reduction("norm1", a[0]),
    "norm2": lambda n, a: reduction("norm2", a[0]),
    "logsumexp": lambda n, a: reduction("logsumexp", a[0]),
    "diag_embed": lambda n, a: diag_embed(a[0]),
    "diag_extract": lambda n, a: diag_extract(a[0]),
    "softmax": lambda n, a: softmax(a[0]),
    "kron": lambda n, a: kron(a[0], a[1], n.attr),
    "vec": lambda n, a: vec(a[0], n.attr),
    "unvec": lambda n, a: unvec(a[0], a[1], n.shape),
    "blockdot": lambda n, a: blockdot(a[0], a[1], n.shape),
    "blocksum": lambda n, a: blocksum(a[0], a[1], n.shape),
}
