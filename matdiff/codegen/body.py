"""What every backend's function bodies share: the walk over a Plan (codegen/plan.py) that
names what is used twice, the run-time product-order branches, the fused special forms, the
helper library a module carries only the used parts of, and the lowering context that an
operator's lowering (the `lower[TARGET]` facet in matdiff/ops) is given.

A backend subclasses `Body` and spells the few things that differ between array libraries:
its namespace (`XP`), factorizations and solves, whole inverses, outer products, dot products
and softplus. Everything else (the operators' own spellings) comes from the ops registry."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..derive.simplify import logistic_argument
from ..errors import DerivationError
from ..ir import expr as E
from ..ops import OPERATORS
from ..printing.text import to_text
from .naming import python_name
from .plan import Plan, inverse_of, summed_square
from .product_order import order_cost


class CannotLower(DerivationError):
    """An operator that a code target cannot spell yet (exit 2; never wrong code)."""


# ---------------------------------------------------------------- helpers


# The argument checks every backend emits (a torch.Size prints as a tuple through tuple()).
ARGUMENT_HELPERS = r"""

def _argument_error(given, names):
    missing = [n for n in names if n not in given]
    extra = [n for n in given if n not in names]
    if missing:
        raise TypeError("missing argument(s): " + ", ".join(missing))
    raise TypeError("unexpected argument(s): " + ", ".join(extra))


def _shape_words(shape):
    shape = tuple(shape)
    if len(shape) == 1:
        return f"has length {shape[0]}"
    return "is " + "×".join(str(k) for k in shape) if len(shape) == 2 else f"has shape {shape}"


def _shape_error(name, kind, symbolic, shape, ndim, expected=None, others=()):
    if expected is None:
        raise ValueError(f"{name} must be a {kind} ({ndim}-D array), got shape {tuple(shape)}")
    clash = "".join(f"{other} {_shape_words(s)} but " for other, s in others)
    raise ValueError(f"{clash}{name} {_shape_words(shape)}: {name} must have shape "
                     f"{symbolic} = {expected}")


def _empty_error(name, shape):
    raise ValueError(f"{name} is empty (shape {tuple(shape)}): every size must be at least 1")


def _direction_error(name, shape, variable, expected):
    raise ValueError(f"the direction {name} must have the shape of {variable}, {expected}, "
                     f"got {tuple(shape)}")
"""


class Helpers:
    """A backend's helper library: top-level definitions separated by two blank lines; a
    module carries only those its code refers to (and the ones those refer to)."""

    _IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

    def __init__(self, text: str):
        self.blocks: list[tuple[set[str], str]] = []
        for block in text.strip("\n").split("\n\n\n"):
            first = next(ln for ln in block.splitlines() if not ln.startswith("#"))
            if first.startswith("def ") or first.startswith("class "):
                names = {first.split()[1].split("(")[0].rstrip(":")}
            elif first.startswith("import "):  # import a.b as _name
                names = {first.rsplit(" as ", 1)[1].strip()}
            else:
                names = {t.strip() for t in first.split("=")[0].split(",")}
            self.blocks.append((names, block))
        self.text = {name: block for names, block in self.blocks for name in names}

    def for_code(self, code: str) -> list[str]:
        """The helper definitions the code refers to, and those they refer to, in order."""
        need: set[str] = set()
        todo = [code]
        while todo:
            for word in set(self._IDENTIFIER.findall(todo.pop())):
                if word in self.text and word not in need:
                    need.add(word)
                    todo.append(self.text[word])
        return [block for names, block in self.blocks if names & need]


# ---------------------------------------------------------------- lowering context


@dataclass
class LoweringContext:
    """What an operator's lowering may ask of the module being written."""

    names: dict[E.Node, str]  # materialised nodes → Python variable
    dims: dict[E.Dim, str]  # symbolic dimension → expression giving its size
    like: str = ""  # keyword arguments giving new arrays the inputs' dtype (and device)
    # `NAME = text` as a statement of the body (set by Body), and what `once` has emitted
    emit: Callable[[str, str], str] | None = None
    shared: dict = field(default_factory=dict)
    nodes: frozenset = frozenset()  # every node of the body's plan
    # a plan node as an expression again (run-time product orders in their static order)
    as_expression: Callable[[E.Node], E.Node] = lambda n: n

    def once(self, key, text: str, stem: str = "m") -> str:
        """The name of `text` computed once per function body for `key` (e.g. ("eigh", X):
        one eigendecomposition that f and the gradient share); never across calls."""
        name = self.shared.get(key)
        if name is None:
            name = self.shared[key] = self.emit(stem, text)
        return name

    def dim(self, d: E.Dim) -> str:
        return "1" if d is E.ONE else self.dims[d]

    def shape(self, shape) -> str:
        """The array shape: vectors (and rows, which are vectors here) are 1-D."""
        rows, cols = shape
        if cols is E.ONE:
            return self.dim(rows)
        if rows is E.ONE:
            return self.dim(cols)
        return f"({self.dim(rows)}, {self.dim(cols)})"

    @staticmethod
    def is_vector(n: E.Node) -> bool:
        return is_vector(n)

    def text(self, n: E.Node) -> str:
        """n in the expression language (for messages the emitted code raises); a product
        whose order is chosen at run time is written in its static order."""
        return to_text(self.as_expression(n))

    @staticmethod
    def method(text: str, name: str) -> str:
        """text.name(): an array method (x.sum(), X.trace()) costs half the call overhead of
        the np.sum(x) function, which dispatches in Python first (~1 µs at small sizes)."""
        return method_call(text, name)


def sequence_text(items) -> str:
    """`a, b` (and `a,` for one item): the elements of a Python tuple."""
    items = list(items)
    return ", ".join(items) + ("," if len(items) == 1 else "")


def tuple_text(items) -> str:
    """`(a, b)`, `(a,)`, `()`: a Python tuple."""
    return f"({sequence_text(items)})"


def size_name(d: E.Dim) -> str:
    """_m for the size m (a local of the emitted functions; "_" keeps it off every variable)."""
    return "_" + re.sub(r"\W", "_", d.name, flags=re.ASCII)


def is_vector(n: E.Node) -> bool:
    return (n.shape[0] is E.ONE) != (n.shape[1] is E.ONE)


def primary(text: str) -> str:
    """text, parenthesised unless it is a name, call, subscript, attribute or already in
    parentheses: ready for a method call or a subscript."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        node = None
    if isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)) or \
            (text.startswith("(") and strip(text) != text):
        return strip(text) if isinstance(node, (ast.Name, ast.Attribute, ast.Call,
                                                ast.Subscript)) else text
    return f"({text})"


def method_call(text: str, name: str) -> str:
    """`text.name()`: the array method name called on text."""
    return f"{primary(text)}.{name}()"


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


def operator_name(n: E.Node) -> str:
    """How a message names the operator of node n (the function for an element-wise one)."""
    if n.op == "fn":
        return str(n.attr)
    return n.op


# ---------------------------------------------------------------- the body


class Body:
    """One function body, spelled by a backend.

    Before lowering, every product is rewritten into binary products in the cheapest order
    (matrix-chain dynamic programming over the symbolic sizes), sums inside products that
    reach a vector are distributed, and scalings go to the smallest factor. Equal binary
    products are then one interned node, so a sub-product that f and a gradient share (Ax in
    xᵀAx and (A + Aᵀ)x) is computed once. Inverses are never formed unless an expression
    needs one whole: each inverted matrix is factored once (Cholesky for spd, LU otherwise)
    and X⁻¹B, BX⁻¹, X⁻ᵀB, det X and log det X all reuse that factorization. tr(AB) never
    forms AB; diag(v)·A scales rows."""

    TARGET = ""  # the key of the operators' `lower` facet
    PAIRED_SOFTPLUS = False  # softplus_of may compute (softplus(z), σ(z)) together
    LABEL = ""  # how messages name the target
    XP = ""  # the array namespace of the emitted code
    LIKE = ""  # dtype (and device) keywords for new arrays

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
        self.ctx = LoweringContext({}, emitter.dims, self.LIKE, self._statement,
                                   nodes=frozenset(self.plan.order),
                                   as_expression=self.plan.static_all)
        self.lse_softmax: dict[E.Node, tuple[str, str]] = {}
        self.softplus_sigmoid: dict[E.Node, tuple[str, str]] = {}  # z → (softplus, σ) names
        self.axis_pairs: dict[tuple, tuple[str, str]] = {}

    # ------------------------------------------------ what a backend spells

    def factor_call(self, x: E.Node, text: str) -> str:
        """The factorization of x (text: x's expression)."""
        raise NotImplementedError

    def solve(self, x: E.Node, transposed: bool, rhs: str) -> str:
        """X⁻¹·rhs (or X⁻ᵀ·rhs) from the shared factorization of X."""
        raise NotImplementedError

    def inverse_call(self, x: E.Node) -> str:
        """X⁻¹ formed whole from its factorization."""
        raise NotImplementedError

    def outer(self, a: str, b: str) -> str:
        raise NotImplementedError

    def dot_self(self, u: str, vector: bool = False) -> str:
        """Σ u² over every entry of u."""
        raise NotImplementedError

    def softplus(self, z: str) -> str:
        raise NotImplementedError

    def dot(self, a: str, b: str, vector: bool = False) -> str:
        """Σ a ⊙ b over every entry."""
        return f"{self.XP}.vdot({a}, {b})"

    def total(self, x: str) -> str:
        """The sum of every entry of the array x."""
        return f"{self.XP}.sum({x})"

    def axis_sum(self, x: str, axis: int) -> str:
        """The sums down the columns (axis 0) or along the rows (axis 1) of a matrix."""
        return f"{self.XP}.sum({x}, {axis})"

    def matrix_product(self, a: E.Node, b: E.Node) -> str | None:
        """A backend's own spelling of a matrix product (None: a @ b)."""
        return None

    def det_from_factor_applies(self, x: E.Node) -> bool:
        return x in self.plan.inverted or self._spd(x)

    # ------------------------------------------------ the walk

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

    def _statement(self, stem: str, text: str) -> str:
        name = python_name(stem, self.taken)
        self.lines.append(f"    {name} = {strip(text)}")
        return name

    def axis_pair(self, key: tuple, kind: str) -> tuple[str, str]:
        """(log softmax(Z, d) or logsumexp(Z, d), softmax(Z, d)) from one pass of
        exponentials, named once."""
        names = self.axis_pairs.get(key)
        if names is None:
            z, d = key
            label = self.em.labels.get(self.plan.softmax_axis[key])
            names = (python_name(self.temporary(), self.taken),
                     python_name(label or self.temporary(), self.taken))
            helper = "_log_softmax_softmax_axis" if kind == "log" else "_logsumexp_softmax_axis"
            self.lines.append(f"    {names[0]}, {names[1]} = {helper}({strip(self.expr(z))}, "
                              f"{d - 1})")
            self.axis_pairs[key] = names
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
        candidate orders' costs compared on the actual shapes, each branch one order (shapes
        are static under jax.jit, so the branch is taken while tracing)."""
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
            self.lines.append(f"    {base} = {self.inverse_call(x)}")
            self.inverses[x] = base
        hit = self.exprs[n] = f"{base}.T" if transposed and not self._spd(x) else base
        return hit

    def factor(self, x: E.Node) -> str:
        name = self.factors.get(x)
        if name is None:
            name = python_name(f"{self._stem(x)}_{'chol' if self._spd(x) else 'lu'}", self.taken)
            self.lines.append(f"    {name} = {self.factor_call(x, strip(self.expr(x)))}")
            self.factors[x] = name
            self.em.uses_scipy = True
        return name

    def _stem(self, x: E.Node) -> str:
        return self.em.var_py[x.attr[0]] if x.op == "var" else "m"

    def _spd(self, x: E.Node) -> bool:
        return x.op == "var" and x.attr[1] == "spd"

    def lower(self, n: E.Node) -> str:
        """The text for n: the first special lowering of n's operator that applies (see
        Body.SPECIAL), else the operator's own lowering for this target."""
        for special in Body.SPECIAL.get(f"fn:{n.attr}" if n.op == "fn" else n.op, ()):
            text = special(self, n)
            if text is not None:
                return text
        return self.generic(n, [self.expr(a) for a in n.args])

    def generic(self, n: E.Node, a: list[str]) -> str:
        """The operator's own lowering (matdiff/ops); products and sums, which need to see
        their operands, are lowered here."""
        lowering = OPERATORS[n.op].lower.get(self.TARGET) if n.op in OPERATORS else None
        text = None if lowering is None else lowering(self.ctx, n, a)
        if text is None:
            raise CannotLower(
                f"the {self.LABEL} target cannot lower {operator_name(n)!r} yet: "
                f"emit this expression with --target numpy (or another target)")
        return text

    def _binary_product(self, n: E.Node) -> str:
        return self.product(n.args[0], n.args[1])

    def _trace_without_product(self, n: E.Node) -> str | None:
        """tr(AB) as Σ A ⊙ Bᵀ: AB is never formed."""
        if n.args[0].op != "matmul" or n.args[0] in self.ctx.names:
            return None
        a, b = n.args[0].args
        if self.plan.solvable(a) or self.plan.solvable(b) or a.op == "diag_embed" or \
                is_vector(a) or is_vector(b):
            return None
        return f"{self.XP}.einsum('ij,ji->', {self.expr(a)}, {self.expr(b)})"

    def _det_from_factor(self, n: E.Node) -> str | None:
        x = n.args[0]
        if not self.det_from_factor_applies(x):
            return None
        return f"_{n.op}_{'chol' if self._spd(x) else 'lu'}({self.factor(x)})"

    def _log(self, n: E.Node) -> str | None:
        x = n.args[0]
        if x.op == "det":
            return self.lower(E.reduction("logdet", x.args[0]))
        z = logistic_argument(x)
        if z is not None:  # log(1 + exp(z)) without overflow: softplus
            return self.softplus_of(z)
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

    def _fused_axis(self, n: E.Node) -> str | None:
        """softmax(Z, d) with log softmax(Z, d) (or logsumexp(Z, d)): one pass of exponentials."""
        key = (n.args[0], n.attr)
        kind = self.plan.fused_axis.get(key)
        if kind is None or (n.op == "logsumexp_axis" and kind == "log"):
            return None
        return self.axis_pair(key, kind)[n.op == "softmax_axis"]

    def _broadcast(self, n: E.Node) -> str:
        """b·1ᵀ (attr 1) or 1·rᵀ (attr 0) as a broadcastable view, never formed (the plan
        makes one only where it meets a full matrix entry by entry)."""
        v = primary(self.expr(n.args[0]))
        return f"{v}[:, None]" if n.attr == 1 else f"{v}[None, :]"

    def _sum_of_product(self, n: E.Node) -> str | None:
        """sum(A ⊙ B) as one dot product: A ⊙ B is never formed."""
        x = n.args[0]
        if x.op != "hadamard" or len(x.args) != 2 or x in self.ctx.names or \
                x.args[0].shape != x.args[1].shape:
            return None
        return self.dot(self.expr(x.args[0]), self.expr(x.args[1]), is_vector(x))

    def softplus_of(self, z: E.Node) -> str:
        """softplus(z); a backend with a helper for the pair (softplus(z), σ(z)) computes both
        here when the plan needs σ(z) too, and names them."""
        return self.softplus(self.expr(z))

    def _softplus_fn(self, n: E.Node) -> str | None:
        return self.softplus_of(n.args[0]) if self.PAIRED_SOFTPLUS else None

    def _sigmoid_from_softplus(self, n: E.Node) -> str | None:
        """σ(z) = exp(z − softplus(z)) when softplus(z) is computed: one exponential."""
        pair = self.softplus_sigmoid.get(n.args[0])
        if pair is not None:
            return pair[1]
        softplus = self.ctx.names.get(self.plan.softplus.get(n.args[0]))
        return None if softplus is None else \
            f"{self.XP}.exp({self.expr(n.args[0])} - {softplus})"

    def _dsigmoid_from_sigmoid(self, n: E.Node) -> str | None:
        """σ' = σ(1 − σ) from the σ already computed."""
        s = self.ctx.names.get(E.fn("sigmoid", n.args[0]))
        return None if s is None else f"({s} * (1.0 - {s}))"

    def _dot_of_square(self, n: E.Node) -> str | None:
        """Σ u² and ‖u‖²: one dot product, no square, sum or square root."""
        u = summed_square(n)
        return None if u is None else self.dot_self(self.expr(u), is_vector(u))

    def product(self, a: E.Node, b: E.Node) -> str:
        if self.plan.solvable(a):
            x, transposed = inverse_of(a)
            return self.solve(x, transposed, self.expr(b))
        if self.plan.solvable(b):  # L·X⁻¹ = (X⁻ᵀ·Lᵀ)ᵀ
            x, transposed = inverse_of(b)
            if is_vector(a):  # vectors are 1-D: no transposes
                return self.solve(x, not transposed, self.expr(a))
            return f"{self.solve(x, not transposed, f'{self.expr(a)}.T')}.T"
        if a.is_scalar or b.is_scalar:  # u(vᵀw): a 1×1 factor is a number, not a matrix
            return f"({self.expr(a)} * {self.expr(b)})"
        if a.op == "ones" and a.shape[0] is E.ONE:  # 1ᵀB: the sums down B's columns
            return self.axis_sum(self.expr(b), 0) if b.kind == "matrix" else \
                self.total(self.expr(b))
        if b.op == "ones" and b.shape[1] is E.ONE:  # A1: the sums along A's rows
            return self.axis_sum(self.expr(a), 1) if a.kind == "matrix" else \
                self.total(self.expr(a))
        if a.op == "diag_embed":  # diag(v)·B scales the rows of B
            v = self.expr(a.args[0])
            return f"({v} * {self.expr(b)})" if is_vector(b) else \
                f"({v}[:, None] * {self.expr(b)})"
        if a.shape[1] is E.ONE and not a.is_scalar and not b.is_scalar:
            # an outer product uvᵀ, not a rank-1 matrix product
            return self.outer(self.expr(a), self.expr(b))
        own = self.matrix_product(a, b)
        if own is not None:
            return own
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
# each returns None when it does not apply, and Body.generic takes what none of them does
Body.SPECIAL = {
    "matmul": [Body._binary_product],
    "add": [Body.sum],
    "tr": [Body._trace_without_product],
    "det": [Body._det_from_factor],
    "logdet": [Body._det_from_factor],
    "fn:log": [Body._log],
    "logsumexp": [Body._fused_with_softmax],
    "softmax": [Body._fused_with_softmax],
    "fn:sigmoid": [Body._sigmoid_from_softplus],
    "fn:softplus": [Body._softplus_fn],
    "fn:sigmoid'": [Body._dsigmoid_from_sigmoid],
    "sum": [Body._dot_of_square, Body._sum_of_product],
    "broadcast": [Body._broadcast],
    "log_softmax_axis": [Body._fused_axis],
    "logsumexp_axis": [Body._fused_axis],
    "softmax_axis": [Body._fused_axis],
    "pow": [Body._dot_of_square],
}
