"""Kinds of variables, naming defaults, declarations, and symbolic dimensions unified by
union-find. Knows nothing about syntax or the IR: typecheck.py drives it."""

from __future__ import annotations

from .errors import ShapeError, Span
from .expr import KINDS, ONE, Dim, Shape

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
    which never unifies with a symbolic dimension (a vector is not a scalar)."""

    ONE_ID = -1

    def __init__(self) -> None:
        self.parent: list[int] = []

    def fresh(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, d: int) -> int:
        if d == self.ONE_ID:
            return d
        root = d
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[d] != root:  # path compression
            self.parent[d], d = root, self.parent[d]
        return root

    def unify(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if ra == self.ONE_ID or rb == self.ONE_ID:
            return False
        # the class keeps the older representative, so names follow first appearance
        if ra < rb:
            self.parent[rb] = ra
        else:
            self.parent[ra] = rb
        return True

    def names(self) -> dict[int, Dim]:
        """Representative → Dim, named m, n, p, … by first appearance ('n' if there is one)."""
        roots: list[int] = []
        for d in range(len(self.parent)):
            r = self.find(d)
            if r not in roots:
                roots.append(r)
        if len(roots) == 1:
            return {roots[0]: Dim("n")}
        out = {}
        for i, r in enumerate(roots):
            out[r] = Dim(_DIM_NAMES[i] if i < len(_DIM_NAMES) else f"d{i + 1}")
        return out

    def resolve(self, shape: tuple[int, int], names: dict[int, Dim] | None = None) -> Shape:
        names = names if names is not None else self.names()
        return tuple(ONE if d == self.ONE_ID else names[self.find(d)] for d in shape)  # type: ignore

    def describe(self, shape: tuple[int, int]) -> str:
        from .expr import shape_text

        return shape_text(self.resolve(shape))


def shape_conflict(what: str, left_text: str, left: str, right_text: str, right: str,
                   span: Span, hint: str | None = None) -> ShapeError:
    return ShapeError(f"{what}: {left_text} is {left}, {right_text} is {right}", span, hint=hint)
