"""LaTeX fragments: \\operatorname{tr}, ^{\\top}, \\odot, \\frac{∂f}{∂X}."""

from __future__ import annotations

import re

from ..ir import expr as E
from ..language.shapes import GREEK_NAMES
from .base import ATOM, POSTFIX, PRODUCT, Printer, format_number

_GREEK_CHARS = dict(zip("αβγδεζηθικλμνξοπρςστυφχψω",
                        ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
                         "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho",
                         "varsigma", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"]))
# capital Greek: LaTeX has macros only for the letters that differ from Latin ones; the others
# are the Latin letter set upright (Α is \mathrm{A}), so pdflatex never meets a raw Σ
_CAPITAL_GREEK = {
    "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda", "Ξ": r"\Xi",
    "Π": r"\Pi", "Σ": r"\Sigma", "Υ": r"\Upsilon", "Φ": r"\Phi", "Ψ": r"\Psi",
    "Ω": r"\Omega",
    **{g: rf"\mathrm{{{latin}}}" for g, latin in zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧ", "ABEZHIKMNOPTX")},
}
_SUBSCRIPT_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


def _greek_macro(word: str) -> str:
    return r"o" if word == "omicron" else "\\" + word  # LaTeX has no \omicron


def _escaped(text: str) -> str:
    """Characters of a name that are special in TeX (only _ can occur in a name)."""
    return text.replace("_", r"\_")


def latex_name(name: str) -> str:
    name = name.translate(_SUBSCRIPT_DIGITS)  # x₁ is x1: printed x_{1}
    m = re.fullmatch(r"(.+?)_?(\d+)", name)
    base, sub = (m.group(1), m.group(2)) if m else (name, "")
    if base in GREEK_NAMES:
        base = _greek_macro(base)
    elif base in _GREEK_CHARS:
        base = _greek_macro(_GREEK_CHARS[base])
    elif base in _CAPITAL_GREEK:
        base = _CAPITAL_GREEK[base]
    elif len(base) > 1 or base == "_":
        base = rf"\mathit{{{_escaped(base)}}}"
    return base + (f"_{{{sub}}}" if sub else "")


def latex_number(text: str) -> str:
    r"""A number printed in the language (format_number) in LaTeX: \frac{2}{3}, 10^{-300},
    1.5 \cdot 10^{308}."""
    sign = ""
    if text.startswith("-"):
        sign, text = "-", text[1:]
    if "/" in text:
        num, den = text.split("/")
        return sign + rf"\frac{{{latex_number(num)}}}{{{latex_number(den)}}}"
    if "e" in text and text[0].isdigit():
        mantissa, exponent = text.split("e")
        power = f"10^{{{int(exponent)}}}"
        return sign + (power if mantissa == "1" else rf"{mantissa} \cdot {power}")
    return sign + text


class LatexPrinter(Printer):
    notation = "latex"
    times = " "
    hadamard_sep = r" \odot "
    hdiv_sep = r" \oslash "
    transpose_mark = r"^{\top}"



    def paren(self, text):
        return rf"\left({text}\right)"

    def var_name(self, name):
        return latex_name(name)

    def p_dvar(self, node):
        return rf"\mathrm{{d}}{latex_name(node.attr)}", ATOM

    def number(self, value):
        return latex_number(format_number(value))

    def scale_text(self, coef, x):
        c = self.at(coef, PRODUCT)
        last = coef.args[1] if coef.op == "scale" else coef
        if last.op in ("sum", "matmul"):  # (1ᵀy)·s, as the Unicode printer has it
            c = self.paren(c) if coef is last else \
                f"{self.at(coef.args[0], PRODUCT)} {self.paren(self.doc(last))}"
            return rf"{c} \cdot {self.scaled(x)}"
        if coef.op == "const" and r"\cdot" in c:  # 1.5 \cdot 10^{8} \cdot x
            return rf"{c} \cdot {self.scaled(x)}"
        return f"{c} {self.scaled(x)}"

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
        text = self.at(inner, POSTFIX)
        if text.endswith("}") and "^" in text:  # no double superscripts: {W^{+}}^{\top}
            text = "{" + text + "}"
        return rf"{text}{self.transpose_mark}", POSTFIX


    def call(self, name, *args):
        inner = ", ".join(self.doc(a) for a in args)
        return rf"{name}\left({inner}\right)", ATOM












    def p_zero(self, node):
        return "0", ATOM

    def p_ones(self, node):
        if node.kind == "matrix":  # \mathbf{1} alone reads back as the vector of ones
            return r"\mathbf{1}\mathbf{1}^{\top}", PRODUCT
        return (r"\mathbf{1}^{\top}" if node.kind == "row vector" else r"\mathbf{1}"), ATOM

    def p_eye(self, node):
        return "I", ATOM




def to_latex(node: E.Node, names=None) -> str:
    return LatexPrinter(names).doc(node)
