"""Unicode math for people: Xᵀ, X⁻¹, ⊙, σ(·), ‖x‖, 1ᵀx, juxtaposed products."""

from __future__ import annotations

import re

from ..ir import expr as E
from .base import ATOM, POSTFIX, PRODUCT, Printer

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SIMPLE = re.compile(r"^[A-Za-zα-ωΑ-Ω][₀-₉]*[ᵀ⁻¹]*$|^\(.*\)[ᵀ⁻¹]*$")


class UnicodePrinter(Printer):
    notation = "unicode"
    times = ""
    minus = "−"
    minus_sep = " − "
    hadamard_sep = " ⊙ "
    hdiv_sep = " ⊘ "
    epow_sep = "^∘"
    transpose_mark = "ᵀ"

    def var_name(self, name: str) -> str:
        m = re.fullmatch(r"([A-Za-zα-ωΑ-Ω]+)_?(\d+)", name)
        return m.group(1) + m.group(2).translate(_SUB) if m else name

    def join_product(self, parts):
        out = parts[0]
        for left, right in zip(parts, parts[1:]):
            tight = _SIMPLE.match(left) and _SIMPLE.match(right)
            out += ("" if tight else " ") + right
        return out

    def scale_text(self, coef, x):
        c = self.at(coef, PRODUCT)
        last = coef.args[1] if coef.op == "scale" else coef
        if last.op in ("sum", "matmul"):  # (1ᵀy)·s, 2(xᵀAx)·B
            c = self.paren(c) if coef is last else \
                f"{self.at(coef.args[0], PRODUCT)}{self.paren(self.doc(last))}"
        body = self.scaled(x)
        if coef.op == "const":
            if "/" in c:  # (2/3)x, not 2/3x (which reads 2/(3x))
                return f"({c}){body}"
            if "e" in c:  # 1e-300·xᵀx: the exponent's digits never run into the operand
                return f"{c}·{body}"
            return c + body if not body[:1].isdigit() else f"{c}·{body}"
        return f"{c}·{body}"

    def power_text(self, base, expo):
        if base[-1:] in "ᵀ¹":
            base = self.paren(base)
        if expo.op == "const" and expo.attr.denominator == 1:
            return base + str(expo.attr.numerator).translate(_SUP)
        return f"{base}^{self.at(expo, POSTFIX)}"

    def p_transpose(self, node):
        inner = node.args[0]
        if inner.op == "inv":
            return f"{self.at(inner.args[0], POSTFIX)}⁻ᵀ", POSTFIX
        return super().p_transpose(node)







    def p_zero(self, node):
        return "0", ATOM

    def p_ones(self, node):
        if node.kind == "matrix":  # 1 alone would read as the vector of ones
            return "1 1ᵀ", PRODUCT
        return ("1ᵀ" if node.kind == "row vector" else "1"), ATOM

    def sum_term(self, term):
        # 1 − tanh(X)^∘2: in a sum the other terms give the ones their shape
        return "1" if term.op == "ones" else super().sum_term(term)

    def p_eye(self, node):
        return "I", ATOM


def to_unicode(node: E.Node, names=None) -> str:
    return UnicodePrinter(names).doc(node)
