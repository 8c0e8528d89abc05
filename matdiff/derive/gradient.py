"""The whole derivation: typed expression → differential → trace form → gradient per variable,
with the symmetric-matrix convention, textbook simplification and a numerical self-check.

All `wrt` variables share one derivation: the differential is taken once for all of them and
peeled once (reverse mode), so common factors such as ∂f/∂a₂ are computed once."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from fractions import Fraction

from ..errors import DerivationError, InternalError
from ..ir import expr as E
from ..language.typecheck import Typed, typecheck
from .differential import Differentiator
from .simplify import simplify, simplify_many
from .traceform import PeelStep, to_trace_form

SYMMETRIC_KINDS = ("symmetric", "spd")


@dataclass
class Derivation:
    typed: Typed
    wrt: list[str]
    df: E.Node  # the differential, linear in the dX
    gradients: dict[str, E.Node]  # name → G (shape of the variable), simplified
    unconstrained: dict[str, E.Node]  # name → G₀ before the symmetric convention
    diff_steps: list = field(default_factory=list)  # (rule label, node, differential)
    peel_steps: list[PeelStep] = field(default_factory=list)
    adjoints: dict[E.Node, E.Node] = field(default_factory=dict)  # primal node → ∂f/∂node
    checked: bool = False
    max_error: float = float("nan")
    check_reason: str = ""  # why the self-check could not be made (checked False)

    @property
    def f(self) -> E.Node:
        return self.typed.root

    def variable(self, name: str) -> E.Node:
        return self.typed.variables[name]


def derive(source: str | Typed, wrt: list[str] | str, types: dict[str, str] | None = None,
           check: bool = True, steps: bool = False) -> Derivation:
    typed = typecheck(source, types) if isinstance(source, str) else source
    wrt = [wrt] if isinstance(wrt, str) else list(dict.fromkeys(wrt))
    f = typed.root
    if not f.is_scalar:
        raise DerivationError(
            f"a gradient needs a scalar expression, but this one is {E.shape_text(f.shape)}",
            (0, len(typed.source)), typed.source,
            hint="a gradient is defined for scalar functions: reduce with sum(…), tr(…) or a norm")
    for name in wrt:
        if name not in typed.variables:
            raise DerivationError(unknown_variable_message(name, typed), None, typed.source)
    if not wrt:
        raise DerivationError("name at least one variable to differentiate by (--wrt X)")

    diff_steps: list | None = [] if steps else None
    peel_steps: list | None = [] if steps else None
    differ = Differentiator(set(wrt), diff_steps)
    df = differ(f)
    linear_adjoints: dict[E.Node, E.Node] = {}
    raw = to_trace_form(df, peel_steps, linear_adjoints)

    # every result simplified together: one fixed point over all of them, so the shared
    # subexpressions of gradients and intermediates (∂l/∂a₂ in a network) are rewritten once
    pending: list[E.Node] = []
    for name in wrt:
        v = typed.variables[name]
        g0 = raw.get(name, E.zero(v.shape))
        pending += [g0, symmetric_part(g0) if v.attr[1] in SYMMETRIC_KINDS else g0]
    # ∂f/∂(intermediate) for every intermediate whose differential was peeled: the names a
    # person gives to shared factors (∂l/∂a₂ in a network)
    primals = [p for p, d in differ.cache.items() if p.op != "var" and d in linear_adjoints]
    pending += [linear_adjoints[differ.cache[p]] for p in primals]
    done = simplify_many(pending)
    unconstrained = {name: done[2 * i] for i, name in enumerate(wrt)}
    gradients = {name: done[2 * i + 1] for i, name in enumerate(wrt)}
    adjoints = dict(zip(primals, done[2 * len(wrt):]))
    result = Derivation(typed, wrt, df, gradients, unconstrained, diff_steps or [],
                        peel_steps or [], adjoints)
    if check:
        self_check(result)
    return result


def settled(node: E.Node) -> E.Node:
    """The textbook form: simplify's fixed point."""
    return simplify(node)


def symmetric_part(g: E.Node) -> E.Node:
    """SPEC §1: for symmetric X the gradient is sym(G₀) = (G₀ + G₀ᵀ)/2."""
    half = E.const(Fraction(1, 2))
    return E.add(E.scale(half, g), E.scale(half, E.transpose(g)))


def self_check(result: Derivation, seed: int = 12345) -> None:
    """Never a silent wrong answer: compare every gradient with central differences at a
    point where every operation is defined. A comparison that cannot be made is reported as
    such (result.checked False, result.check_reason), never as a pass."""
    from ..oracles.numeric import check_gradients

    outcome = check_gradients(result.f, result.gradients, result.typed.variables, seed=seed)
    if not outcome.checked:
        search = outcome.search
        if not search.value_defined:
            raise undefined_error(result.typed, search)
        result.checked = False
        result.check_reason = search.message()
        return
    bad = [c for c in outcome.checks if not c.ok]
    if bad:
        from ..printing.text import to_text

        names = ", ".join(f"{c.name} (relative error {c.max_rel_error:.2g})" for c in bad)
        raise InternalError(
            f"the numerical self-check rejected the derived gradient of {names} for "
            f"'{to_text(result.f)}'; this is a bug in matdiff, please report it")
    result.checked = True
    result.max_error = max((c.max_rel_error for c in outcome.checks), default=0.0)


def undefined_error(typed: Typed, search) -> DerivationError:
    """f has no value anywhere matdiff looked: bad input, not a gradient to print."""
    return DerivationError(
        f"f is undefined (no finite value) at every point tried: {search.explain()}",
        (0, len(typed.source)), typed.source,
        hint="check the expression's domain (an inverse of a rank-deficient matrix, a log "
             "of a non-positive value, a division by zero); if it is defined somewhere, "
             "--no-check skips the numerical check")


def unknown_variable_message(name: str, typed: Typed) -> str:
    names = list(typed.variables)
    msg = f"'{name}' is not a variable of the expression"
    close = [n for n in names if n.lower() == name.lower()] or \
        difflib.get_close_matches(name, names, n=1)
    if close:
        return msg + f"; did you mean '{close[0]}'?"
    return msg + (f" (its variables: {', '.join(names)})" if names else " (it has none)")
