"""Syntax nodes → typed IR. Two passes: `infer` gives every syntax node a shape made of
symbolic dimensions and unifies them across the whole expression; `build` then makes IR
nodes with the final, named dimensions. Juxtaposition and `*` become a scaling or a matrix
product by the operands' kinds; `X^-1` becomes an inverse, `X^T` a transpose."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from fractions import Fraction

from . import expr as E
from .errors import MatdiffError, ShapeError
from .shapes import Dims, check_kinds, default_kind
from .syntax import Call, Chain, Name, Num, Postfix, Power, Syn, Unary, parse_syntax

ELEMENTWISE = ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "arcsin", "arccos", "arctan",
               "abs", "sign", "relu", "sigmoid", "softplus")
FUNCTION_NAMES = ELEMENTWISE + ("σ", "tr", "det", "logdet", "sum", "norm1", "norm2", "diag",
                                "softmax", "logsumexp", "inv", "vector", "matrix")
IDENTITY_NAMES = ("I", "eye")

ONE = Dims.ONE_ID
Pair = tuple[int, int]


@dataclass
class Typed:
    """The result of typing an expression: the IR root and what was decided about names."""

    root: E.Node
    source: str
    variables: dict[str, E.Node] = field(default_factory=dict)  # name → var node

    def var(self, name: str) -> E.Node:
        return self.variables[name]


def typecheck(text: str, types: dict[str, str] | None = None) -> Typed:
    """Parse and type `text`. Raises MatdiffError (ParseError/ShapeError) with a span."""
    syn = parse_syntax(text)
    declared = check_kinds(types)
    try:
        while True:
            try:
                return _Checker(text, declared).run(syn)
            except _KindFromContext as need:
                # an undeclared name used where only another kind fits (softmax(a)):
                # the context decides, as on matrixcalculus.org
                declared = {**declared, need.name: need.kind}
    except MatdiffError as e:
        raise e.with_source(text) from None


def typecheck_system(main: str, definitions: list[tuple[str, str]],
                     types: dict[str, str] | None = None) -> tuple[Typed, dict[str, Typed]]:
    """The main expression and `NAME = EXPR` definitions, typed together."""
    pieces = [(main, None, parse_syntax(main))]
    for name, text in definitions:
        pieces.append((text, name, parse_syntax(text)))
    declared = check_kinds(types)
    while True:
        try:
            typed = _Checker(main, declared).run_system(pieces)
            break
        except _KindFromContext as need:
            declared = {**declared, need.name: need.kind}
    return typed[0], {name: t for (name, _), t in zip(definitions, typed[1:])}


class _KindFromContext(Exception):
    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind


class _Checker:
    def __init__(self, text: str, declared: dict[str, str]):
        self.text = text
        self.declared = declared
        self.dims = Dims()
        self.shape_of: dict[int, Pair] = {}
        self.var_shapes: dict[str, Pair] = {}
        self.var_kinds: dict[str, str] = {}
        self.names: dict[int, E.Dim] = {}
        self.built: dict[int, E.Node] = {}

    def run(self, syn: Syn) -> Typed:
        self.infer(syn)
        self.names = self.dims.names()
        root = self.build(syn)
        variables = {name: E.var(name, self.var_kinds[name], self.resolve(shape))
                     for name, shape in self.var_shapes.items()}
        return Typed(root, self.text, variables)

    def run_system(self, pieces: list[tuple[str, str | None, Syn]]) -> list[Typed]:
        """Several expressions typed together (shared variables and dimensions); a piece with
        a name defines that variable, so its shape must equal the variable's."""
        for text, name, syn in pieces:
            self.text = text
            try:
                shape = self.infer(syn)
                if name is not None:
                    own = Name((0, len(name)), 1, name)
                    var_shape = self.infer(own)
                    for a, b in zip(var_shape, shape):
                        if not self.dims.unify(a, b):
                            raise ShapeError(
                                f"{name} is {self.dims.describe(var_shape)} but its definition "
                                f"is {self.dims.describe(shape)}", (0, len(text)))
            except MatdiffError as e:
                raise e.with_source(text) from None
        self.names = self.dims.names()
        out = []
        for text, _, syn in pieces:
            self.text = text
            out.append(self.build(syn))
        variables = {name: E.var(name, self.var_kinds[name], self.resolve(shape))
                     for name, shape in self.var_shapes.items()}
        return [Typed(root, text, variables) for root, (text, _, _) in zip(out, pieces)]

    # ------------------------------------------------------------ helpers

    def resolve(self, pair: Pair) -> E.Shape:
        return self.dims.resolve(pair, self.names)

    def src(self, syn: Syn) -> str:
        s = self.text[syn.span[0]:syn.span[1]].strip()
        return s if len(s) <= 40 else s[:37] + "…"

    def describe(self, syn: Syn) -> str:
        return self.dims.describe(self.shape_of[id(syn)])

    def is_scalar(self, pair: Pair) -> bool:
        return pair == (ONE, ONE)

    def unify(self, a: int, b: int, what: str, left: Syn, right: Syn, span, hint=None) -> None:
        if not self.dims.unify(a, b):
            raise ShapeError(
                f"{what}: {self.src(left)} is {self.describe(left)}, "
                f"{self.src(right)} is {self.describe(right)}", span,
                hint=hint or self._did_you_mean(left, right))

    def _did_you_mean(self, left: Syn, right: Syn) -> str | None:
        """`trace(X)` multiplies a variable `trace` by X; suggest the function meant."""
        if isinstance(left, Name):
            close = difflib.get_close_matches(left.name, FUNCTION_NAMES, n=1, cutoff=0.6) or \
                [f for f in FUNCTION_NAMES if len(f) > 1 and left.name.startswith(f)][:1]
            if close and self.text[left.span[1]:right.span[0] + 1].strip().startswith("("):
                return f"'{left.name}' is not a function; did you mean {close[0]}(…)?"
        return None

    def square(self, pair: Pair, syn: Syn, what: str) -> None:
        if not self.dims.unify(pair[0], pair[1]):
            raise ShapeError(f"{what} needs a square matrix, but {self.src(syn)} is "
                             f"{self.dims.describe(pair)}", syn.span)

    # ------------------------------------------------------------ pass 1: shapes

    def infer(self, syn: Syn) -> Pair:
        key = id(syn)
        if key not in self.shape_of:
            self.shape_of[key] = _INFER[type(syn)](self, syn)
        return self.shape_of[key]

    def infer_num(self, syn: Num) -> Pair:
        return (ONE, ONE)

    def infer_name(self, syn: Name) -> Pair:
        name = syn.name
        if name in IDENTITY_NAMES and name not in self.declared:
            d = self.dims.fresh()
            return (d, d)
        if name not in self.var_shapes:
            kind = self.declared.get(name) or default_kind(name)
            self.var_kinds[name] = kind
            if kind == "scalar":
                shape = (ONE, ONE)
            elif kind == "vector":
                shape = (self.dims.fresh(), ONE)
            elif kind == "matrix":
                shape = (self.dims.fresh(), self.dims.fresh())
            else:  # symmetric, spd: square
                d = self.dims.fresh()
                shape = (d, d)
            self.var_shapes[name] = shape
        return self.var_shapes[name]

    def infer_unary(self, syn: Unary) -> Pair:
        return self.infer(syn.operand)

    def infer_postfix(self, syn: Postfix) -> Pair:
        r, c = self.infer(syn.operand)
        if syn.op == "transpose":
            return (c, r)
        if (r, c) != (ONE, ONE):
            self.square((r, c), syn.operand, "the inverse")
        return (r, c)

    def infer_power(self, syn: Power) -> Pair:
        base = self.infer(syn.base)
        expo = self.infer(syn.exponent)
        if not self.is_scalar(expo):
            raise ShapeError(f"the exponent {self.src(syn.exponent)} must be a scalar, but it is "
                             f"{self.describe(syn.exponent)}", syn.exponent.span)
        if syn.op == ".^" or self.is_scalar(base):
            return base
        if base[1] == ONE or base[0] == ONE:
            raise ShapeError(f"{self.src(syn.base)} is a vector: ^ needs a scalar or a square "
                             "matrix", syn.span, hint="use .^ for an element-wise power")
        if _integer_exponent(syn.exponent) is None:
            raise ShapeError(f"a matrix power needs a constant integer exponent, not "
                             f"{self.src(syn.exponent)}", syn.exponent.span,
                             hint="use .^ for an element-wise power")
        self.square(base, syn.base, "a matrix power")
        return base

    def infer_chain(self, syn: Chain) -> Pair:
        acc = self.infer(syn.first)
        left: Syn = syn.first
        for op, right in syn.rest:
            rhs = self.infer(right)
            span = (syn.span[0], right.span[1])
            acc = self._combine(op, acc, rhs, left, right, span)
            # later messages talk about the partial chain so far
            left = _Span(span, 0)
            self.shape_of[id(left)] = acc
        return acc

    def _combine(self, op: str, a: Pair, b: Pair, left: Syn, right: Syn, span) -> Pair:
        sa, sb = self.is_scalar(a), self.is_scalar(b)
        if op in ("+", "-"):
            if sa != sb:
                scalar_side = left if sa else right
                raise ShapeError(
                    f"cannot {'add' if op == '+' else 'subtract'} a scalar and a "
                    f"{E.shape_kind(self.dims.resolve(b if sa else a))}: {self.src(left)} is "
                    f"{self.describe(left)}, {self.src(right)} is {self.describe(right)}", span,
                    hint=f"write {self.src(scalar_side)}*vector(1) or *matrix(1) to broadcast")
            self.unify(a[0], b[0], f"cannot {'add' if op == '+' else 'subtract'} these", left,
                       right, span)
            self.unify(a[1], b[1], f"cannot {'add' if op == '+' else 'subtract'} these", left,
                       right, span)
            return a
        if op == "/":
            if not sb:
                raise ShapeError(f"division is by scalars only, but {self.src(right)} is "
                                 f"{self.describe(right)}", right.span,
                                 hint="use inv(…) for a matrix or ./ for element-wise division")
            return a
        if sa:
            return b
        if sb:
            return a
        if op in ("*", ""):
            self.unify(a[1], b[0], "matrix product with mismatched inner dimensions", left,
                       right, span)
            return (a[0], b[1])
        # element-wise: .* ./
        word = "element-wise product" if op == ".*" else "element-wise division"
        self.unify(a[0], b[0], f"{word} of different shapes", left, right, span)
        self.unify(a[1], b[1], f"{word} of different shapes", left, right, span)
        return a

    def infer_call(self, syn: Call) -> Pair:
        func = "sigmoid" if syn.func == "σ" else syn.func
        rule = _CALLS[func]
        arity = 1
        if len(syn.args) != arity:
            raise ShapeError(f"{syn.func}(…) takes {arity} argument, got {len(syn.args)}",
                             syn.span)
        arg = syn.args[0]
        shape = self.infer(arg)
        return rule(self, func, shape, arg, syn)

    # call shape rules ----------------------------------------------------

    def _elementwise(self, func, shape, arg, syn) -> Pair:
        return shape

    def _square_to_scalar(self, func, shape, arg, syn) -> Pair:
        if self.is_scalar(shape):
            return shape
        self.square(shape, arg, f"{func}(…)")
        return (ONE, ONE)

    def _any_to_scalar(self, func, shape, arg, syn) -> Pair:
        return (ONE, ONE)

    def _context_kind(self, arg: Syn, kind: str) -> None:
        if isinstance(arg, Name) and arg.name not in self.declared and \
                arg.name not in IDENTITY_NAMES:
            raise _KindFromContext(arg.name, kind)

    def _nonscalar_to_scalar(self, func, shape, arg, syn) -> Pair:
        if self.is_scalar(shape):
            self._context_kind(arg, "vector")
            raise ShapeError(f"{func}(…) needs a vector or matrix, but {self.src(arg)} is a "
                             "scalar", arg.span)
        return (ONE, ONE)

    def _softmax(self, func, shape, arg, syn) -> Pair:
        if self.is_scalar(shape):
            self._context_kind(arg, "vector")
        if shape[1] != ONE or shape[0] == ONE:
            raise ShapeError(f"softmax(…) needs a column vector, but {self.src(arg)} is "
                             f"{self.describe(arg)}", arg.span)
        return shape

    def _diag(self, func, shape, arg, syn) -> Pair:
        r, c = shape
        if r == ONE:
            raise ShapeError(f"diag(…) needs a column vector or a square matrix, but "
                             f"{self.src(arg)} is {self.describe(arg)}", arg.span)
        if c == ONE:
            return (r, r)
        self.square(shape, arg, "diag(…) of a matrix")
        return (r, ONE)

    def _inv(self, func, shape, arg, syn) -> Pair:
        if not self.is_scalar(shape):
            self.square(shape, arg, "inv(…)")
        return shape

    def _broadcast(self, func, shape, arg, syn) -> Pair:
        if not self.is_scalar(shape):
            raise ShapeError(f"{func}(c) takes a scalar c, but {self.src(arg)} is "
                             f"{self.describe(arg)}", arg.span)
        if func == "vector":
            return (self.dims.fresh(), ONE)
        return (self.dims.fresh(), self.dims.fresh())

    # ------------------------------------------------------------ pass 2: IR

    def build(self, syn: Syn) -> E.Node:
        key = id(syn)
        node = self.built.get(key)
        if node is None:
            node = self.built[key] = _BUILD[type(syn)](self, syn)
        return node

    def build_num(self, syn: Num) -> E.Node:
        return E.const(_number(syn.text))

    def build_name(self, syn: Name) -> E.Node:
        if syn.name in IDENTITY_NAMES and syn.name not in self.declared:
            return E.eye(self.resolve(self.shape_of[id(syn)])[0])
        kind = self.var_kinds[syn.name]
        return E.var(syn.name, kind, self.resolve(self.var_shapes[syn.name]))

    def build_unary(self, syn: Unary) -> E.Node:
        x = self.build(syn.operand)
        return E.neg(x) if syn.op == "-" else x

    def build_postfix(self, syn: Postfix) -> E.Node:
        x = self.build(syn.operand)
        return E.transpose(x) if syn.op == "transpose" else E.inv(x)

    def build_power(self, syn: Power) -> E.Node:
        base = self.build(syn.base)
        if syn.op == ".^":
            return E.epow(base, self.build(syn.exponent))
        if base.is_scalar:
            return E.power(base, self.build(syn.exponent))
        return E.matpow(base, _integer_exponent(syn.exponent))

    def build_chain(self, syn: Chain) -> E.Node:
        acc = self.build(syn.first)
        if syn.level == "sum":
            terms = [acc] + [self.build(x) if op == "+" else E.neg(self.build(x))
                             for op, x in syn.rest]
            return E.add(*terms)
        for op, x in syn.rest:
            rhs = self.build(x)
            acc = _PRODUCT_BUILD[op](acc, rhs)
        return acc

    def build_call(self, syn: Call) -> E.Node:
        func = "sigmoid" if syn.func == "σ" else syn.func
        arg = self.build(syn.args[0])
        shape = self.resolve(self.shape_of[id(syn)])
        return _CALL_BUILD[func](arg, shape)


class _Span(Syn):
    """A stand-in syntax node for a partial chain (for error messages only)."""

    __slots__ = ()


def _number(text: str) -> Fraction:
    return Fraction(text)


def _integer_exponent(syn: Syn) -> int | None:
    sign = 1
    while isinstance(syn, Unary):
        sign = -sign if syn.op == "-" else sign
        syn = syn.operand
    if isinstance(syn, Num):
        value = Fraction(syn.text)
        if value.denominator == 1:
            return sign * int(value)
    return None


def _times(a: E.Node, b: E.Node) -> E.Node:
    if a.is_scalar:
        return E.scale(a, b)
    if b.is_scalar:
        return E.scale(b, a)
    return E.matmul(a, b)


_PRODUCT_BUILD = {
    "*": _times,
    "": _times,
    ".*": lambda a, b: E.hadamard(a, b),
    "./": lambda a, b: E.hdiv(a, b),
    "/": lambda a, b: E.scale(E.power(b, E.const(-1)), a),
}

_INFER = {
    Num: _Checker.infer_num, Name: _Checker.infer_name, Unary: _Checker.infer_unary,
    Postfix: _Checker.infer_postfix, Power: _Checker.infer_power, Chain: _Checker.infer_chain,
    Call: _Checker.infer_call,
}
_BUILD = {
    Num: _Checker.build_num, Name: _Checker.build_name, Unary: _Checker.build_unary,
    Postfix: _Checker.build_postfix, Power: _Checker.build_power, Chain: _Checker.build_chain,
    Call: _Checker.build_call,
}

_CALLS = {name: _Checker._elementwise for name in ELEMENTWISE}
_CALLS.update({
    "tr": _Checker._square_to_scalar, "det": _Checker._square_to_scalar,
    "logdet": _Checker._square_to_scalar, "sum": _Checker._any_to_scalar,
    "norm1": _Checker._any_to_scalar, "norm2": _Checker._any_to_scalar,
    "logsumexp": _Checker._nonscalar_to_scalar, "softmax": _Checker._softmax,
    "diag": _Checker._diag, "inv": _Checker._inv, "vector": _Checker._broadcast,
    "matrix": _Checker._broadcast,
})


def _scalar_reduction(op: str):
    def build(x: E.Node, shape) -> E.Node:
        if x.is_scalar:
            return _SCALAR_REDUCTIONS[op](x)
        return E.reduction(op, x)
    return build


# A reduction of a scalar is the scalar itself (or its obvious counterpart).
_SCALAR_REDUCTIONS = {
    "det": lambda x: x, "logdet": lambda x: E.fn("log", x), "sum": lambda x: x,
    "norm1": lambda x: E.fn("abs", x), "norm2": lambda x: E.fn("abs", x),
}

_CALL_BUILD = {name: (lambda f: lambda x, shape: E.fn(f, x))(name) for name in ELEMENTWISE}
_CALL_BUILD.update({
    "tr": lambda x, shape: E.trace(x),
    "det": _scalar_reduction("det"), "logdet": _scalar_reduction("logdet"),
    "sum": _scalar_reduction("sum"), "norm1": _scalar_reduction("norm1"),
    "norm2": _scalar_reduction("norm2"),
    "logsumexp": lambda x, shape: E.reduction("logsumexp", x),
    "softmax": lambda x, shape: E.softmax(x),
    "diag": lambda x, shape: E.diag_embed(x) if x.shape[1] is E.ONE else E.diag_extract(x),
    "inv": lambda x, shape: E.inv(x),
    "vector": lambda x, shape: E.scale(x, E.ones(shape)),
    "matrix": lambda x, shape: E.scale(x, E.ones(shape)),
})
