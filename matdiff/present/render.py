"""`matdiff grad` output in its three formats: text (people), LaTeX (notes), JSON (programs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import expr as E
from ..printing.latex import LatexPrinter
from ..printing.text import to_text
from ..printing.unicode import UnicodePrinter
from .report import (
    differential_latex,
    differential_text,
    is_atomic,
    latex_with_names,
    shared_intermediates,
    unicode_with_names,
)


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
    # what the matrix functions in the answer mean and assume (ops.matrix_functions.notes_for)
    conditions: list[str] = field(default_factory=list)


def grad_report(result, steps: bool = False, method: str = "trace") -> GradReport:
    p = UnicodePrinter()
    context = getattr(result.typed, "context_kinds", None) or {}
    variables = [(name, v.attr[1] + (" (from context)" if name in context else ""),
                  _dims(v.shape) or "scalar")
                 for name, v in result.typed.variables.items()]
    grads = [result.gradients[n] for n in result.wrt]
    named = shared_intermediates(grads, result.adjoints)
    printed, where = unicode_with_names(grads, named)
    names = {x.node for x in named}
    results = []
    for name, g, node in zip(result.wrt, printed, grads):
        v = result.variable(name)
        pv = p.var_name(name)
        plain = _untransposed(node, v)
        if plain is not None:  # G = Aᵀ (or symmetric): df = tr(A dX), not tr((Aᵀ)ᵀ dX)
            text = UnicodePrinter({x.node: _pretty(x.name) for x in named}).doc(plain)
            wrapped = text if is_atomic(plain, names) else f"({text})"
            results.append(f"df = tr({wrapped} d{pv})")
        else:
            results.append(differential_text(g, v, pv, is_atomic(node, names)))
        results.append(f"∂f/∂{pv} = {g}")
    return GradReport(f"f = {p.doc(result.f)}", variables,
                      _method_lines(result, method) if steps else [],
                      _notes(result) if steps else [], results, where, check_line(result),
                      conditions(result))


def _method_lines(result, method: str) -> list[tuple[str, str]]:
    from .methods import method_steps

    m = method_steps(result, method)
    return m.text_lines() + ([("this method does not apply", m.message)] if m.message else [])


def check_line(result) -> str:
    """The self-check's outcome in one line: a figure only when a comparison was made."""
    if result.checked:
        return (f"(checked against central finite differences: max relative error "
                f"{result.max_error:.1e})")
    reason = getattr(result, "check_reason", "")
    if reason:
        return f"(NOT checked: {reason}; treat this result with care)"
    return "(not checked: --no-check)"


def _untransposed(g: E.Node, v: E.Node) -> E.Node | None:
    """Gᵀ when it is simpler than G (G = Aᵀ, or G symmetric), for a matrix variable."""
    if v.kind != "matrix" or v.attr[1] in ("symmetric", "spd"):
        return None
    t = E.transpose(g)
    return t if t.op != "transpose" and (g.op == "transpose" or t is g) else None


def _pretty(name: str) -> str:
    return name.translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def grad_text(result, steps: bool = False, method: str = "trace") -> str:
    r = grad_report(result, steps, method)
    lines = [r.function]
    lines.append("variables: " + ", ".join(_variable_words(*row) for row in r.variables))
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
    lines += [f"note: {note}" for note in r.conditions]
    if r.check:
        lines.append(r.check)
    return "\n".join(lines)


def _variable_words(name: str, kind: str, shape: str) -> str:
    """"b vector m (from context)": the note after the shape."""
    kind, _, note = kind.partition(" (")
    return f"{name} {kind}" + ("" if shape == "scalar" else f" {shape}") + \
        (f" ({note}" if note else "")


def _dims(shape) -> str:
    return "×".join(E.shape_dims(shape))


def conditions(result) -> list[str]:
    """One line per matrix function in f or a gradient: its definition (L_expm, polar, Φ, …)
    and the condition the result holds under (a simple eigenvalue, full rank)."""
    from ..ops.matrix_functions import notes_for

    return list(getattr(result.typed, "reading_notes", [])) + \
        notes_for(result.f, *(result.gradients[n] for n in result.wrt))


def _notes(result) -> list[str]:
    notes = []
    for n in E.walk(result.f):
        if n.op == "fn" and n.attr == "log" and n.args[0].op == "softmax":
            notes.append("log(softmax(a)) = a − 1·logsumexp(a); the gradient of −yᵀlog(softmax(a))"
                         " is (1ᵀy)·softmax(a) − y, which is softmax(a) − y when 1ᵀy = 1 "
                         "(y a probability vector, e.g. one-hot)")
            break
    return notes


def grad_latex(result, steps: bool = False, method: str = "trace", names: bool = False) -> str:
    """LaTeX lines df = …, ∂f/∂X = …. With names (Jupyter), shared intermediates are named as
    in the text output and defined in a where block; without, every line reads back as an
    expression (SPEC: --format latex output parses to the same expression)."""
    if steps:
        from .methods import method_steps

        return method_steps(result, method).latex_block()
    p = LatexPrinter()
    grads = [result.gradients[n] for n in result.wrt]
    named = shared_intermediates(grads, result.adjoints) if names else []
    plains = [_untransposed(g, result.variable(n)) for n, g in zip(result.wrt, grads)]
    printed, where = latex_with_names(grads + [x for x in plains if x is not None], named)
    plain_text = iter(printed[len(grads):])
    lines = []
    for name, g, plain in zip(result.wrt, printed, plains):
        v = result.variable(name)
        if plain is not None:
            lines.append(rf"\mathrm{{d}}f = \operatorname{{tr}}\left({next(plain_text)} "
                         rf"\mathrm{{d}}{p.var_name(name)}\right)")
        else:
            lines.append(differential_latex(g, v, p.var_name(name)))
        lines.append(rf"\frac{{\partial f}}{{\partial {p.var_name(name)}}} = {g}")
    if where:
        lines.append(r"\text{where}")
        lines += where
    return "\n".join(lines)


def grad_json(result, steps: bool = False, method: str = "trace") -> dict:
    lp = LatexPrinter()
    up = UnicodePrinter()
    out = {
        "expression": result.typed.source,
        "variables": {name: _variable_json(result.typed, name, v)
                      for name, v in result.typed.variables.items()},
        "gradients": {},
        "checked": result.checked,
    }
    if result.checked:
        out["max_relative_error"] = result.max_error
    else:
        out["reason"] = getattr(result, "check_reason", "") or "not checked: --no-check"
    if steps:
        from .methods import method_steps

        out["steps"] = method_steps(result, method).json_steps()
    notes = conditions(result)
    if notes:
        out["notes"] = notes
    for name in result.wrt:
        g = result.gradients[name]
        v = result.variable(name)
        out["gradients"][name] = {
            "gradient": to_text(g),
            "differential": _json_differential(g, v, up, name),
            "latex": lp.doc(g),
            "shape": E.shape_dims(g.shape),
        }
    return out


def _variable_json(typed, name: str, v: E.Node) -> dict:
    out = {"kind": v.attr[1], "shape": E.shape_dims(v.shape)}
    if name in (getattr(typed, "context_kinds", None) or {}):
        out["from_context"] = True  # a scalar by default, widened by how it is used
    return out


def _json_differential(g: E.Node, v: E.Node, up: UnicodePrinter, name: str) -> str:
    plain = _untransposed(g, v)
    if plain is None:
        return differential_text(up.doc(g), v, up.var_name(name), is_atomic(g))
    text = up.doc(plain) if is_atomic(plain) else f"({up.doc(plain)})"
    return f"df = tr({text} d{up.var_name(name)})"


# ---------------------------------------------------------------- Jacobians and Hessians


def _title(r, printer) -> str:
    x = printer.var_name(r.wrt)
    if r.kind == "jacobian":
        return f"J = ∂f/∂{x}ᵀ"
    if r.kind == "hessian":
        return f"H = ∂²f/∂{x}∂{x}ᵀ"
    if r.kind == "vec":
        return f"J = ∂vec(f)/∂vec({x})ᵀ"
    return f"H[{printer.var_name(r.direction.attr[0])}]"


def linear_map_text(results) -> str:
    p = UnicodePrinter()
    first = results[0]
    lines = [f"f = {p.doc(first.typed.root)}"
             + ("" if first.typed.root.is_scalar else f"   ({_dims(first.typed.root.shape)})")]
    for r in results:
        body = p.doc(r.result)
        if r.kind == "jacobian":
            m, n = r.result.shape
            note = (f"numerator layout: {m.name}×{n.name}, df = J d{p.var_name(r.wrt)}"
                    if not r.result.is_scalar else "a scalar")
        elif r.kind == "hessian":
            note = f"d²f = d{p.var_name(r.wrt)}ᵀ H d{p.var_name(r.wrt)}"
        elif r.kind == "vec":
            note = (f"vec(df) = J vec(d{p.var_name(r.wrt)}), vec stacking columns; "
                    "K(m,n) is the commutation matrix, K vec(M) = vec(Mᵀ)")
        else:
            v = p.var_name(r.direction.attr[0])
            note = (f"{p.var_name(r.wrt)} is a matrix, so the Hessian is a 4th-order tensor; this "
                    f"is the Hessian applied to a direction {v} of {p.var_name(r.wrt)}'s shape: "
                    f"d²f = tr({v}ᵀ H[{v}]) with d{p.var_name(r.wrt)} = {v}")
        lines.append(f"{_title(r, p)} = {body}")
        lines.append(f"  ({note})")
        if r.note:
            lines.append(f"  note: {r.note}")
    if all(r.checked for r in results):
        worst = max(r.max_error for r in results)
        lines.append(f"(checked against central finite differences: max relative error "
                     f"{worst:.1e})")
    for r in results:
        if not r.checked and getattr(r, "check_reason", ""):
            lines.append(f"(NOT checked: {r.check_reason}; treat this result with care)")
    return "\n".join(lines)


def linear_map_latex(results) -> str:
    lp = LatexPrinter()
    out = []
    for r in results:
        x = lp.var_name(r.wrt)
        if r.kind == "vec":
            lhs = (rf"\frac{{\partial \operatorname{{vec}} f}}"
                   rf"{{\partial (\operatorname{{vec}} {x})^{{\top}}}}")
        elif r.kind == "jacobian":
            lhs = rf"\frac{{\partial f}}{{\partial {x}^{{\top}}}}"
        elif r.kind == "hessian":
            lhs = rf"\frac{{\partial^2 f}}{{\partial {x}\,\partial {x}^{{\top}}}}"
        else:
            lhs = rf"H[{lp.var_name(r.direction.attr[0])}]"
        out.append(f"{lhs} = {lp.doc(r.result)}")
    return "\n".join(out)


def linear_map_json(results) -> dict:
    lp = LatexPrinter()
    first = results[0]
    key = "jacobian" if first.kind in ("jacobian", "vec") else "hessian"
    out = {
        "expression": first.typed.source,
        "variables": {name: {"kind": v.attr[1], "shape": E.shape_dims(v.shape)}
                      for name, v in first.typed.variables.items()},
        key: {},
    }
    for r in results:
        entry = {"latex": lp.doc(r.result), "shape": E.shape_dims(r.result.shape),
                 "checked": r.checked}
        if r.kind == "hvp":
            entry["hvp"] = to_text(r.result)
            entry["direction"] = r.direction.attr[0]
        elif r.kind == "vec":
            entry["vec_jacobian"] = UnicodePrinter().doc(r.result)  # ⊗ is not in the language
        else:
            entry[r.kind] = to_text(r.result)
        out[key][r.wrt] = entry
    return out


# ---------------------------------------------------------------- along a path


def along_text(result, latex: bool = False) -> str:
    p = LatexPrinter() if latex else UnicodePrinter()
    t = p.var_name(result.along)
    if latex:
        lines = [rf"\frac{{\mathrm{{d}}f}}{{\mathrm{{d}}{t}}} = {p.doc(result.total)}"]
        return "\n".join(lines)
    lines = [f"f = {p.doc(result.main)}"]
    for name, node in (result.definitions or {}).items():
        lines.append(f"{p.var_name(name)} = {p.doc(node)}")
    if result.links:
        names = [(link.of, link.name) for link in result.links]
        factors = "".join(f"(∂{p.var_name(a) if a != 'f' else 'f'}/∂{p.var_name(b)}"
                          + ("ᵀ)" if not _is_scalar_link(result, b) else ")")
                          for a, b in names)
        values = "".join(f"({p.doc(link.jacobian)})" for link in result.links)
        lines.append(f"chain rule: df/d{t} = {factors}")
        lines.append(f"          = {values}")
    lines.append(f"df/d{t} = {p.doc(result.total)}")
    if result.checked:
        lines.append(f"(checked against central finite differences: max relative error "
                     f"{result.max_error:.1e})")
    return "\n".join(lines)


def _is_scalar_link(result, name: str) -> bool:
    for link in result.links:
        if link.name == name:
            return link.jacobian.shape[1] is E.ONE
    return True


def along_json(result) -> dict:
    return {
        "expression": result.typed.source,
        "along": result.along,
        "chain": [{"of": link.of, "by": link.name, "jacobian": to_text(link.jacobian)}
                  for link in result.links],
        "derivative": to_text(result.total),
        "latex": LatexPrinter().doc(result.total),
        "checked": result.checked,
    }
