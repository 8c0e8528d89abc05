"""What `matdiff parse` and `matdiff grad` show, as plain data and text (no Rich here):
shared intermediates named in a `where` block, the trace form, the derivation steps."""

from __future__ import annotations

from dataclasses import dataclass

from .. import expr as E
from ..simplify import simplify
from .latex import LatexPrinter
from .unicode import UnicodePrinter

_LEAVES = ("var", "const", "ones", "eye", "zero", "dvar")


@dataclass
class Named:
    name: str
    node: E.Node


def _trivial(n: E.Node) -> bool:
    if n.op in _LEAVES:
        return True
    if n.op in ("transpose", "inv") and n.args[0].op in _LEAVES:
        return True
    return n.op == "scale" and n.args[0].op == "const" and _trivial(n.args[1])


def shared_intermediates(roots: list[E.Node], adjoints: dict[E.Node, E.Node] | None = None,
                         wrt_label: str = "f") -> list[Named]:
    """Subexpressions a person would name: those used more than once, and the pre-activations
    (products fed to an element-wise function) of a network. Named a₁, h₁, … by their role,
    or ∂f/∂a₂ when the subexpression is the gradient with respect to a named intermediate."""
    parents: dict[E.Node, int] = {}
    order: list[E.Node] = []
    seen: set[E.Node] = set()
    for root in roots:
        for n in E.postorder(root):
            if n not in seen:
                seen.add(n)
                order.append(n)
                for a in set(n.args):
                    parents[a] = parents.get(a, 0) + 1
    activated = {p.args[0] for p in order if p.op in ("fn", "softmax")}
    chosen: list[E.Node] = []
    for n in order:
        if _trivial(n) or n.op in ("transpose",) or n.is_scalar:
            continue
        pre_activation = n in activated and (
            n.op == "matmul" or (n.op == "add" and any(t.op == "matmul" for t in n.args)))
        if parents.get(n, 0) >= 2 or pre_activation:
            chosen.append(n)
    if not chosen:
        return []
    has_layers = any(n.op == "matmul" or n in activated for n in chosen)
    shared = any(parents.get(n, 0) >= 2 for n in chosen)
    if not has_layers or (len(chosen) < 2 and not shared):
        return []  # one name used once only adds a line
    counters: dict[str, int] = {}
    names: dict[E.Node, str] = {}
    by_adjoint = {g: p for p, g in (adjoints or {}).items()}
    out: list[Named] = []
    for n in chosen:
        primal = by_adjoint.get(n)
        if primal is not None and primal in names:
            name = f"∂{wrt_label}/∂{names[primal]}"
        else:
            letter = _letter(n)
            counters[letter] = counters.get(letter, 0) + 1
            name = f"{letter}{counters[letter]}"
        names[n] = name
        out.append(Named(name, n))
    return out


def _letter(n: E.Node) -> str:
    if n.op == "matmul" or (n.op == "add" and any(t.op == "matmul" for t in n.args)):
        return "a"
    if n.op == "fn":
        return "h"
    if n.op == "softmax":
        return "s"
    return "t"


def unicode_with_names(nodes: list[E.Node], named: list[Named]) -> tuple[list[str], list[str]]:
    """The nodes and the where-block definitions, each printed with the names in force."""
    mapping = {x.node: _pretty_name(x.name) for x in named}
    lines = []
    for x in named:
        # a definition may use the names defined before it, never its own
        p = UnicodePrinter({k: v for k, v in mapping.items() if k is not x.node})
        lines.append(f"{_pretty_name(x.name)} = {p.doc(x.node)}")
    p = UnicodePrinter(mapping)
    return [p.doc(n) for n in nodes], lines


def _pretty_name(name: str) -> str:
    sub = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    return name.translate(sub)


# ---------------------------------------------------------------- trace form


_ATOMIC_OPS = ("var", "fn", "tr", "det", "logdet", "sum", "softmax", "logsumexp", "diag_embed",
               "diag_extract", "norm1", "norm2", "ones", "eye", "zero", "const", "dvar")


def is_atomic(node: E.Node, names=None) -> bool:
    """Printed as one unit (a name, a call): can take a ᵀ or a factor without brackets."""
    return node.op in _ATOMIC_OPS or (names is not None and node in names)


def differential_text(g: str, var: E.Node, pretty_var: str, atomic: bool) -> str:
    """df = tr(Gᵀ dX), gᵀdx or g·dx, with G already printed."""
    kind = var.kind
    if kind == "scalar":
        return f"df = {g}·d{pretty_var}" if atomic else f"df = ({g})·d{pretty_var}"
    wrapped = g if atomic else f"({g})"
    if var.attr[1] in ("symmetric", "spd"):  # G is symmetric: df = tr(G dX)
        return f"df = tr({g} d{pretty_var})" if " " not in g else f"df = tr(({g}) d{pretty_var})"
    if kind == "vector":
        return f"df = {wrapped}ᵀ d{pretty_var}"
    return f"df = tr({wrapped}ᵀ d{pretty_var})"


def _has_top_level_sum(text: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        depth += ch in "(["
        depth -= ch in ")]"
        if depth == 0 and ch in "+−" and i > 0 and text[i - 1] == " ":
            return True
    return False


def differential_latex(g: str, var: E.Node, var_tex: str) -> str:
    d = rf"\mathrm{{d}}{var_tex}"
    if var.kind == "scalar":
        return rf"\mathrm{{d}}f = \left({g}\right) {d}"
    if var.kind == "vector":
        return rf"\mathrm{{d}}f = \left({g}\right)^{{\top}} {d}"
    return rf"\mathrm{{d}}f = \operatorname{{tr}}\left(\left({g}\right)^{{\top}} {d}\right)"


# ---------------------------------------------------------------- steps


def pairing_text(g: E.Node, linear: E.Node, printer: UnicodePrinter) -> str:
    """⟨G, L⟩ as a person writes it: tr(Gᵀ L), gᵀl, g·l, or just tr(L) when G = I."""
    g = simplify(g)
    lt = printer.doc(linear)
    lw = f"({lt})" if _has_top_level_sum(lt) else lt
    gt = printer.doc(g)
    if not is_atomic(g):
        gt = f"({gt})"
    if g.is_scalar:
        return lt if E.is_const(g, 1) else f"{gt}·{lw}"
    if g.op == "eye":
        return f"tr({lt})"
    if g.shape[1] is E.ONE:
        return f"{gt}ᵀ{lw}"
    return f"tr({gt}ᵀ {lw})"


def derivation_steps(result) -> list[tuple[str, str]]:
    """(rule, line) pairs: the differential rule by rule, then the trace tricks, then G."""
    p = UnicodePrinter()
    steps: list[tuple[str, str]] = []
    steps.append(("the function", f"f = {p.doc(result.f)}"))
    for label, node, d in result.diff_steps:
        if E.is_zero(d):
            continue
        steps.append((label, f"d({p.doc(node)}) = {p.doc(d)}"))
    steps.append(("put the differential in a trace (a scalar is its own trace)",
                  f"df = {p.doc(result.df)}"))
    for step in result.peel_steps:
        before = pairing_text(step.g, step.linear, p)
        after = " + ".join(pairing_text(g, lin, p) for lin, g in step.results)
        if before != after:  # e.g. tr(L) = ⟨I, L⟩ changes nothing a reader sees
            steps.append((step.label, f"{before} = {after}"))
    for name in result.wrt:
        v = result.variable(name)
        g = p.doc(result.unconstrained[name])
        steps.append((f"read off the gradient: df = tr(Gᵀ d{name}) ⇒ ∂f/∂{name} = G",
                      f"∂f/∂{name} = {g}"))
        if v.attr[1] in ("symmetric", "spd"):
            steps.append((f"{name} is {v.attr[1]}: take the symmetric part (G + Gᵀ)/2 "
                          "(matdiff's convention; the Matrix Cookbook's 2G − diag(G) differs)",
                          f"∂f/∂{name} = {p.doc(result.gradients[name])}"))
    return steps


def latex_steps(result) -> str:
    """The derivation as an align* block a teacher can paste."""
    p = LatexPrinter()
    lines = [rf"f &= {p.doc(result.f)}"]
    lines.append(rf"\mathrm{{d}}f &= {p.doc(result.df)}")
    for name in result.wrt:
        v = result.variable(name)
        g = p.doc(result.gradients[name])
        lines.append(differential_latex(g, v, p.var_name(name)).replace(" = ", " &= ", 1))
        lines.append(rf"\frac{{\partial f}}{{\partial {p.var_name(name)}}} &= {g}")
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"
