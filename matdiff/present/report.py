"""What `matdiff parse` and `matdiff grad` show, as plain data and text (no Rich here):
shared intermediates named in a `where` block, the trace form, the derivation steps."""

from __future__ import annotations

from dataclasses import dataclass

from ..derive.simplify import simplify
from ..ir import expr as E
from ..printing.unicode import UnicodePrinter

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


# operators whose argument a network names as a pre-activation (a₁ = W₁x + b₁)
ACTIVATIONS = ("fn", "softmax", "softmax_axis", "log_softmax_axis", "logsumexp_axis")


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
    activated = {p.args[0] for p in order if p.op in ACTIVATIONS}
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
    if n.op in ("softmax", "softmax_axis"):
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


def latex_with_names(nodes: list[E.Node], named: list[Named]) -> tuple[list[str], list[str]]:
    """unicode_with_names in LaTeX: a₁ is a_{1}, ∂f/∂a₂ is \frac{\\partial f}{\\partial a_{2}}."""
    from ..printing.latex import LatexPrinter, latex_name

    def tex(name: str) -> str:
        if name.startswith("∂f/∂"):
            return rf"\frac{{\partial f}}{{\partial {latex_name(name[4:])}}}"
        return latex_name(name)

    mapping = {x.node: tex(x.name) for x in named}
    lines = []
    for x in named:
        p = LatexPrinter({k: v for k, v in mapping.items() if k is not x.node})
        lines.append(f"{tex(x.name)} = {p.doc(x.node)}")
    p = LatexPrinter(mapping)
    return [p.doc(n) for n in nodes], lines


def _pretty_name(name: str) -> str:
    sub = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    return name.translate(sub)


# ---------------------------------------------------------------- trace form


_ATOMIC_OPS = ("var", "fn", "tr", "det", "logdet", "sum", "softmax", "logsumexp", "diag_embed",
               "diag_extract", "norm1", "norm2", "ones", "eye", "zero", "const", "dvar",
               "mean", "size", "softmax_axis", "logsumexp_axis", "log_softmax_axis")


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
    """(rule, line) pairs of the trace method, one rule per step (present/steps.py); the
    other methods are printing/methods.py."""
    from .steps import trace_method

    return trace_method(result).text_lines()


def latex_steps(result) -> str:
    """The derivation as an align* block a teacher can paste: every step with its rule."""
    from .steps import trace_method

    return trace_method(result).latex_block()
