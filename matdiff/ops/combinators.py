"""Rules derived once for a family of operators (JAX's `deflinear`/`defbilinear`, autograd's
`defvjp`): a linear operator's differential is the operator applied to the differential, and a
product's differential is the Leibniz sum; each family's peel rule comes with it."""

from __future__ import annotations

from ..ir import expr as E
from .registry import DRule


def linear_d(label: str, build) -> DRule:
    """d L(x, …) = L(dx, …) for an operator linear in all its arguments; build(node, *ds)."""
    return DRule(label, lambda ctx, n, d: build(n, *[d(a) for a in n.args]))


def leibniz_d(label: str, build) -> DRule:
    """d(a₁ ∘ … ∘ aₖ) = Σᵢ a₁ ∘ … ∘ daᵢ ∘ … ∘ aₖ for a product-like operator; build(*factors)."""

    def apply(ctx, n, d):
        f = n.args
        return E.add(*[build(*f[:i], d(f[i]), *f[i + 1:]) for i in range(len(f))])

    return DRule(label, apply)


def the_differential_factor(n: E.Node) -> int:
    """Index of the one factor of a product that holds the differential (the trace form is
    linear: exactly one does)."""
    (i,) = [k for k, a in enumerate(n.args) if E.has_differential(a)]
    return i


def constant_d(label: str = "d(constant) = 0") -> DRule:
    return DRule(label, lambda ctx, n, d: E.zero(n.shape))
