"""Element-wise functions: one row each, and the one operator `fn` that applies any of them.

A row gives f′(x) as an IR node (or, for a derived function such as σ′, its `definition` in the
language, so every printed gradient parses back), the value in floating point (NumPy/SciPy),
exactly (SymPy) and in high precision (mpmath), the spelling for emitted NumPy code, and the
Unicode/LaTeX names where they differ from the language name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..ir import expr as E
from .language import Call, declare_call
from .lazy import np, special
from .registry import ATOM, DRule, Operator, Spelling, declare

Builder = Callable[[E.Node], E.Node]


@dataclass(frozen=True)
class Elementwise:
    name: str
    numpy: str  # emitted NumPy code, a template in `{x}` (np, and the backend's helpers)
    derivative: Builder | None  # f'(x); None when given through `definition`
    evaluate: Callable | None = None  # float64 array → array (None: through `definition`)
    sympy: Callable | None = None  # (sympy, entry) → entry
    mpmath: Callable | None = None  # (mpmath, mpf) → mpf
    domain: str = "any"  # any | positive | unit (|x| < 1)
    unicode: str | None = None
    latex: str | None = None  # a LaTeX command; None: \operatorname{name}
    definition: Builder | None = None  # for derived functions: their spelling in the language
    kinked: bool = False  # piecewise, with a kink where the argument is 0


def _one_minus(x: E.Node) -> E.Node:
    return E.sub(E.ones(x.shape), x)


def _recip(x: E.Node) -> E.Node:
    return E.hdiv(E.ones(x.shape), x)


def _sq(x: E.Node) -> E.Node:
    return E.epow(x, E.const(2))


def _f(name: str) -> Builder:
    return lambda x: E.fn(name, x)


def _relu_mp(mp, x):
    return x if x > 0 else mp.mpf(0)


def _softplus_mp(mp, x):
    return mp.log1p(mp.exp(x)) if x < 30 else x + mp.log1p(mp.exp(-x))


def _erf_derivative_definition(x: E.Node) -> E.Node:
    # erf′(x) = (2/√π)·exp(−x²): printed erf′(x) for people, spelled out in the language
    two_over_root_pi = E.const(2 / 3.141592653589793 ** 0.5)
    return E.scale(two_over_root_pi, E.fn("exp", E.neg(_sq(x))))


ELEMENTWISE: dict[str, Elementwise] = {e.name: e for e in [
    Elementwise("exp", "np.exp({x})", _f("exp"), lambda x: np.exp(x),
                lambda sp, x: sp.exp(x), lambda mp, x: mp.exp(x), latex=r"\exp"),
    Elementwise("log", "np.log({x})", _recip, lambda x: np.log(x),
                lambda sp, x: sp.log(x), lambda mp, x: mp.log(x), domain="positive",
                latex=r"\log"),
    Elementwise("sqrt", "np.sqrt({x})",
                lambda x: E.scale(E.const(Fraction(1, 2)), _recip(E.fn("sqrt", x))),
                lambda x: np.sqrt(x), lambda sp, x: sp.sqrt(x), lambda mp, x: mp.sqrt(x),
                domain="positive", latex=r"\sqrt"),
    Elementwise("sin", "np.sin({x})", _f("cos"), lambda x: np.sin(x),
                lambda sp, x: sp.sin(x), lambda mp, x: mp.sin(x), latex=r"\sin"),
    Elementwise("cos", "np.cos({x})", lambda x: E.neg(E.fn("sin", x)), lambda x: np.cos(x),
                lambda sp, x: sp.cos(x), lambda mp, x: mp.cos(x), latex=r"\cos"),
    Elementwise("tan", "np.tan({x})", lambda x: E.add(E.ones(x.shape), _sq(E.fn("tan", x))),
                lambda x: np.tan(x), lambda sp, x: sp.tan(x), lambda mp, x: mp.tan(x),
                domain="unit", latex=r"\tan"),
    Elementwise("tanh", "np.tanh({x})", lambda x: _one_minus(_sq(E.fn("tanh", x))),
                lambda x: np.tanh(x), lambda sp, x: sp.tanh(x), lambda mp, x: mp.tanh(x),
                latex=r"\tanh"),
    Elementwise("arcsin", "np.arcsin({x})",
                lambda x: _recip(E.fn("sqrt", _one_minus(_sq(x)))), lambda x: np.arcsin(x),
                lambda sp, x: sp.asin(x), lambda mp, x: mp.asin(x), domain="unit"),
    Elementwise("arccos", "np.arccos({x})",
                lambda x: E.neg(_recip(E.fn("sqrt", _one_minus(_sq(x))))),
                lambda x: np.arccos(x), lambda sp, x: sp.acos(x), lambda mp, x: mp.acos(x),
                domain="unit"),
    Elementwise("arctan", "np.arctan({x})",
                lambda x: _recip(E.add(E.ones(x.shape), _sq(x))), lambda x: np.arctan(x),
                lambda sp, x: sp.atan(x), lambda mp, x: mp.atan(x)),
    Elementwise("abs", "np.abs({x})", _f("sign"), lambda x: np.abs(x),
                lambda sp, x: sp.Abs(x), lambda mp, x: abs(x), latex="|", kinked=True),
    Elementwise("sign", "np.sign({x})", lambda x: E.zero(x.shape), lambda x: np.sign(x),
                lambda sp, x: sp.sign(x), lambda mp, x: mp.sign(x), kinked=True),
    Elementwise("relu", "np.maximum({x}, 0.0)", lambda x: E.fn("sign", E.fn("relu", x)),
                lambda x: np.maximum(x, 0.0), lambda sp, x: sp.Max(x, 0), _relu_mp,
                kinked=True),
    Elementwise("sigmoid", "_sigmoid({x})", _f("sigmoid'"), lambda x: special.expit(x),
                lambda sp, x: 1 / (1 + sp.exp(-x)), lambda mp, x: 1 / (1 + mp.exp(-x)),
                unicode="σ", latex=r"\boldsymbol{\sigma}"),
    Elementwise("sigmoid'", "_dsigmoid({x})", None, unicode="σ'",
                latex=r"\boldsymbol{\sigma}'",
                definition=lambda x: E.hadamard(E.fn("sigmoid", x),
                                                _one_minus(E.fn("sigmoid", x)))),
    Elementwise("softplus", "_softplus({x})", _f("sigmoid"),
                lambda x: np.logaddexp(0.0, x), lambda sp, x: sp.log(1 + sp.exp(x)),
                _softplus_mp),
    Elementwise("erf", "_special.erf({x})", _f("erf'"), lambda x: special.erf(x),
                lambda sp, x: sp.erf(x), lambda mp, x: mp.erf(x),
                latex=r"\operatorname{erf}"),
    Elementwise("erf'", "_derf({x})", None,
                lambda x: (2 / np.sqrt(np.pi)) * np.exp(-x * x),
                lambda sp, x: 2 / sp.sqrt(sp.pi) * sp.exp(-x ** 2),
                lambda mp, x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x),
                unicode="erf'", latex=r"\operatorname{erf}'",
                definition=_erf_derivative_definition),
]}


def derivative(name: str, x: E.Node) -> E.Node:
    """f'(x) for the element-wise function `name`."""
    entry = ELEMENTWISE[name]
    if entry.derivative is not None:
        return entry.derivative(x)
    # a derived function: differentiate its definition instead (chain rule done by caller)
    raise KeyError(name)


# ---------------------------------------------------------------- the operator


def _d_fn(ctx, n, d):
    x = n.args[0]
    entry = ELEMENTWISE[n.attr]
    if entry.definition is not None:  # σ' and friends: differentiate what they stand for
        return ctx(entry.definition(x))
    if n.attr == "log" and x.op == "softmax":
        # log softmax(z) = z − 1·logsumexp(z): d = dz − 1 softmax(z)ᵀdz
        z = x.args[0]
        dz = d(z)
        return E.sub(dz, E.scale(E.inner(x, dz), E.ones(z.shape)))
    if n.attr == "log" and x.op == "det":
        return E.trace(E.matmul(E.inv(x.args[0]), d(x.args[0])))
    return E.hadamard(derivative(n.attr, x), d(x))


def _numeric(n, a, s):
    return ELEMENTWISE[n.attr].evaluate(a[0])


def _exact(sp, n, a, s):
    fn = ELEMENTWISE[n.attr].sympy
    return a[0].applyfunc(lambda x: fn(sp, x))


def _precise(mp, n, a, s):
    fn = ELEMENTWISE[n.attr].mpmath
    return a[0].apply(lambda x: fn(mp, x))


# JAX spells every row as NumPy does, in jax.numpy (jax.scipy.special is _special there);
# PyTorch's relu and softplus take no Python number as a second operand
_TORCH = {"relu": "torch.relu({x})", "softplus": "_softplus({x})"}


_JAX = {"softplus": "jnp.logaddexp(0.0, {x})"}


def _jax_fn(ctx, n, a):
    template = _JAX.get(n.attr) or ELEMENTWISE[n.attr].numpy.replace("np.", "jnp.")
    return template.format(x=a[0])


def _torch_fn(ctx, n, a):
    template = _TORCH.get(n.attr) or ELEMENTWISE[n.attr].numpy.replace("np.", "torch.")
    return template.format(x=a[0])


def _text(printer, node):
    entry = ELEMENTWISE[node.attr]
    if entry.definition is not None:  # σ' is not in the language: spell out its meaning
        return printer.show(entry.definition(node.args[0]))
    return printer.call(node.attr, node.args[0])


def _unicode(printer, node):
    entry = ELEMENTWISE[node.attr]
    if node.attr == "abs":
        return f"|{printer.doc(node.args[0])}|", ATOM
    return printer.call(entry.unicode or entry.name, node.args[0])


def _latex(printer, node):
    entry = ELEMENTWISE[node.attr]
    x = node.args[0]
    if node.attr == "abs":
        return rf"\left|{printer.doc(x)}\right|", ATOM
    if node.attr == "sqrt":
        return rf"\sqrt{{{printer.doc(x)}}}", ATOM
    return printer.call(entry.latex or rf"\operatorname{{{entry.name}}}", x)


declare(Operator(
    "fn", "element-wise function",
    d=DRule("rule 8: dσ(X) = σ′(X) ⊙ dX", _d_fn),
    numeric=_numeric, exact=_exact, precise=_precise,
    spelling=Spelling(_text, _unicode, _latex),
    lower={"numpy": lambda ctx, n, a: ELEMENTWISE[n.attr].numpy.format(x=a[0]),
           "jax": _jax_fn, "torch": _torch_fn},
))

for _entry in ELEMENTWISE.values():
    if _entry.definition is None:  # σ′ is printed through its definition, never called
        declare_call(Call(_entry.name, "elementwise",
                          (lambda name: lambda x, shape: E.fn(name, x))(_entry.name)))
