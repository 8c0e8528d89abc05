"""Syntax nodes → typed IR. Two passes: `infer` gives every syntax node a shape made of
symbolic dimensions and unifies them across the whole expression; `build` then makes IR
nodes with the final, named dimensions. Juxtaposition and `*` become a scaling or a matrix
product by the operands' kinds; `X^-1` becomes an inverse, `X^T` a transpose."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

from .. import printing  # noqa: F401  (registers how IR nodes print: str(node))
from ..derive.simplify import stable_form
from ..errors import MatdiffError, ParseError, ShapeError
from ..ir import expr as E
from ..ops import CALLS, RESERVED, canonical, function_names
from .reader import parse_syntax
from .shapes import GREEK_NAMES, Dims, check_kinds, default_kind
from .syntax import FOREIGN_FUNCTIONS, Call, Chain, Name, Num, Postfix, Power, Syn, Unary

FUNCTION_NAMES = function_names()  # from the operator registry (matdiff/ops/language.py)
IDENTITY_NAMES = ("I", "eye")
# Bounded work: X^k expands its differential into k terms (d(X^k) = Σ Xʲ dX X^(k−1−j)).
MAX_MATRIX_POWER = 64
MAX_CONTEXT_KINDS = 64  # names that may take their kind from context (each one re-types)
_CONTEXT_BUDGET = 2_000_000  # characters re-typed in all, so a huge input cannot re-type often


def _may_widen(context: dict, text: str) -> bool:
    return len(context) < MAX_CONTEXT_KINDS and (len(context) + 1) * len(text) <= _CONTEXT_BUDGET


# x' / xᵀ / \mathbf{x}^\top, and the x of w'*x / \mathbf{w}^\top\mathbf{x}
_TRANSPOSED_AFTER = re.compile(r"\}?\s*('|ᵀ|\^\s*T\b|\^\s*\{?\s*\\top)")
_TRANSPOSED_BEFORE = re.compile(r"('|ᵀ|\\top\}?|\^T)\s*(\*|\\,)?\s*(\\mathbf\{)?$")

ONE = Dims.ONE_ID
Pair = tuple[int, int]


@dataclass
class Typed:
    """The result of typing an expression: the IR root and what was decided about names."""

    root: E.Node
    source: str
    variables: dict[str, E.Node] = field(default_factory=dict)  # name → var node
    # undeclared names whose kind came from the context, not from their first letter:
    # name → kind ("vector" or "matrix"); `b` in `W*x + b`, `a` in `softmax(a)`
    context_kinds: dict[str, str] = field(default_factory=dict)
    # how an ambiguous spelling was read, said to the user (||X|| of a matrix: Frobenius)
    reading_notes: list[str] = field(default_factory=list)

    def var(self, name: str) -> E.Node:
        return self.variables[name]


def typecheck(text: str, types: dict[str, str] | None = None) -> Typed:
    """Parse and type `text`. Raises MatdiffError (ParseError/ShapeError) with a span."""
    syn = parse_syntax(text)
    declared = check_kinds(types)
    context: dict[str, str] = {}
    try:
        while True:
            try:
                typed = _Checker(text, declared, _may_widen(context, text)).run(syn)
                typed.context_kinds = dict(context)
                return typed
            except _KindFromContext as need:
                # an undeclared name used where only another kind fits (softmax(a), W*x + b):
                # the context decides, as on matrixcalculus.org
                declared = {**declared, need.name: need.kind}
                context[need.name] = need.kind
    except MatdiffError as e:
        _explain_context(e, context)
        raise e.with_source(text) from None


def _explain_context(e: MatdiffError, context: dict[str, str]) -> None:
    """A name that took its kind from context and still conflicts: say where its kind came
    from and how to declare it, instead of suggesting broadcasting."""
    if not context or not isinstance(e, ShapeError):
        return
    around = e.message
    if e.source and e.span:
        around += " " + e.source[e.span[0]:e.span[1]]
    for name, kind in context.items():
        if re.search(rf"(?<![A-Za-z0-9_α-ωΑ-Ω₀-₉]){re.escape(name)}(?![A-Za-z0-9_α-ωΑ-Ω₀-₉])",
                     around):
            e.hint = (f"{name} is a scalar by default (names starting with a–g and Greek names "
                      f"are) and was read as a {kind} from its context here; declare its kind "
                      f"with --let {name}:KIND (scalar, vector or matrix)")
            return


def typecheck_system(main: str, definitions: list[tuple[str, str]],
                     types: dict[str, str] | None = None) -> tuple[Typed, dict[str, Typed]]:
    """The main expression and `NAME = EXPR` definitions, typed together."""
    pieces = [(main, None, parse_syntax(main))]
    for name, text in definitions:
        pieces.append((text, name, parse_syntax(text)))
    declared = check_kinds(types)
    context: dict[str, str] = {}
    try:
        while True:
            try:
                typed = _Checker(main, declared, _may_widen(
                    context, main + "".join(t for t, _ in definitions))).run_system(pieces)
                break
            except _KindFromContext as need:
                declared = {**declared, need.name: need.kind}
                context[need.name] = need.kind
    except MatdiffError as e:
        _explain_context(e, context)
        raise
    for t in typed:
        t.context_kinds = {n: k for n, k in context.items() if n in t.variables}
    return typed[0], {name: t for (name, _), t in zip(definitions, typed[1:])}


class _KindFromContext(Exception):
    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind


class _Checker:
    def __init__(self, text: str, declared: dict[str, str], widen: bool = True):
        self.text = text
        self.declared = declared
        self.widen = widen  # names may still take their kind from context
        self.dims = Dims()
        self.shape_of: dict[int, Pair] = {}
        # every node keyed in shape_of stays alive: a freed temporary's id can be reused by a
        # new node, which would then read the stale shape (x = t*v left x and v un-unified)
        self._keyed: list[Syn] = []
        self.var_shapes: dict[str, Pair] = {}
        self.var_kinds: dict[str, str] = {}
        self.reading_notes: list[str] = []
        self.names: dict[int, E.Dim] = {}
        self.built: dict[int, E.Node] = {}
        self.axis_of: dict[int, int] = {}  # axis forms name(X, d): the call's d

    def run(self, syn: Syn) -> Typed:
        self.infer(syn)
        self.names = self.dims.names()
        root = self.build(syn)
        variables = {name: E.var(name, self.var_kinds[name], self.resolve(shape))
                     for name, shape in self.var_shapes.items()}
        return Typed(root, self.text, variables, reading_notes=self.reading_notes)

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
            close = difflib.get_close_matches(left.name, FUNCTION_NAMES, n=1, cutoff=0.75) or \
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
            self._keyed.append(syn)
        return self.shape_of[key]

    def infer_num(self, syn: Num) -> Pair:
        _number(syn.text, syn.span)  # a literal a double cannot hold is refused here
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
        ex = syn.exponent
        if syn.op == "^" and isinstance(ex, Name) and len(ex.name) > 1 and \
                ex.name.startswith("T") and ex.name not in self.declared and \
                self.text[ex.span[0] - 1] in "^ \t":
            base_text = self.src(syn.base)
            rest = " ".join(ex.name[1:])
            raise ParseError(f"{base_text}^{ex.name} reads as {base_text} to the power "
                             f"{ex.name} (one name)", ex.span,
                             hint=f"for a transpose write {base_text}^T {rest} (with spaces) or "
                             f"{base_text}'*{'*'.join(ex.name[1:])}")
        if syn.op == "^" and isinstance(ex, Unary) and isinstance(ex.operand, Name) and \
                ex.operand.name in ("T", "⊤") and ex.operand.name not in self.declared:
            base_text = self.src(syn.base)
            raise ParseError(f"{base_text}^-T is not in the language", ex.span,
                             hint=f"for the inverse transpose write inv({base_text})' or "
                                  f"{base_text}^-1'")
        base = self.infer(syn.base)
        expo = self.infer(syn.exponent)
        if syn.op == "^" and isinstance(syn.base, Name) and syn.base.name == "e" and \
                "e" not in self.declared and self.is_scalar(expo):
            # the LaTeX reader takes e^{…} as exp; read as text the same input would be a
            # variable e to a power, and a right answer would check as wrong
            raise ParseError("e^… would read e as a variable (a scalar by default)",
                             syn.base.span,
                             hint="write exp(…) for the exponential function, or declare e "
                                  "with --let e:scalar if it is a variable")
        if not self.is_scalar(expo):
            raise ShapeError(f"the exponent {self.src(syn.exponent)} must be a scalar, but it is "
                             f"{self.describe(syn.exponent)}", syn.exponent.span)
        if syn.op == ".^" or self.is_scalar(base):
            return base
        if base[1] == ONE or base[0] == ONE:
            raise ShapeError(f"{self.src(syn.base)} is a vector: ^ needs a scalar or a square "
                             "matrix", syn.span, hint="use .^ for an element-wise power")
        k = _integer_exponent(syn.exponent)
        if k is None:
            raise ShapeError(f"a matrix power needs a constant integer exponent, not "
                             f"{self.src(syn.exponent)}", syn.exponent.span,
                             hint="use .^ for an element-wise power")
        if abs(k) > MAX_MATRIX_POWER:
            raise ShapeError(f"matrix power {self.src(syn.exponent)} is too large: matdiff "
                             f"takes X^k for |k| ≤ {MAX_MATRIX_POWER}", syn.exponent.span,
                             hint="matdiff expands the differential of X^k into |k| terms; "
                             "for reference, tr(X^k) has gradient k·(Xᵀ)^(k−1)")
        self.square(base, syn.base, "a matrix power")
        return base

    def infer_chain(self, syn: Chain) -> Pair:
        acc = self.infer(syn.first)
        left: Syn = syn.first
        factor: Syn = syn.first  # the operand just before `right` (not the partial chain)
        for op, right in syn.rest:
            if op == "":
                self._check_juxtaposition(factor, right)
            factor = right
            rhs = self.infer(right)
            span = (syn.span[0], right.span[1])
            acc = self._combine(op, acc, rhs, left, right, span)
            # later messages talk about the partial chain so far
            left = _Span(span, 0)
            self.shape_of[id(left)] = acc
            self._keyed.append(left)
        return acc

    def _check_juxtaposition(self, factor: Syn, right: Syn) -> None:
        """`atan(a)`, `eye(3)`, `x'Ax`: juxtapositions a reader never means as written."""
        text = self.text
        if isinstance(factor, Name) and factor.name not in self.declared and \
                text[factor.span[1]:factor.span[1] + 1] == "(":
            name = factor.name
            if name == "eye":
                raise ParseError("eye takes no size: write eye (its size is inferred from the "
                                 "context)", (factor.span[0], right.span[1] + 1))
            fix = FOREIGN_FUNCTIONS.get(name)
            if fix is not None and fix.startswith("the function is "):
                f = fix.split()[3]
                fix = f"{fix}: did you mean {f}(…)?"
            if fix is not None:
                raise ParseError(f"'{name}' is not a matdiff function; {fix}", factor.span,
                                 hint=f"to multiply a variable {name} by (…) write {name}*(…)")
            if re.fullmatch(r"[a-z]{3,}", name) and name not in GREEK_NAMES:
                # gelu(Wx), floor(x): SPEC §1 reads a variable times the bracket; a word a
                # person may have meant as a function says how it was read
                close = difflib.get_close_matches(name, FUNCTION_NAMES, n=1, cutoff=0.75)
                note = (f"{name}(…) is read as the variable {name} times the bracket: {name} is "
                        "not a matdiff function" +
                        (f" (did you mean {close[0]}(…)?)" if close else "") +
                        f"; write {name}*(…) to say so")
                if note not in self.reading_notes:
                    self.reading_notes.append(note)
        if isinstance(right, Name) and right.name not in self.declared and \
                right.span[0] > 0 and text[right.span[0] - 1] in "'ᵀ⊤)" and \
                re.fullmatch(r"[A-Za-z]{2,3}", right.name) and \
                not right.name.isupper() and not right.name.islower():
            name = right.name
            raise ParseError(f"'{name}' is read as one name (a {default_kind(name)} called "
                             f"{name}), not as {' times '.join(name)}", right.span,
                             hint=f"write {'*'.join(name)} or {' '.join(name)}; if {name} is "
                             f"one variable, write {self.src(factor)}*{name}")

    def _widenable(self, syn: Syn) -> str | None:
        """The name of an undeclared, scalar-by-default variable that `syn` is (possibly with
        a sign); such a name takes the vector or matrix kind its context requires."""
        while isinstance(syn, Unary):
            syn = syn.operand
        if self.widen and isinstance(syn, Name) and syn.name not in self.declared and \
                syn.name not in IDENTITY_NAMES and default_kind(syn.name) == "scalar":
            return syn.name
        return None

    def _context_kind_for(self, scalar_side: Syn, other: Pair) -> None:
        """Widen `scalar_side` (if it is such a name) to the kind of `other`."""
        name = self._widenable(scalar_side)
        if name is None or other[0] == ONE:  # never to a row vector
            return
        raise _KindFromContext(name, "vector" if other[1] == ONE else "matrix")

    def _broadcast_hint(self, scalar_side: Syn, other_side: Syn, other: Pair, op: str,
                        scalar_first: bool) -> str:
        const = "vector" if other[1] == ONE else "matrix"
        inner = scalar_side.operand if isinstance(scalar_side, Unary) else scalar_side
        if isinstance(inner, Num):
            value = self.src(scalar_side)
            ones = f"{const}({value})"
            pair = (ones, self.src(other_side)) if scalar_first else \
                (self.src(other_side), ones)
            return (f"a number is a scalar: write {pair[0]} {op} {pair[1]} for a {const} of "
                    f"{value}s") + self._default_vector_words(other_side)
        name = inner.name if isinstance(inner, Name) else None
        if name is not None and self.declared.get(name) == "scalar":
            return (f"{name} is declared a scalar: write {name}*{const}(1) to broadcast it, or "
                    f"declare it with --let {name}:{const}")
        return f"write ({self.src(scalar_side)})*{const}(1) to broadcast a scalar"

    def _default_vector_words(self, syn: Syn) -> str:
        """log(1 + exp(−y·wᵀx)): y is a vector only by its default kind (h–z); if it is a
        scalar label, say how to declare it. Names read as xᵀ or in uᵀx are vectors anyway."""
        text = self.src(syn)
        start = syn.span[0]
        names = []
        for m in re.finditer(r"(?<![A-Za-z0-9_\\])[A-Za-z_][A-Za-z0-9_]*", text):
            name = m.group(0)
            if name in self.declared or name in FUNCTION_NAMES or \
                    default_kind(name) != "vector" or name in names:
                continue
            after = self.text[start + m.end():start + m.end() + 12]
            before = self.text[max(0, start + m.start() - 16):start + m.start()]
            if _TRANSPOSED_AFTER.match(after) or _TRANSPOSED_BEFORE.search(before):
                continue  # transposed, or the partner of a transposed vector: a vector
            names.append(name)
        if len(names) != 1:
            return ""
        return f"; or, if {names[0]} is a scalar, declare it with --let {names[0]}:scalar"

    def _batch_hint(self, a: Pair, b: Pair, left: Syn, right: Syn) -> str | None:
        """W*X + b with a vector b: broadcasting stays explicit; say how to write it."""
        for (vec, v_syn), (mat, m_syn) in (((a, left), (b, right)), ((b, right), (a, left))):
            if ONE in mat or vec.count(ONE) != 1:
                continue
            v, m = self.src(v_syn), self.src(m_syn)
            if isinstance(v_syn, Chain):
                v = f"({v})"
            if vec[1] == ONE:
                return (f"{v} is a vector and {m} a matrix; to add {v} to every column write "
                        f"{v}*vector(1)'")
            return (f"{v} is a row vector and {m} a matrix; to add {v} to every row write "
                    f"vector(1)*{v}")
        return None

    def _combine(self, op: str, a: Pair, b: Pair, left: Syn, right: Syn, span) -> Pair:
        sa, sb = self.is_scalar(a), self.is_scalar(b)
        if op in ("+", "-"):
            if sa != sb:
                scalar_side = left if sa else right
                self._context_kind_for(scalar_side, b if sa else a)
                raise ShapeError(
                    f"cannot {'add' if op == '+' else 'subtract'} a scalar and a "
                    f"{E.shape_kind(self.dims.resolve(b if sa else a))}: {self.src(left)} is "
                    f"{self.describe(left)}, {self.src(right)} is {self.describe(right)}", span,
                    hint=self._broadcast_hint(scalar_side, right if sa else left,
                                              b if sa else a, op, sa))
            hint = self._batch_hint(a, b, left, right)
            self.unify(a[0], b[0], f"cannot {'add' if op == '+' else 'subtract'} these", left,
                       right, span, hint)
            self.unify(a[1], b[1], f"cannot {'add' if op == '+' else 'subtract'} these", left,
                       right, span, hint)
            return a
        if op == "/":
            if not sb:
                raise ShapeError(f"division is by scalars only, but {self.src(right)} is "
                                 f"{self.describe(right)}", right.span,
                                 hint="use inv(…) for a matrix or ./ for element-wise division")
            return a
        if op in (".*", "./") and sa != sb:
            # x .* b: an element-wise operator says b has x's shape
            self._context_kind_for(left if sa else right, b if sa else a)
        if op in ("*", "") and sa != sb:
            # x'*b and b'*x: an inner product with a transposed vector says b is a vector
            if sb and a[0] == ONE:
                name = self._widenable(right)
                if name is not None:
                    raise _KindFromContext(name, "vector")
            if sa and isinstance(left, Postfix) and left.op == "transpose" and b[0] != ONE:
                name = self._widenable(left.operand)
                if name is not None:
                    raise _KindFromContext(name, "vector")
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
        func = canonical(syn.func)
        if func in RESERVED:
            raise ParseError(f"'{func}' is not available yet in matdiff", syn.func_span,
                             hint=f"{func} is reserved for a function to come, so it cannot be "
                             "a variable name either")
        call = CALLS[func]
        if call.axis is not None and len(syn.args) == 2:  # name(X, d): an axis form
            arg = syn.args[0]
            shape = self.infer(arg)
            d = self.axis_of[id(syn)] = _axis_argument(func, syn.args[1])
            return getattr(_Checker, "_" + call.axis_shape)(self, func, shape, arg, syn, d)
        rule = getattr(_Checker, "_" + call.shape)
        arity = call.arity
        if len(syn.args) != arity:
            hint = None
            if call.axis is not None:
                hint = (f"{func}(X) or {func}(X, d) with d = 1 (down the columns) or 2 (along "
                        "the rows)")
            raise ShapeError(f"{syn.func}(…) takes {arity} argument{'s' if arity > 1 else ''}"
                             f", got {len(syn.args)}", syn.span, hint=hint)
        if arity > 1:  # the rule gets every argument's shape and syntax node
            shapes = [self.infer(a) for a in syn.args]
            return rule(self, func, shapes, list(syn.args), syn)
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
        if self.widen and isinstance(arg, Name) and arg.name not in self.declared and \
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
            a = self.src(arg)
            raise ShapeError(f"softmax(…) needs a column vector, but {a} is "
                             f"{self.describe(arg)}", arg.span,
                             hint=f"write softmax({a}, 1) for a softmax of each column or "
                             f"softmax({a}, 2) for each row")
        return shape

    # axis forms name(X, d) (ops/axes.py): d = 1 down the columns, d = 2 along the rows

    def _needs_axis(self, func, shape, arg, syn) -> Pair:
        a = self.src(arg)
        raise ShapeError(f"{func}(X, d) needs the dimension d: {func}({a}, 1) for the number "
                         f"of rows, {func}({a}, 2) for the columns", syn.span)

    def _reduce_axis(self, func, shape, arg, syn, d) -> Pair:
        if self.is_scalar(shape):
            self._context_kind(arg, "matrix")
        return (ONE, shape[1]) if d == 1 else (shape[0], ONE)

    def _keep_axis(self, func, shape, arg, syn, d) -> Pair:
        if self.is_scalar(shape):
            self._context_kind(arg, "matrix")
        return shape

    def _size_axis(self, func, shape, arg, syn, d) -> Pair:
        return (ONE, ONE)

    def _diag(self, func, shape, arg, syn) -> Pair:
        r, c = shape
        if self.is_scalar(shape):
            self._context_kind(arg, "vector")
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

    def _square(self, func, shape, arg, syn) -> Pair:
        if not self.is_scalar(shape):
            self.square(shape, arg, f"{func}(…)")
        return shape

    def _pinv(self, func, shape, arg, syn) -> Pair:
        return (shape[1], shape[0])

    def _eigvec(self, func, shape, arg, syn) -> Pair:
        if self.is_scalar(shape):
            return shape
        self.square(shape, arg, f"{func}(…)")
        return (shape[0], ONE)

    def _frechet(self, func, shapes, args, syn) -> Pair:
        (x0, x1), (e0, e1) = shapes
        x, e = args
        if not self.is_scalar(shapes[0]):
            self.square(shapes[0], x, f"{func}(X, E)")
        for a, b in ((x0, e0), (x1, e1)):
            if not self.dims.unify(a, b):
                raise ShapeError(f"{func}(X, E) needs E of X's shape: {self.src(x)} is "
                                 f"{self.describe(x)}, {self.src(e)} is {self.describe(e)}",
                                 syn.span)
        return shapes[0]

    def _broadcast(self, func, shape, arg, syn) -> Pair:
        if not self.is_scalar(shape):
            raise ShapeError(f"{func}(c) takes a scalar c, but {self.src(arg)} is "
                             f"{self.describe(arg)}", arg.span)
        if func == "vector":
            return (self.dims.fresh(), ONE)
        return (self.dims.fresh(), self.dims.fresh())

    def _kron(self, func, shapes, args, syn) -> Pair:
        (a0, a1), (b0, b1) = shapes
        return (self.dims.product(a0, b0), self.dims.product(a1, b1))

    def _vec(self, func, shape, arg, syn) -> Pair:
        rows, cols = shape
        return (self.dims.product(cols, rows), ONE)

    def _unvec(self, func, shapes, args, syn) -> Pair:
        (u0, u1), (w0, _) = shapes
        u, w = args
        if u1 != ONE or u0 == ONE:
            raise ShapeError(f"unvec(u, M) needs a column vector u, but {self.src(u)} is "
                             f"{self.describe(u)}", u.span,
                             hint="unvec(u, M) cuts u into columns as tall as M: write "
                             "unvec(vec(X), M) for a matrix X")
        cols = self.dims.fresh()
        if not self.dims.unify(u0, self.dims.product(cols, w0)):
            raise ShapeError(f"unvec(u, M) needs the length of u to be a multiple of the rows of "
                             f"M (u is cut into columns as tall as M): {self.src(u)} has length "
                             f"{self.dim_text(u0)}, {self.src(w)} has {self.dim_text(w0)} rows",
                             syn.span)
        return (w0, cols)

    def dim_text(self, d: int) -> str:
        return self.dims.resolve((d, ONE))[0].name

    def _block_grid(self, func, shapes, args, syn, block_first: bool) -> tuple[int, int]:
        """G's rows and columns as products of a grid and a block (blockdot(G, B): B is
        the block, blocksum(G, A): A is the grid); the other factor is returned."""
        (g0, g1), (w0, w1) = shapes
        g, w = args
        g_text, w_text = self.describe(g), self.describe(w)  # before unifying changes them
        out = []
        for gd, wd, which in ((g0, w0, "rows"), (g1, w1, "columns")):
            other = self.dims.fresh()
            prod = self.dims.product(other, wd) if block_first else \
                self.dims.product(wd, other)
            if not self.dims.unify(gd, prod):
                what = ("blocks of the shape of B" if block_first else
                        "as many blocks as A has entries, in A's grid")
                raise ShapeError(
                    f"{func}(G, {'B' if block_first else 'A'}) needs G made of {what}: "
                    f"{self.src(g)} is {g_text}, {self.src(w)} is {w_text} "
                    f"(G's {which} must be a multiple of its {which})", syn.span)
            out.append(other)
        return out[0], out[1]

    def _blockdot(self, func, shapes, args, syn) -> Pair:
        return self._block_grid(func, shapes, args, syn, block_first=True)

    def _blocksum(self, func, shapes, args, syn) -> Pair:
        return self._block_grid(func, shapes, args, syn, block_first=False)

    # ------------------------------------------------------------ pass 2: IR

    def build(self, syn: Syn) -> E.Node:
        key = id(syn)
        node = self.built.get(key)
        if node is None:
            # hand-written log-sum-exp and softmax forms read as their (stable) operators
            node = self.built[key] = stable_form(_BUILD[type(syn)](self, syn))
        return node

    def build_num(self, syn: Num) -> E.Node:
        return E.const(_number(syn.text, syn.span))

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
        func = canonical(syn.func)
        shape = self.resolve(self.shape_of[id(syn)])
        if id(syn) in self.axis_of:
            return CALLS[func].axis(self.build(syn.args[0]), self.axis_of[id(syn)], shape)
        args = [self.build(a) for a in syn.args]
        if func == "pinv" and self.text[syn.func_span[0]:syn.func_span[0] + 1] == "^" and \
                args[0].kind != "matrix":
            # (1 − y·wᵀx)^{+} is the positive part in many texts; matdiff's ^{+} (as it prints
            # pinv) is the pseudo-inverse of a matrix
            raise ParseError(f"^{{+}} of a {args[0].kind} is read as the pseudo-inverse, "
                             "which matdiff takes only of a matrix", syn.func_span,
                             hint="for the positive part max(u, 0) write relu(…); for the "
                                  "pseudo-inverse of a matrix, pinv(…)")
        subscript = getattr(syn, "norm_subscript", None)
        if subscript == "2" and args[0].kind == "matrix":
            # ‖X‖₂ of a matrix is its spectral norm (how matdiff prints specnorm, too)
            note = (f"||{self.src(syn.args[0])}||_2 of a matrix is read as the spectral norm "
                    "specnorm(…) (the largest singular value); ||…||_F is the Frobenius norm")
            if note not in self.reading_notes:
                self.reading_notes.append(note)
            return CALLS["specnorm"].build(*args, shape)
        if subscript == "" and args[0].kind == "matrix":
            note = (f"||{self.src(syn.args[0])}|| of a matrix is read as the Frobenius norm "
                    f"(write ||…||_F to say so, or specnorm(…) for the spectral norm)")
            if note not in self.reading_notes:
                self.reading_notes.append(note)
        return CALLS[func].build(*args, shape)


class _Span(Syn):
    """A stand-in syntax node for a partial chain (for error messages only)."""

    __slots__ = ()


_NUMBER = re.compile(r"(\d*)(?:\.(\d+))?(?:[eE]([-+]?\d+))?")
# A literal stays an exact fraction when it is a short decimal; anything else is a double.
_EXACT_DIGITS = 20
_EXACT_EXPONENT = 300


def _number(text: str, span=None) -> Fraction | float:
    """The value of a literal. Exact (a Fraction) for short decimals such as 0.5 or 1e-6;
    otherwise the nearest double, so that `1e99999999` never builds a 10⁹⁹⁹⁹⁹⁹⁹⁹ integer.
    A literal a double cannot hold is an error."""
    m = _NUMBER.fullmatch(text)
    whole, frac, exp = m.group(1), m.group(2) or "", m.group(3)
    digits = (whole + frac).lstrip("0")
    significant = len(digits.rstrip("0"))
    if significant == 0:
        return Fraction(0)
    # the decimal exponent of the leading digit, computed without building the number
    exponent = int(exp) if exp is not None and len(exp.lstrip("+-")) < 12 else \
        (10**12 if exp is not None and not exp.startswith("-") else
         (-10**12 if exp is not None else 0))
    magnitude = exponent + len(whole.lstrip("0")) - 1 if whole.lstrip("0") else \
        exponent - (len(frac) - len(frac.lstrip("0"))) - 1
    if significant <= _EXACT_DIGITS and abs(magnitude) <= _EXACT_EXPONENT:
        return Fraction(text)
    if magnitude > 310:
        value = math.inf
    elif magnitude < -330:
        value = 0.0
    else:
        value = float(text)
    if math.isinf(value):
        raise ParseError(f"number too large (overflows a double): {_short(text)}", span,
                         hint="the largest double is about 1.8e308")
    if value == 0.0:
        raise ParseError(f"number too small (underflows to 0 in a double): {_short(text)}", span,
                         hint="the smallest positive double is about 4.9e-324; write 0 if you "
                         "mean zero")
    if value.is_integer() and abs(value) < 2**53:
        return Fraction(int(value))
    return value


def _axis_argument(func: str, syn: Syn) -> int:
    """The d of name(X, d): the number 1 (down the columns) or 2 (along the rows)."""
    value = _number(syn.text, syn.span) if isinstance(syn, Num) else None
    if value not in (1, 2):
        raise ShapeError(f"the dimension of {func}(X, d) must be the number 1 (down the "
                         f"columns) or 2 (along the rows)", syn.span,
                         hint=f"{func}(X, 1) gives one value per column, {func}(X, 2) one per "
                         "row")
    return int(value)


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:10] + "…" + text[-10:]


def _integer_exponent(syn: Syn) -> int | None:
    sign = 1
    while isinstance(syn, Unary):
        sign = -sign if syn.op == "-" else sign
        syn = syn.operand
    if isinstance(syn, Num):
        value = _number(syn.text, syn.span)
        if isinstance(value, float):
            return sign * int(value) if value.is_integer() else None
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

