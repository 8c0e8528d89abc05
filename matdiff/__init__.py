"""matdiff: symbolic matrix calculus the way a person does it on paper.

    >>> import matdiff
    >>> g = matdiff.grad("tr(A*X*B)", "X")
    >>> str(g.gradient("X"))
    "A'*B'"

Heavy modules (Lark, NumPy, SciPy) load on first use, so `import matdiff` stays fast."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["grad", "parse", "MatdiffError"]

from .errors import MatdiffError


def parse(expr: str, types: dict[str, str] | None = None):
    """The typed expression (root node and variables) of `expr`."""
    from .typecheck import typecheck

    return typecheck(expr, types)


def grad(expr: str, wrt, types: dict[str, str] | None = None, check: bool = True):
    """Derive ∂f/∂X for each name in `wrt` (a name or a list of names)."""
    from .api import GradientResult
    from .gradient import derive

    return GradientResult(derive(expr, wrt, types, check=check, steps=False))
