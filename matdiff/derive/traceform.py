"""From the differential df to df = Σ tr(Gᵀ dX): the trace tricks, as transpose rules.

A term of df is kept as a pairing ⟨G, L⟩ meaning tr(Gᵀ L), starting from ⟨1, df⟩. Each rule
moves exactly one operator out of L into G (the way JAX transposes linear maps), so L shrinks
at every step and the pass ends with ⟨G, dX⟩ without any search. The pairings are
accumulated per node of the differential DAG in reverse topological order, so a shared
subexpression is peeled once, with the sum of its G's (reverse mode)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InternalError
from ..ir import expr as E
from ..ops import table

PEEL = table("peel")  # op → the operator's declared transpose rule (matdiff/ops)


@dataclass(frozen=True)
class PeelStep:
    label: str
    g: E.Node  # the pairing ⟨g, linear⟩ before the step
    linear: E.Node
    results: tuple[tuple[E.Node, E.Node], ...]  # the pairings after it


def to_trace_form(df: E.Node, record: list | None = None,
                  adjoints: dict | None = None) -> dict[str, E.Node]:
    """Gradients G_X with df = Σ_X tr(G_Xᵀ dX), one per differential dX present in df.
    `adjoints`, when given, receives the G paired with every linear node on the way."""
    if not df.is_scalar:
        raise InternalError("trace form of a non-scalar differential")
    order = [n for n in E.postorder(df, right_first=True) if E.has_differential(n)]
    pending: dict[E.Node, list[E.Node]] = {df: [E.const(1)]}
    grads: dict[str, E.Node] = {}
    for node in reversed(order):  # parents before children
        contributions = pending.pop(node, None)
        if not contributions:
            continue
        g = E.add(*contributions)
        if adjoints is not None:
            adjoints[node] = g
        if node.op == "dvar":
            grads[node.attr] = E.add(grads[node.attr], g) if node.attr in grads else g
            continue
        rule = PEEL.get(node.op)
        if rule is None:
            raise InternalError(f"no trace rule for '{node.op}' in a differential")
        results = tuple(rule.apply(node, g))
        if record is not None and rule.label:
            record.append(PeelStep(rule.label, g, node, results))
        for child, child_g in results:
            pending.setdefault(child, []).append(child_g)
    return grads
