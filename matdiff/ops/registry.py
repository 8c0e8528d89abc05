"""The operator record and the registry every stage reads.

One `Operator` holds every fact about one IR operation: how a person cites its differential,
the rule itself, its transpose ("peel") rule when it is linear in a differential, its value in
floating point, in exact arithmetic (SymPy) and in high precision (mpmath), how it is named in
`matdiff parse`, and how each notation spells it. The stages (differential, trace form,
numeric/exact/precise evaluators, printers) are drivers over these facets; a facet that is
missing fails naming the operator and the facet, never as a KeyError deep in a stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DRule:
    """d(node) from the differentials of its arguments: apply(ctx, node, d) with d(child)."""

    label: str  # the identity, as a student would cite it
    apply: Callable


@dataclass(frozen=True)
class PeelRule:
    """⟨G, L⟩ → ⟨G', L'⟩ moving this operator out of L: apply(node, g) yields (child, G')."""

    label: str  # the trace identity that justifies the step
    apply: Callable


# Precedence levels of printed forms, loosest first, as in the grammar: sum < product <
# unary minus < power < postfix < atom. A spelling returns its text with its level.
SUM, PRODUCT, UNARY, POWER, POSTFIX, ATOM = range(1, 7)


@dataclass(frozen=True)
class Spelling:
    """How the notations write the operator. Each field is a function name (printed as a
    call, name(args)) or a callable (printer, node) -> (text, precedence) for a special
    form such as ‖x‖ or 1ᵀx; `text` must read back in the expression language."""

    text: str | Callable | None = None
    unicode: str | Callable | None = None
    latex: str | Callable | None = None


@dataclass(frozen=True)
class Operator:
    name: str  # the IR op string
    label: str  # what `matdiff parse` calls a node of it
    d: DRule | None = None
    peel: PeelRule | None = None  # only for operators that can hold a differential linearly
    numeric: Callable | None = None  # (node, args, size) -> 2-D float array
    exact: Callable | None = None  # (sympy, node, args, size) -> SymPy matrix
    precise: Callable | None = None  # (mpmath, node, args, size) -> mpmath matrix
    spelling: Spelling = field(default_factory=Spelling)
    # backend name → (ctx, node, argument expressions) -> code; ctx is the backend's
    # LoweringContext (shape(…), dim(…), is_vector(…), text(…)); products, sums and other
    # operands the planner must see are lowered by the backend itself
    lower: dict[str, Callable] = field(default_factory=dict)


OPERATORS: dict[str, Operator] = {}

# facets that every operator of the language must have (tests check the registry against it)
REQUIRED = ("d", "numeric", "exact", "precise")


def declare(op: Operator) -> Operator:
    if op.name in OPERATORS:
        raise ValueError(f"operator '{op.name}' is declared twice")
    OPERATORS[op.name] = op
    return op


class MissingRule(LookupError):
    """An operator without the facet a stage needs (a bug in the declaration)."""


def rule(op_name: str, facet: str):
    """The facet `facet` of operator `op_name`; MissingRule naming both when absent."""
    op = OPERATORS.get(op_name)
    value = getattr(op, facet, None) if op is not None else None
    if value is None:
        raise MissingRule(f"no {facet} rule for '{op_name}'")
    return value


def table(facet: str) -> dict[str, object]:
    """op name → facet, for the operators that have it (a stage's dispatch table)."""
    return {name: getattr(op, facet) for name, op in OPERATORS.items()
            if getattr(op, facet) is not None}
