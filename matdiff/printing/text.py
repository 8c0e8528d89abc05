"""The expression language (SPEC §1), ASCII: what `parse` reads back to the same value."""

from __future__ import annotations

from ..ir import expr as E
from .base import ATOM, Printer


class TextPrinter(Printer):
    times = "*"
    hadamard_sep = ".*"
    hdiv_sep = "./"
    epow_sep = ".^"
    transpose_mark = "'"


    def p_zero(self, node):
        return self._fill(node, "0")

    def p_ones(self, node):
        return self._fill(node, "1")

    def _fill(self, node, value: str):
        kind = node.kind
        if kind == "vector":
            return f"vector({value})", ATOM
        if kind == "row vector":
            return f"vector({value})'", ATOM
        return f"matrix({value})", ATOM

    def p_eye(self, node):
        return "eye", ATOM


def to_text(node: E.Node) -> str:
    return TextPrinter().doc(node)


E.set_printer(to_text)
