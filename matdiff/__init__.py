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


def allow_deep_expressions() -> None:
    if sys.getrecursionlimit() < _RECURSION:
        sys.setrecursionlimit(_RECURSION)


def _type_name(value) -> str:
    return type(value).__name__


def _check_text(value, what: str) -> str:
    """A str, or a TypeError that says what was passed and how to fix it."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} must be a str, got {_type_name(value)}: decode it first, "
                        f"e.g. {what}.decode('utf-8')")
    raise TypeError(f"{what} must be a str such as \"tr(A*X*B)\", got {_type_name(value)}")


def _check_name(value, what: str) -> str:
    if isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} must be a variable name as a str, got {_type_name(value)}: "
                        "decode it first")
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a variable name as a str, got {_type_name(value)}")
    return value


def _check_wrt(wrt) -> list[str] | str:
    """One name, or a list/tuple of names."""
    if isinstance(wrt, (list, tuple)):
        if not wrt:
            raise TypeError("wrt must name at least one variable, got an empty "
                            f"{_type_name(wrt)}")
        return [_check_name(w, "each name in wrt") for w in wrt]
    return _check_name(wrt, "wrt (a name or a list of names)")


def _check_types(types) -> dict[str, str] | None:
    from collections.abc import Mapping

    if types is None:
        return None
    if not isinstance(types, Mapping):
        example = ' (write {"x": "vector"} instead of "x:vector")' if isinstance(types, str) \
            else ""
        raise TypeError(f"types must be a dict mapping names to kinds, e.g. {{\"S\": \"spd\"}}, "
                        f"got {_type_name(types)}{example}")
    for name, kind in types.items():
        if not isinstance(name, str):
            raise TypeError(f"types: the key {name!r} must be a variable name (str), got "
                            f"{_type_name(name)}")
        if not isinstance(kind, str):
            raise TypeError(f"types: the kind of {name} must be a str (scalar, vector, matrix, "
                            f"symmetric or spd), got {_type_name(kind)}")
    return dict(types)


def parse(expr: str, types: dict[str, str] | None = None):
    """The typed expression (root node and variables) of `expr`."""
    from .language.typecheck import typecheck

    expr = _check_text(expr, "expr")
    types = _check_types(types)
    allow_deep_expressions()
    return typecheck(expr, types)


def grad(expr: str, wrt, types: dict[str, str] | None = None, check: bool = True,
         steps: bool = False, method: str = "trace"):
    """Derive ∂f/∂X for each name in `wrt` (a name or a list of names); with steps=True the
    result's `.steps` is the derivation in `method` (trace, backprop or jacobian; another
    method than trace implies steps=True, as --method does on the command line)."""
    from .api import GradientResult
    from .derive.gradient import derive

    if method not in ("trace", "backprop", "jacobian"):
        raise MatdiffError(f"unknown method {method!r}: use trace, backprop or jacobian")
    steps = steps or method != "trace"
    expr = _check_text(expr, "expr")
    wrt = _check_wrt(wrt)
    types = _check_types(types)
    allow_deep_expressions()
    return GradientResult(derive(expr, wrt, types, check=check, steps=steps),
                          method if steps else None)


def check(expr: str, wrt: str, claim: str, types: dict[str, str] | None = None,
          steps: bool = False, layout: str = "denominator", convention: str = "matdiff"):
    """Whether `claim` is ∂f/∂wrt, as `matdiff check` decides it: a verdict with `.correct`,
    `.text` ("correct" or the diagnosis) and `.exact` (SymPy's proof on matrices of symbols:
    True, False, or None when not settled). layout="numerator" reads the claim as ∂f/∂Xᵀ and
    convention="cookbook" as the Matrix Cookbook's 2G − diag(G) for a symmetric X, like
    --layout and --convention."""
    from .oracles.diagnose import check_claim

    expr = _check_text(expr, "expr")
    if isinstance(wrt, (list, tuple)):
        raise TypeError("check decides one gradient: wrt must be one variable name (str), got "
                        f"a {_type_name(wrt)}; call check once per variable")
    wrt = _check_name(wrt, "wrt")
    claim = _check_text(claim, "claim")
    types = _check_types(types)
    allow_deep_expressions()
    return check_claim(expr, wrt, claim, types, steps=steps, layout=layout,
                       convention=convention)
