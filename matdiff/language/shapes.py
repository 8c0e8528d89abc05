"""Kinds of variables, naming defaults, declarations, and symbolic dimensions unified by
union-find. Knows nothing about syntax or the IR: typecheck.py drives it."""

from __future__ import annotations

from ..errors import MatdiffError, ShapeError, Span
from ..ir.expr import KINDS, ONE, Dim, Shape, dim_product

# SPEC §1: names spelled as lowercase Greek letters are scalars.
GREEK_NAMES = frozenset(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon phi chi psi omega".split()
)
_DIM_NAMES = ["m", "n", "p", "q", "r", "s", "t", "u", "v", "w", "k", "l"]


def default_kind(name: str) -> str:
    """The matrixcalculus.org convention: a–g scalar, h–z vector, A–Z matrix; lowercase Greek
    scalar; capital Greek (Σ, Λ, Θ, …, and the spelled `Sigma`, `Lambda`, …) a matrix."""
    if name in GREEK_NAMES:
        return "scalar"
    first = name[0]
    if "Α" <= first <= "Ω":  # capital Greek: Σ is a covariance matrix, as A–Z are matrices
        return "matrix"
    if "α" <= first <= "ω":
        return "scalar"
    if "a" <= first <= "g":
        return "scalar"
    if "h" <= first <= "z" or first == "_":
        return "vector"
    return "matrix"


# A probability vector (one-hot label or distribution): a vector whose entries sum to 1. It is
# typed as a vector; `check` and `grad` use 1ᵀy = 1 (issue 13).
PROBABILITY_KINDS = ("probability", "onehot", "one-hot", "simplex", "distribution")


def check_kinds(types: dict[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, kind in (types or {}).items():
        if name in ("I", "eye"):
            raise ShapeError(f"{name} is the identity matrix (its size comes from the context) "
                             "and cannot be declared", hint="give your variable another name")
        k = str(kind).strip().lower()
        if k in PROBABILITY_KINDS:
            k = "vector"
        if k not in KINDS:
            raise ShapeError(f"unknown kind {kind!r} for {name}: use one of "
                             f"{', '.join(KINDS)}, probability")
        out[name] = k
    return out


def probability_names(types: dict[str, str] | None) -> frozenset[str]:
    """The names declared probability vectors (entries summing to 1)."""
    return frozenset(n for n, k in (types or {}).items()
                     if str(k).strip().lower() in PROBABILITY_KINDS)


class Dims:
    """Symbolic dimensions as integers, unified with union-find. ONE_ID is the literal 1,
    which never unifies with a symbolic dimension (a vector is not a scalar).

    A class may also stand for a product of others (the m·p rows of kron(A, B), the n·m
    entries of vec(X)): `product(a, b)` makes such a class. Products are kept flat (m·(p·q) is
    m·p·q); unifying two products unifies their factors pairwise (equal factor counts only),
    and a plain class unified with a product becomes that product (never when the product
    contains it: m = m·p would need p = 1)."""

    ONE_ID = -1

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.factors_of: dict[int, tuple[int, ...]] = {}  # product class → its factors

    def fresh(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def product(self, a: int, b: int) -> int:
        """The class of the product a·b (1·b is b)."""
        if a == self.ONE_ID:
            return b
        if b == self.ONE_ID:
            return a
        d = self.fresh()
        self.factors_of[d] = (a, b)
        return d

    def find(self, d: int) -> int:
        if d == self.ONE_ID:
            return d
        root = d
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[d] != root:  # path compression
            self.parent[d], d = root, self.parent[d]
        return root

    def factors(self, d: int) -> tuple[int, ...]:
        """The plain classes whose product d is, in order ((d,) for a plain class)."""
        r = self.find(d)
        parts = self.factors_of.get(r)
        if parts is None:
            return (r,)
        out: tuple[int, ...] = ()
        for p in parts:
            out += self.factors(p)
        return out

    def unify(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if ra == self.ONE_ID or rb == self.ONE_ID:
            return False
        fa, fb = self.factors(ra), self.factors(rb)
        if len(fa) == 1 and len(fb) == 1:
            # the class keeps the older representative, so names follow first appearance
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb
            return True
        if len(fa) == 1 or len(fb) == 1:  # a plain class becomes the product
            plain, prod, parts = (ra, rb, fb) if len(fa) == 1 else (rb, ra, fa)
            if plain in parts:
                return False
            self.parent[plain] = prod
            return True
        if len(fa) != len(fb):
            return False
        for x, y in zip(fa, fb):
            if not self.unify(x, y):
                return False
        ra, rb = self.find(ra), self.find(rb)
        if ra != rb:
            self.parent[ra] = rb
        return True

    def names(self) -> dict[int, Dim]:
        """Representative → Dim, named m, n, p, … by first appearance ('n' if there is one);
        products are named by their factors (m·p), when resolved."""
        roots: list[int] = []
        for d in range(len(self.parent)):
            r = self.find(d)
            if r not in roots and r not in self.factors_of:
                roots.append(r)
        if len(roots) == 1:
            return {roots[0]: Dim("n")}
        out = {}
        for i, r in enumerate(roots):
            out[r] = Dim(_DIM_NAMES[i] if i < len(_DIM_NAMES) else f"d{i + 1}")
        return out

    def dim(self, d: int, names: dict[int, Dim]) -> Dim:
        if d == self.ONE_ID:
            return ONE
        out = None
        for f in self.factors(d):
            out = names[f] if out is None else dim_product(out, names[f])
        return out

    def resolve(self, shape: tuple[int, int], names: dict[int, Dim] | None = None) -> Shape:
        names = names if names is not None else self.names()
        return tuple(self.dim(d, names) for d in shape)  # type: ignore

    def describe(self, shape: tuple[int, int]) -> str:
        from ..ir.expr import shape_text

        return shape_text(self.resolve(shape))


def shape_conflict(what: str, left_text: str, left: str, right_text: str, right: str,
                   span: Span, hint: str | None = None) -> ShapeError:
    return ShapeError(f"{what}: {left_text} is {left}, {right_text} is {right}", span, hint=hint)


def _reserved_names() -> frozenset[str]:
    from ..ops import function_names

    return frozenset(function_names())


def declarations(items, option: str = "--let") -> dict[str, str]:
    """NAME:KIND items (each may hold several, comma-separated) as a checked dict. The same
    declaration twice is fine; two different kinds for one name, an empty or malformed name,
    or a function name are errors (never "the last one wins")."""
    types: dict[str, str] = {}
    reserved = None
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            if ":" not in part:
                raise MatdiffError(f"{option} expects NAME:KIND, got {part.strip()!r} "
                                   "(e.g. S:spd)")
            name, kind = (s.strip() for s in part.split(":", 1))
            if not name:
                raise MatdiffError(f"{option} {part.strip()!r} names no variable: write "
                                   f"NAME:KIND, e.g. x:{kind or 'vector'}")
            if not name.isidentifier():
                raise MatdiffError(f"{option}: {name!r} is not a variable name (letters, digits "
                                   "and _, not starting with a digit)")
            reserved = reserved if reserved is not None else _reserved_names()
            if name in reserved:
                raise MatdiffError(f"{option}: {name!r} is a function name and cannot be "
                                   "declared as a variable; pick another name")
            if not kind:
                raise MatdiffError(f"{option} {part.strip()!r} gives no kind: write {name}:KIND "
                                   "with KIND scalar, vector, matrix, symmetric or spd")
            checked = check_kinds({name: kind})[name]
            kind = "probability" if kind.lower() in PROBABILITY_KINDS else checked
            if name in types and types[name] != kind:
                raise MatdiffError(f"{option} declares {name} twice with different kinds "
                                   f"({types[name]} and {kind}): keep one")
            types[name] = kind
    return types
