"""The element-wise function table: one entry per function, shared by the differential,
the printers, the numerical evaluator and the code generator.

`derivative(x)` returns f'(x) as an IR node (applied entry-wise); derived functions such as
σ' carry `definition(x)`, their meaning in the expression language, so that every printed
gradient parses back with the same value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from . import expr as E

Builder = Callable[[E.Node], E.Node]


@dataclass(frozen=True)
class Elementwise:
    name: str
    numpy: str  # expression template in the argument `{x}`; np = numpy, sp = scipy.special
    derivative: Builder | None  # f'(x); None when given through `definition`
    domain: str = "any"  # any | positive | unit (|x| < 1)
    unicode: str | None = None
    latex: str | None = None
    definition: Builder | None = None  # for derived functions: their spelling in the language


def _one_minus(x: E.Node) -> E.Node:
    return E.sub(E.ones(x.shape), x)


def _recip(x: E.Node) -> E.Node:
    return E.hdiv(E.ones(x.shape), x)


def _sq(x: E.Node) -> E.Node:
    return E.epow(x, E.const(2))


def _f(name: str) -> Builder:
    return lambda x: E.fn(name, x)


ELEMENTWISE: dict[str, Elementwise] = {e.name: e for e in [
    Elementwise("exp", "np.exp({x})", _f("exp")),
    Elementwise("log", "np.log({x})", _recip, domain="positive"),
    Elementwise("sqrt", "np.sqrt({x})",
                lambda x: E.scale(E.const(Fraction(1, 2)), _recip(E.fn("sqrt", x))),
                domain="positive", latex=r"\sqrt"),
    Elementwise("sin", "np.sin({x})", _f("cos")),
    Elementwise("cos", "np.cos({x})", lambda x: E.neg(E.fn("sin", x))),
    Elementwise("tan", "np.tan({x})", lambda x: E.add(E.ones(x.shape), _sq(E.fn("tan", x))),
                domain="unit"),
    Elementwise("tanh", "np.tanh({x})", lambda x: _one_minus(_sq(E.fn("tanh", x)))),
    Elementwise("arcsin", "np.arcsin({x})",
                lambda x: _recip(E.fn("sqrt", _one_minus(_sq(x)))), domain="unit"),
    Elementwise("arccos", "np.arccos({x})",
                lambda x: E.neg(_recip(E.fn("sqrt", _one_minus(_sq(x))))), domain="unit"),
    Elementwise("arctan", "np.arctan({x})",
                lambda x: _recip(E.add(E.ones(x.shape), _sq(x)))),
    Elementwise("abs", "np.abs({x})", _f("sign"), latex="|"),
    Elementwise("sign", "np.sign({x})", lambda x: E.zero(x.shape), latex=r"\operatorname{sign}"),
    Elementwise("relu", "np.maximum({x}, 0.0)", lambda x: E.fn("sign", E.fn("relu", x)),
                latex=r"\operatorname{relu}"),
    Elementwise("sigmoid", "sp.expit({x})", _f("sigmoid'"), unicode="σ", latex=r"\sigma"),
    Elementwise("sigmoid'", "_dsigmoid({x})", None, unicode="σ'", latex=r"\sigma'",
                definition=lambda x: E.hadamard(E.fn("sigmoid", x),
                                                _one_minus(E.fn("sigmoid", x)))),
    Elementwise("softplus", "np.logaddexp(0.0, {x})", _f("sigmoid"),
                latex=r"\operatorname{softplus}"),
]}


def derivative(name: str, x: E.Node) -> E.Node:
    """f'(x) for the element-wise function `name`."""
    entry = ELEMENTWISE[name]
    if entry.derivative is not None:
        return entry.derivative(x)
    # a derived function: differentiate its definition instead (chain rule done by caller)
    raise KeyError(name)
