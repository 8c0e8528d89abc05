"""From the differential df to df = Σ tr(Gᵀ dX): the trace tricks, as transpose rules.

A term of df is kept as a pairing ⟨G, L⟩ meaning tr(Gᵀ L), starting from ⟨1, df⟩. Each rule
moves exactly one operator out of L into G (the way JAX transposes linear maps), so L shrinks
at every step and the pass ends with ⟨G, dX⟩ without any search. The pairings are
accumulated per node of the differential DAG in reverse topological order, so a shared
subexpression is peeled once, with the sum of its G's (reverse mode)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import expr as E
from .errors import InternalError

Peel = Iterator[tuple[E.Node, E.Node]]  # (inner linear node, its G)


@dataclass(frozen=True)
class PeelRule:
    label: str  # the trace identity that justifies the step
    apply: Callable[[E.Node, E.Node], Peel]


def _peel_marker(n, g):
    yield n.args[0], g


def _peel_add(n, g):
    for a in n.args:
        if E.has_differential(a):
            yield a, g


def _peel_scale(n, g):
    c, x = n.args
    if E.has_differential(x):
        yield x, E.scale(c, g)
    else:  # the scalar factor carries the differential: ⟨G, dc·M⟩ = dc·⟨G, M⟩
        yield c, E.inner(g, x)


def _peel_matmul(n, g):
    f = n.args
    (i,) = [k for k, a in enumerate(f) if E.has_differential(a)]
    left = [E.transpose(a) for a in reversed(f[:i])]
    right = [E.transpose(a) for a in reversed(f[i + 1:])]
    yield f[i], E.matmul(*left, g, *right) if (left or right) else g


def _peel_transpose(n, g):
    yield n.args[0], E.transpose(g)


def _peel_hadamard(n, g):
    f = n.args
    (i,) = [k for k, a in enumerate(f) if E.has_differential(a)]
    yield f[i], E.hadamard(g, *f[:i], *f[i + 1:])


def _peel_hdiv(n, g):
    yield n.args[0], E.hdiv(g, n.args[1])


def _peel_trace(n, g):
    x = n.args[0]
    yield x, E.scale(g, E.eye(x.shape[0]))


def _peel_sum(n, g):
    x = n.args[0]
    yield x, E.scale(g, E.ones(x.shape))


def _peel_diag_embed(n, g):
    yield n.args[0], E.diag_extract(g)


def _peel_diag_extract(n, g):
    yield n.args[0], E.diag_embed(g)


PEEL: dict[str, PeelRule] = {
    "dnode": PeelRule("", _peel_marker),
    "add": PeelRule("linearity: tr(Gᵀ(A + B)) = tr(GᵀA) + tr(GᵀB)", _peel_add),
    "scale": PeelRule("linearity: scalars move out of the trace", _peel_scale),
    "matmul": PeelRule("cyclic property: tr(Gᵀ·P·L·Q) = tr((PᵀGQᵀ)ᵀ L)", _peel_matmul),
    "transpose": PeelRule("tr(Aᵀ) = tr(A): tr(Gᵀ Lᵀ) = tr((Gᵀ)ᵀ L)", _peel_transpose),
    "hadamard": PeelRule("tr(Gᵀ(S ⊙ L)) = tr((S ⊙ G)ᵀ L)", _peel_hadamard),
    "hdiv": PeelRule("tr(Gᵀ(L ⊘ S)) = tr((G ⊘ S)ᵀ L)", _peel_hdiv),
    "tr": PeelRule("a scalar is its own trace: g·tr(L) = tr((g·I)ᵀ L)", _peel_trace),
    "sum": PeelRule("sum(L) = tr((1 1ᵀ)ᵀ L)", _peel_sum),
    "diag_embed": PeelRule("tr(Gᵀ diag(l)) = diag(G)ᵀ l", _peel_diag_embed),
    "diag_extract": PeelRule("g ᵀdiag(L) = tr(diag(g)ᵀ L)", _peel_diag_extract),
}


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
