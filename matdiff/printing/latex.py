"""LaTeX fragments: \\operatorname{tr}, ^{\\top}, \\odot, \\frac{∂f}{∂X}."""

from __future__ import annotations

import re
from fractions import Fraction

from .. import expr as E
from ..ops import ELEMENTWISE
from ..shapes import GREEK_NAMES
from .base import ATOM, POSTFIX, PRODUCT, Printer

_GREEK_CHARS = dict(zip("αβγδεζηθικλμνξοπρςστυφχψω",
                        ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
                         "iota", "kappa", "lambda", "mu", "nu", "xi", "o", "pi", "rho",
                         "varsigma", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"]))


def latex_name(name: str) -> str:
    m = re.fullmatch(r"(.+?)_?(\d+)", name)
    base, sub = (m.group(1), m.group(2)) if m else (name, "")
    if base in GREEK_NAMES:
        base = "\\" + base
    elif base in _GREEK_CHARS:
        base = "\\" + _GREEK_CHARS[base]
    elif len(base) > 1:
        base = rf"\mathit{{{base}}}"
    return base + (f"_{{{sub}}}" if sub else "")


class LatexPrinter(Printer):
    times = " "
    hadamard_sep = r" \odot "
    hdiv_sep = r" \oslash "
    transpose_mark = r"^{\top}"
    kron_sep = r" \otimes "

    def p_commutation(self, node):
        rows, cols = node.attr
        return rf"K_{{{rows.name},{cols.name}}}", ATOM

    def p_vec(self, node):
        return self.call(r"\operatorname{vec}", node.args[0])

    def paren(self, text):
        return rf"\left({text}\right)"

    def var_name(self, name):
        return latex_name(name)

    def p_dvar(self, node):
        return rf"\mathrm{{d}}{latex_name(node.attr)}", ATOM

    def number(self, value):
        if isinstance(value, Fraction) and value.denominator != 1:
            return rf"\frac{{{value.numerator}}}{{{value.denominator}}}"
        return super().number(value)

    def scale_text(self, coef, x):
        return f"{self.at(coef, PRODUCT)} {self.scaled(x)}"

    def divide(self, num, den):
        return rf"\frac{{{num}}}{{{den}}}"

    def power_text(self, base, expo):
        if base.endswith("}") and "^" in base:  # no double superscripts: {X^{-1}}^{2}
            base = "{" + base + "}"
        return f"{base}^{{{self.doc(expo)}}}"

    def p_epow(self, node):
        base, expo = node.args
        text = self.at(base, POSTFIX)
        if "^" in text:
            text = "{" + text + "}"
        return rf"{text}^{{\circ {self.doc(expo)}}}", POSTFIX

    def p_transpose(self, node):
        inner = node.args[0]
        if inner.op == "inv":
            return rf"{self.at(inner.args[0], POSTFIX)}^{{-\top}}", POSTFIX
        return super().p_transpose(node)

    def p_inv(self, node):
        return rf"{self.at(node.args[0], POSTFIX)}^{{-1}}", POSTFIX

    def call(self, name, *args):
        inner = ", ".join(self.doc(a) for a in args)
        return rf"{name}\left({inner}\right)", ATOM

    def p_fn(self, node):
        entry = ELEMENTWISE[node.attr]
        x = node.args[0]
        if node.attr == "abs":
            return rf"\left|{self.doc(x)}\right|", ATOM
        if node.attr == "sqrt":
            return rf"\sqrt{{{self.doc(x)}}}", ATOM
        name = entry.latex or "\\" + entry.name
        if entry.latex is None and entry.name not in ("exp", "log", "sin", "cos", "tan",
                                                      "tanh"):
            name = rf"\operatorname{{{entry.name}}}"
        return self.call(name, x)

    def p_tr(self, node):
        return self.call(r"\operatorname{tr}", node.args[0])

    def p_det(self, node):
        return self.call(r"\det", node.args[0])

    def p_logdet(self, node):
        return self.call(r"\log\det", node.args[0])

    def p_sum(self, node):
        x = node.args[0]
        if x.kind == "vector":
            return rf"\mathbf{{1}}^{{\top}} {self.at(x, POSTFIX)}", PRODUCT
        return self.call(r"\operatorname{sum}", x)

    def p_norm2(self, node):
        x = node.args[0]
        sub = "_F" if x.kind == "matrix" else ""
        return rf"\left\|{self.doc(x)}\right\|{sub}", ATOM

    def p_norm1(self, node):
        return rf"\left\|{self.doc(node.args[0])}\right\|_1", ATOM

    def p_logsumexp(self, node):
        return self.call(r"\operatorname{logsumexp}", node.args[0])

    def p_softmax(self, node):
        return self.call(r"\operatorname{softmax}", node.args[0])

    def p_diag_embed(self, node):
        return self.call(r"\operatorname{diag}", node.args[0])

    p_diag_extract = p_diag_embed

    def p_zero(self, node):
        return "0", ATOM

    def p_ones(self, node):
        return (r"\mathbf{1}^{\top}" if node.kind == "row vector" else r"\mathbf{1}"), ATOM

    def p_eye(self, node):
        return "I", ATOM


def to_latex(node: E.Node, names=None) -> str:
    return LatexPrinter(names).doc(node)
