"""`matdiff grad` output in its three formats: text (people), LaTeX (notes), JSON (programs)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import expr as E
from .latex import LatexPrinter
from .report import (
    derivation_steps,
    differential_latex,
    differential_text,
    is_atomic,
    latex_steps,
    shared_intermediates,
    unicode_with_names,
)
from .text import to_text
from .unicode import UnicodePrinter


@dataclass
class GradReport:
    """The parts of `matdiff grad`'s answer; plain text and the Rich panel both draw them."""

    function: str
    variables: list[tuple[str, str, str]]  # name, kind, shape
    steps: list[tuple[str, str]]  # (rule, line)
    notes: list[str]
    results: list[str]  # df = … and ∂f/∂X = … lines
    where: list[str]
    check: str


def grad_report(result, steps: bool = False) -> GradReport:
    p = UnicodePrinter()
    variables = [(name, v.attr[1], _dims(v.shape) or "scalar")
                 for name, v in result.typed.variables.items()]
    grads = [result.gradients[n] for n in result.wrt]
    named = shared_intermediates(grads, result.adjoints)
    printed, where = unicode_with_names(grads, named)
    names = {x.node for x in named}
    results = []
    for name, g, node in zip(result.wrt, printed, grads):
        v = result.variable(name)
        pv = p.var_name(name)
        results.append(differential_text(g, v, pv, is_atomic(node, names)))
        results.append(f"∂f/∂{pv} = {g}")
    check = (f"(checked against central finite differences: max relative error "
             f"{result.max_error:.1e})") if result.checked else ""
    return GradReport(f"f = {p.doc(result.f)}", variables,
                      derivation_steps(result) if steps else [],
                      _notes(result) if steps else [], results, where, check)


def grad_text(result, steps: bool = False) -> str:
    r = grad_report(result, steps)
    lines = [r.function]
    lines.append("variables: " + ", ".join(
        f"{name} {kind}" + ("" if shape == "scalar" else f" {shape}")
        for name, kind, shape in r.variables))
    if r.steps:
        lines += ["", "derivation:"]
        for i, (rule, line) in enumerate(r.steps, 1):
            lines.append(f"{i:3d}. {line}")
            lines.append(f"       [{rule}]")
        lines += [f"note: {note}" for note in r.notes]
    lines.append("")
    lines += r.results
    if r.where:
        lines.append("where")
        lines.extend("  " + w for w in r.where)
    if r.check:
        lines.append(r.check)
    return "\n".join(lines)


def _dims(shape) -> str:
    return "×".join(E.shape_dims(shape))


def _notes(result) -> list[str]:
    notes = []
    for n in E.walk(result.f):
        if n.op == "fn" and n.attr == "log" and n.args[0].op == "softmax":
            notes.append("log(softmax(a)) = a − 1·logsumexp(a); the gradient of −yᵀlog(softmax(a))"
                         " is (1ᵀy)·softmax(a) − y, which is softmax(a) − y when 1ᵀy = 1 "
                         "(y a probability vector, e.g. one-hot)")
            break
    return notes


def grad_latex(result, steps: bool = False) -> str:
    if steps:
        return latex_steps(result)
    p = LatexPrinter()
    lines = []
    for name in result.wrt:
        v = result.variable(name)
        g = p.doc(result.gradients[name])
        lines.append(differential_latex(g, v, p.var_name(name)))
        lines.append(rf"\frac{{\partial f}}{{\partial {p.var_name(name)}}} = {g}")
    return "\n".join(lines)


def grad_json(result) -> dict:
    lp = LatexPrinter()
    up = UnicodePrinter()
    out = {
        "expression": result.typed.source,
        "variables": {name: {"kind": v.attr[1], "shape": E.shape_dims(v.shape)}
                      for name, v in result.typed.variables.items()},
        "gradients": {},
        "checked": result.checked,
    }
    for name in result.wrt:
        g = result.gradients[name]
        v = result.variable(name)
        out["gradients"][name] = {
            "gradient": to_text(g),
            "differential": differential_text(up.doc(g), v, up.var_name(name), is_atomic(g)),
            "latex": lp.doc(g),
            "shape": E.shape_dims(g.shape),
        }
    return out
