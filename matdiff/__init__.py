"""matdiff: symbolic matrix calculus the way a person does it on paper.

    >>> import matdiff
    >>> g = matdiff.grad("tr(A*X*B)", "X")
    >>> str(g.gradient("X"))
    "A'*B'"

Heavy modules (Lark, NumPy, SciPy) load on first use, so `import matdiff` stays fast."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["grad", "check", "parse", "MatdiffError"]

import sys

from .errors import MatdiffError

# Expressions may nest up to syntax.MAX_DEPTH levels and their derivatives a few times deeper;
# the recursive passes (typing, printing) need more than Python's default 1,000 frames.
_RECURSION = 20000


def _allow_deep_expressions() -> None:
    if sys.getrecursionlimit() < _RECURSION:
        sys.setrecursionlimit(_RECURSION)


def parse(expr: str, types: dict[str, str] | None = None):
    """The typed expression (root node and variables) of `expr`."""
    from .typecheck import typecheck

    _allow_deep_expressions()
    return typecheck(expr, types)


def grad(expr: str, wrt, types: dict[str, str] | None = None, check: bool = True):
    """Derive ∂f/∂X for each name in `wrt` (a name or a list of names)."""
    from .api import GradientResult
    from .gradient import derive

    _allow_deep_expressions()
    return GradientResult(derive(expr, wrt, types, check=check, steps=False))


def check(expr: str, wrt: str, claim: str, types: dict[str, str] | None = None,
          steps: bool = False):
    """Whether `claim` is ∂f/∂wrt, as `matdiff check` decides it: a verdict with `.correct`,
    `.text` ("correct" or the diagnosis) and `.exact` (SymPy's proof on matrices of symbols:
    True, False, or None when not settled)."""
    from .diagnose import check_claim

    _allow_deep_expressions()
    return check_claim(expr, wrt, claim, types, steps=steps)
