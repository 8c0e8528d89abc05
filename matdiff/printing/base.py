"""One printer for every notation. Precedence and parenthesisation are decided here, once;
the notations (language text, Unicode, LaTeX) differ only in spellings, given by subclasses.

Levels, loosest first, as in the grammar: sum < product < unary minus < power < postfix < atom.
The right operand of a product-level operator must bind tighter than a product (products are
left-associative), the base of a power or postfix must bind tighter than a power."""

from __future__ import annotations

from fractions import Fraction

from ..ir import expr as E
from ..ops import OPERATORS
from ..ops.registry import ATOM, POSTFIX, POWER, PRODUCT, SUM, UNARY  # noqa: F401


def negative_part(node: E.Node) -> E.Node | None:
    """If node is −(something) by its leading coefficient, that something; else None."""
    if node.op == "const" and node.attr < 0:
        return E.const(-node.attr)
    if node.op == "scale":
        inner = negative_part(node.args[0])
        if inner is not None:
            return E.scale(inner, node.args[1])
    return None


LONG = 16  # a number printed in more characters than this is written in scientific form


def format_number(value) -> str:
    """The shortest faithful spelling in the expression language: 3, 0.25, 2/3, and 1e-300
    or 1.5e308 (not 300 zeros) for numbers whose plain decimal would be long. A ratio of
    long integers is written p/q with each part compact when that is exact (2/3e300), else
    as the nearest double (the only place a printed number can be inexact)."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return _integer(value.numerator)
        d = value.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:  # a finite decimal
            text = _decimal(value)
            if len(text) <= LONG:
                return text
            sci = _scientific(value)
            return sci if sci is not None else _float(value)
        num, den = _exact_integer(abs(value.numerator)), _exact_integer(value.denominator)
        if num is not None and den is not None:
            return ("-" if value < 0 else "") + f"{num}/{den}"
        return _float(value)
    return _float(value)


def _integer(n: int) -> str:
    text = _exact_integer(n)
    return text if text is not None else _float(Fraction(n))


def _exact_integer(n: int) -> str | None:
    text = str(n)
    if len(text.lstrip("-")) <= LONG:
        return text
    return _scientific(Fraction(n))


def _scientific(value: Fraction) -> str | None:
    """m e k with m the significant digits (at most 17 of them), when that is exact."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 40
        x = (Decimal(value.numerator) / Decimal(value.denominator)).normalize()
    if Fraction(x) != value:
        return None
    sign, digits, exponent = x.as_tuple()
    if len(digits) > 17:
        return None
    mantissa = "".join(map(str, digits))
    point = len(digits) - 1
    exponent += point
    if point:
        mantissa = mantissa[0] + "." + mantissa[1:]
    return f"{'-' if sign else ''}{mantissa}e{exponent}"


def _float(value) -> str:
    """repr of the nearest double, in the language's spelling (1e308, not 1e+308)."""
    text = repr(float(value))
    return text.replace("e+", "e")


def _decimal(value: Fraction) -> str:
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class Printer:
    """Subclasses set the spellings; `doc(node)` returns the printed text."""

    minus = "-"
    plus_sep = " + "
    minus_sep = " - "

    def __init__(self, names: dict[E.Node, str] | None = None):
        self.memo: dict[E.Node, tuple[str, int]] = {}
        self.names = names or {}  # nodes printed by a given name (shared intermediates)

    def doc(self, node: E.Node) -> str:
        return self.show(node)[0]

    notation = "text"  # which field of an operator's Spelling this printer reads

    def show(self, node: E.Node) -> tuple[str, int]:
        hit = self.memo.get(node)
        if hit is None:
            name = self.names.get(node)
            hit = (name, ATOM) if name is not None else self.spell(node)
            self.memo[node] = hit
        return hit

    def spell(self, node: E.Node) -> tuple[str, int]:
        """The notation's own grammar (sums, products, powers, leaves) is a p_<op> method;
        every other operator is spelled as it declares (matdiff/ops: a call name or a
        special form such as ‖x‖)."""
        method = getattr(self, "p_" + node.op, None)
        if method is not None:
            return method(node)
        op = OPERATORS.get(node.op)
        spelling = getattr(op.spelling, self.notation, None) if op is not None else None
        if spelling is None:
            raise TypeError(f"no {self.notation} spelling for '{node.op}'")
        if isinstance(spelling, str):
            return self.call(spelling, *node.args)
        return spelling(self, node)

    def at(self, node: E.Node, level: int) -> str:
        """node printed so that it binds at least as tightly as `level`."""
        text, prec = self.show(node)
        return text if prec >= level else self.paren(text)

    def paren(self, text: str) -> str:
        return f"({text})"

    # ---- sums
    def p_add(self, node):
        parts = []
        for i, term in enumerate(node.args):
            positive = negative_part(term)
            if i == 0:
                parts.append(self.sum_term(term) if positive is None else
                             self.minus + self.sum_term(positive))
            elif positive is None:
                parts.append(self.plus_sep + self.sum_term(term))
            else:
                parts.append(self.minus_sep + self.sum_term(positive))
        return "".join(parts), SUM

    def sum_term(self, term: E.Node) -> str:
        return self.at(term, PRODUCT)

    # ---- products and scalings
    def p_scale(self, node):
        coef, x = node.args
        positive = negative_part(node)
        if positive is not None:
            text, prec = self.show(positive)
            if prec < PRODUCT:
                text = self.paren(text)
            return self.minus + text, min(UNARY, max(prec, PRODUCT))
        if coef.op == "pow" and coef.args[1].op == "const" and coef.args[1].attr < 0 and \
                coef.args[1].attr.denominator == 1:  # x/D, and x/D² for D⁻²·x
            k = -coef.args[1].attr
            den = coef.args[0] if k == 1 else E.power(coef.args[0], E.const(k))
            if x.op == "ones":  # (1/n)·1, not 1/n: the numerator would read as a number
                fraction = self.divide("1", self.at(den, POWER))
                return f"{self.paren(fraction)}{self.times or '·'}{self.at(x, UNARY)}", PRODUCT
            return self.divide(self.at(x, PRODUCT), self.at(den, POWER)), PRODUCT
        return self.scale_text(coef, x), PRODUCT

    def scale_text(self, coef, x) -> str:
        return f"{self.at(coef, PRODUCT)}{self.times}{self.scaled(x)}"

    def scaled(self, x: E.Node) -> str:
        """The scaled operand: a scalar factor commutes with products, so c*A*B needs no
        brackets around A*B (it reads (c*A)*B, the same value)."""
        return self.at(x, PRODUCT if x.op in ("matmul", "hadamard", "hdiv") else UNARY)

    def divide(self, num: str, den: str) -> str:
        return f"{num}/{den}"

    def first_factor(self, node: E.Node, parent_op: str) -> str:
        """The left operand of a product-level operator. Mixed operators get brackets even
        where left-associativity makes them unnecessary: (a ⊙ b)c, not a ⊙ bc."""
        text, prec = self.show(node)
        if prec < PRODUCT or (prec == PRODUCT and node.op not in (parent_op, "scale")):
            return self.paren(text)
        return text

    def p_matmul(self, node):
        parts = [self.first_factor(node.args[0], "matmul")]
        parts += [self.at(f, UNARY) for f in node.args[1:]]
        return self.join_product(parts), PRODUCT

    def join_product(self, parts: list[str]) -> str:
        return self.times.join(parts)

    def p_hadamard(self, node):
        parts = [self.first_factor(node.args[0], "hadamard")]
        parts += [self.at(f, UNARY) for f in node.args[1:]]
        return self.hadamard_sep.join(parts), PRODUCT

    def p_hdiv(self, node):
        a, b = node.args
        return f"{self.first_factor(a, 'hdiv')}{self.hdiv_sep}{self.at(b, UNARY)}", PRODUCT

    # ---- powers and postfix
    def p_pow(self, node):
        base, expo = node.args
        return self.power_text(self.at(base, POSTFIX), expo), POWER

    def power_text(self, base: str, expo: E.Node) -> str:
        return f"{base}^{self.at(expo, POWER)}"

    def p_epow(self, node):
        base, expo = node.args
        return f"{self.at(base, POSTFIX)}{self.epow_sep}{self.at(expo, POWER)}", POWER

    def p_matpow(self, node):
        base = node.args[0]
        if base.op == "inv":  # (X⁻¹)³ is X⁻³
            return self.power_text(self.at(base.args[0], POSTFIX), E.const(-node.attr)), POWER
        return self.power_text(self.at(base, POSTFIX), E.const(node.attr)), POWER

    def p_transpose(self, node):
        return f"{self.at(node.args[0], POSTFIX)}{self.transpose_mark}", POSTFIX

    def p_dnode(self, node):  # d(·) marker of the differential: invisible in print
        return self.show(node.args[0])

    # ---- leaves
    def p_var(self, node):
        return self.var_name(node.attr[0]), ATOM

    def var_name(self, name: str) -> str:
        return name

    def p_dvar(self, node):
        return f"d{self.var_name(node.attr)}", ATOM

    def p_const(self, node):
        value = node.attr
        if value < 0:
            return self.minus + self.number(-value), UNARY
        text = self.number(value)
        compound = "/" in text or "frac" in text or "cdot" in text
        return text, (PRODUCT if compound else ATOM)

    def number(self, value) -> str:
        return format_number(value)

    # ---- calls
    def call(self, name: str, *args: E.Node) -> tuple[str, int]:
        inner = ", ".join(self.doc(a) for a in args)
        return f"{self.func_name(name)}({inner})", ATOM

    def func_name(self, name: str) -> str:
        return name
