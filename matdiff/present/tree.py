"""`matdiff parse`: the typed tree, every node with its kind and shape (plain or Rich)."""

from __future__ import annotations

from ..ir import expr as E
from ..printing.unicode import UnicodePrinter


def label(node: E.Node, printer: UnicodePrinter) -> str:
    shape = E.shape_text(node.shape)
    if node.op == "var":
        kind = node.attr[1]  # "vector of size n" and "scalar" say the kind already
        return f"{node.attr[0]}  : {shape}" if kind in ("scalar", "vector") else \
            f"{node.attr[0]}  {kind}  : {shape}"
    if node.op == "fn":
        what = f"element-wise {node.attr}"
    else:
        from ..ops import OPERATORS

        op = OPERATORS.get(node.op)
        what = op.label if op is not None else node.op
    if node.op == "const":
        what = f"number {printer.doc(node)}"
    if node.op == "matpow":
        what = f"matrix power {node.attr}"
    text = printer.doc(node)
    if len(text) > 60:
        text = text[:57] + "…"
    return f"{what}  {text}  : {shape}"


def plain_tree(typed) -> str:
    printer = UnicodePrinter()
    lines: list[str] = []
    stack = [(typed.root, "", True, True)]
    while stack:
        node, prefix, last, root = stack.pop()
        branch = "" if root else ("└── " if last else "├── ")
        lines.append(prefix + branch + label(node, printer))
        child_prefix = prefix + ("" if root else ("    " if last else "│   "))
        for i, a in reversed(list(enumerate(node.args))):
            stack.append((a, child_prefix, i == len(node.args) - 1, False))
    return "\n".join(lines)


def rich_tree(typed):
    from rich.text import Text
    from rich.tree import Tree

    printer = UnicodePrinter()
    top = Tree(Text(label(typed.root, printer)))
    stack = [(typed.root, top)]
    while stack:
        node, branch = stack.pop()
        for a in node.args:
            child = branch.add(Text(label(a, printer)))
            stack.append((a, child))
    return top


def variables_table(typed) -> str:
    rows = [("variable", "kind", "shape")]
    context = getattr(typed, "context_kinds", {}) or {}
    for name, v in typed.variables.items():
        kind = v.attr[1] + (" (from context)" if name in context else "")
        rows.append((name, kind, "×".join(E.shape_dims(v.shape)) or "1"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
