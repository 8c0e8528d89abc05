"""Text → syntax nodes. Lark (LALR) with the transformer run inline while parsing, so no parse
tree is built and no recursion happens here: 5,000-deep or megabyte-long inputs are cheap.
Sums and products come out as flat chains (so `x+x+…+x` is one node, not a million-deep tree).
Construction only: kinds and shapes are typecheck.py's job."""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import ParseError, Span
from ..ops import function_names

# Function names from NumPy, MATLAB and maths that matdiff does not have. Directly followed
# by `(` they would silently read as a variable times a bracket; say what to write instead.
FOREIGN_FUNCTIONS = {
    "trace": "the function is tr", "Tr": "the function is tr",
    "transpose": "for a transpose write X' or X^T", "inverse": "the function is inv",
    "inverse_matrix": "the function is inv", "atan": "the function is arctan",
    "asin": "the function is arcsin", "acos": "the function is arccos",
    "arctanh": "matdiff has no arctanh; write log((1 + x)./(1 - x))/2",
    "atanh": "matdiff has no arctanh; write log((1 + x)./(1 - x))/2",
    "arcsinh": "matdiff has no arcsinh; write log(x + sqrt(x.^2 + 1))",
    "asinh": "matdiff has no arcsinh; write log(x + sqrt(x.^2 + 1))",
    "arccosh": "matdiff has no arccosh; write log(x + sqrt(x.^2 - 1))",
    "acosh": "matdiff has no arccosh; write log(x + sqrt(x.^2 - 1))",
    "cosh": "matdiff has no cosh; write (exp(x) + exp(-x))/2",
    "sinh": "matdiff has no sinh; write (exp(x) - exp(-x))/2",
    "atan2": "matdiff has no atan2", "arctan2": "matdiff has no atan2",
    "exp2": "write 2^a for a scalar (exp(log(2)*x) entry-wise)",
    "expm1": "write exp(x) - 1 (exp(x) - vector(1) for a vector)",
    "log2": "write log(x)/log(2)", "log10": "write log(x)/log(10)",
    "log1p": "write log(1 + a) (log(vector(1) + x) for a vector)", "ln": "the function is log",
    "cbrt": "write x.^(1/3)", "square": "write x.^2", "pow": "write a^b (x.^p entry-wise)",
    "power": "write a^b (x.^p entry-wise)",
    "max": "matdiff has no max (relu(x) is max(x, 0))", "min": "matdiff has no min",
    "std": "matdiff has no std", "var": "matdiff has no var",
    "norm": "the functions are norm2 (Euclidean/Frobenius) and norm1",
    "dot": "write x'*y", "inner": "write x'*y", "outer": "write x*y'",
    "logistic": "the function is sigmoid (or σ)",
    "sigm": "the function is sigmoid (or σ)", "diagonal": "the function is diag",
    "determinant": "the function is det", "absolute": "the function is abs",
    "sqr": "write x.^2", "soft_max": "the function is softmax", "lse": "the function is logsumexp",
    "sumsq": "write x'*x or norm2(x)^2",
}

MAX_DEPTH = 1000  # nesting beyond this is refused with a clear message, not a RecursionError
# Bounded work (issue 10): every accepted input must be answered within seconds. Each limit
# below is measured on the costliest input of its kind (see tests/test_trust_language.py).
MAX_CALL_DEPTH = 64  # calls nested inside calls: 100 nested sin(…) already take ~3 s to derive
MAX_OPERANDS = 20_000  # names and numbers in one expression
MAX_FACTORS = 200  # factors of one product chain (a*a*…*a, A1*A2*…); sums are not limited here


@dataclass(frozen=True, slots=True)
class Syn:
    span: Span
    depth: int
    calls: int = field(default=0, kw_only=True)  # calls nested along the deepest path


@dataclass(frozen=True, slots=True)
class Num(Syn):
    text: str


@dataclass(frozen=True, slots=True)
class Name(Syn):
    name: str


@dataclass(frozen=True, slots=True)
class Call(Syn):
    func: str
    func_span: Span
    args: tuple[Syn, ...]
    norm_subscript: str | None = None  # ||X||_2 → "2", ||X|| → "" (for matrices)


@dataclass(frozen=True, slots=True)
class Unary(Syn):
    op: str  # "-" or "+"
    operand: Syn


@dataclass(frozen=True, slots=True)
class Chain(Syn):
    """A left-associative run of one precedence level: first op1 x1 op2 x2 …
    Sums use the ops "+" "-"; products "*" ".*" "./" "/" and "" for juxtaposition."""
    first: Syn
    rest: tuple[tuple[str, Syn], ...]
    level: str  # "sum" or "product"


@dataclass(frozen=True, slots=True)
class Power(Syn):
    op: str  # "^" or ".^"
    base: Syn
    exponent: Syn


@dataclass(frozen=True, slots=True)
class Postfix(Syn):
    op: str  # "transpose" or "inverse"
    operand: Syn


def join_spans(a: Span, b: Span) -> Span:
    return (min(a[0], b[0]), max(a[1], b[1]))


def token_span(tok) -> Span:
    return (tok.start_pos, tok.end_pos)


def checked_depth(depth: int, span: Span) -> int:
    if depth > MAX_DEPTH:
        raise ParseError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", span)
    return depth


# The text being parsed and the operands counted so far (a context variable, so that threads
# parsing at the same time do not share it).
PARSE_STATE: ContextVar[tuple[str, list[int]] | None] = ContextVar("matdiff_parse", default=None)

_NAME_CHARS = re.compile(r"[A-Za-z0-9_α-ωΑ-Ω₀-₉]")
_HEX_LIKE = re.compile(r"[xX][0-9A-Fa-f]+|[bB][01]+|[oO][0-7]+")


def count_operand(span: Span) -> None:
    state = PARSE_STATE.get()
    if state is None:
        return
    state[1][0] += 1
    if state[1][0] > MAX_OPERANDS:
        raise ParseError(f"expression too large: more than {MAX_OPERANDS:,} names and numbers "
                         "(matdiff is made for the expressions a person writes; split the work "
                         "or name shared parts)", span)


def _check_number_touch(start: int, end: int, text: str) -> None:
    """A number may touch a name only as `2x`: `1.5.2` and `X.2` are typos, not products."""
    if start == 0:
        return
    before = text[start - 1]
    number = text[start:end]
    if before.isdigit() or before == ".":
        raise ParseError(f"a number cannot follow another number directly: "
                         f"'{_number_run(text, start)}' is not a number", (start, end),
                         hint="write one number, or put * between two numbers")
    if number.startswith(".") and (_NAME_CHARS.match(before) or before in ")'ᵀ⊤"):
        left = re.search(r"(?:[A-Za-z0-9_α-ωΑ-Ω₀-₉]+|[)'ᵀ⊤])$", text[:start]).group(0)
        raise ParseError(f"'{left}{number}' is not a product: a number may touch a name only "
                         "as in 2x", (start, end),
                         hint=f"for an element-wise power write {left}.^{number[1:]}; for a "
                         f"product write {left}*0{number}")


def _number_run(text: str, start: int) -> str:
    i = start
    while i > 0 and (text[i - 1].isdigit() or text[i - 1] in ".eE"):
        i -= 1
    j = start
    while j < len(text) and (text[j].isdigit() or text[j] in ".eE"):
        j += 1
    return text[i:j]


def _check_hex(start: int, end: int, text: str) -> None:
    """`0x10` would read as 0 times a variable x10."""
    if start >= 1 and text[start - 1] == "0" and (start < 2 or not (
            text[start - 2].isdigit() or text[start - 2] == "." or
            _NAME_CHARS.match(text[start - 2]))) and _HEX_LIKE.fullmatch(text[start:end]):
        spelled = "0" + text[start:end]
        raise ParseError(f"'{spelled}' looks like a hexadecimal (or binary/octal) number; matdiff "
                         "reads decimal numbers only", (start, end),
                         hint=f"write the value in decimal; for 0 times a variable "
                         f"{text[start:end]} write 0*{text[start:end]}")


_PRODUCT_OPS = {"*": "*", "@": "*", "·": "*", "⋅": "*", "×": "*", "∗": "*", ".*": ".*",
                "⊙": ".*", "∘": ".*"}


class SyntaxBuilder:
    """Lark inline-transformer callbacks: one method per grammar alias."""

    # ---- chains (flattened while parsing; each partial chain is private to the parse)
    def _chain(self, level: str, left: Syn, op: str, right: Syn) -> Chain:
        depth = checked_depth(max(left.depth, right.depth + 1), join_spans(left.span, right.span))
        if isinstance(left, _OpenChain) and left.level == level:
            left.items.append((op, close(right)))
            left.end = max(left.end, right.span[1])
            left.max_depth = max(left.max_depth, depth)
            left.calls = max(left.calls, right.calls)
            if level == "product" and len(left.items) >= MAX_FACTORS:
                raise ParseError(f"product too long: more than {MAX_FACTORS} factors in one "
                                 "product", right.span,
                                 hint="matdiff is made for the products a person writes; "
                                 "use a power (a^k, X^k) or name shared parts")
            return left
        chain = _OpenChain(level, left, [(op, right)], join_spans(left.span, right.span), depth)
        chain.calls = max(left.calls, right.calls)
        return chain

    def add(self, c):
        return self._chain("sum", c[0], "+", c[1])

    def sub(self, c):
        return self._chain("sum", c[0], "-", c[1])

    def mul(self, c):
        return self._chain("product", c[0], _PRODUCT_OPS[str(c[1])], c[2])

    def hadamard(self, c):
        return self._chain("product", c[0], ".*", c[2])

    def hdiv(self, c):
        return self._chain("product", c[0], "./", c[1])

    def div(self, c):
        return self._chain("product", c[0], "/", c[1])

    def juxt(self, c):
        return self._chain("product", c[0], "", c[1])

    # ---- everything else builds one node
    def neg(self, c):
        x = close(c[0])
        return Unary((x.span[0] - 1, x.span[1]), checked_depth(x.depth + 1, x.span), "-", x,
                     calls=x.calls)

    def pos(self, c):
        return close(c[0])

    def pow(self, c):
        return self._power("^", c)

    def epow(self, c):
        return self._power(".^", c)

    def _power(self, op, c):
        base, exponent = close(c[0]), close(c[1])
        span = join_spans(base.span, exponent.span)
        depth = checked_depth(max(base.depth, exponent.depth) + 1, span)
        return Power(span, depth, op, base, exponent, calls=max(base.calls, exponent.calls))

    def transpose(self, c):
        return self._postfix("transpose", c)

    def inverse_transpose(self, c):  # X⁻ᵀ, as matdiff prints it: (X⁻¹)ᵀ
        inner = self._postfix("inverse", c)
        return Postfix(inner.span, checked_depth(inner.depth + 1, inner.span), "transpose",
                       inner, calls=inner.calls)

    def superscript_pow(self, c):  # x², ‖x‖³, X⁻²: the superscript as the exponent
        span = token_span(c[1])
        text = str(c[1])
        digits = text.lstrip("⁻").translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789"))
        exponent = Num((span[1] - len(digits), span[1]), 1, digits)
        if text.startswith("⁻"):
            exponent = Unary(span, 2, "-", exponent)
        return self._power("^", [c[0], exponent])

    def inverse(self, c):
        return self._postfix("inverse", c)

    def _postfix(self, op, c):
        x = close(c[0])
        span = join_spans(x.span, token_span(c[1]))
        return Postfix(span, checked_depth(x.depth + 1, span), op, x, calls=x.calls)

    def number(self, c):
        span = token_span(c[0])
        count_operand(span)
        state = PARSE_STATE.get()
        if state is not None:
            _check_number_touch(span[0], span[1], state[0])
        return Num(span, 1, str(c[0]))

    def name(self, c):
        span = token_span(c[0])
        count_operand(span)
        state = PARSE_STATE.get()
        if state is not None:
            _check_hex(span[0], span[1], state[0])
        return Name(span, 1, str(c[0]))

    def norm(self, c):
        """||x||, ||x||_2, ||X||_F → norm2; ||x||_1 → norm1."""
        opening, x, closing = c[0], close(c[1]), c[2]
        span = (opening.start_pos, closing.end_pos)
        sub = re.sub(r"[\s_{}⟧]", "", str(closing)).translate(str.maketrans("₁₂", "12"))
        func = {"": "norm2", "2": "norm2", "F": "norm2", "fro": "norm2", "1": "norm1"}.get(sub)
        if func is None:
            raise ParseError(f"the norm ||…||_{sub} is not supported", span,
                             hint="matdiff has ||x||_2 (Euclidean), ||X||_F (Frobenius) and "
                             "||x||_1; write norm2(x) or norm1(x)")
        count_operand(span)
        return Call(span, checked_depth(x.depth + 1, span), func, span, (x,),
                    calls=x.calls + 1, norm_subscript="F" if sub == "fro" else sub)

    def call(self, c):
        func, args = c[0], tuple(close(a) for a in c[1:])
        end = max(a.span[1] for a in args) + 1
        span = (func.start_pos, end)
        depth = checked_depth(max(a.depth for a in args) + 1, span)
        calls = max(a.calls for a in args) + 1
        if calls > MAX_CALL_DEPTH:
            raise ParseError(f"function calls nested too deeply (more than {MAX_CALL_DEPTH} "
                             "levels)", token_span(func),
                             hint="the derivative of a deep composition grows with each level; "
                             "matdiff accepts up to that many")
        return Call(span, depth, str(func), token_span(func), args, calls=calls)


class _OpenChain:
    """A chain still being extended by the parser (mutable so that appending is O(1))."""

    __slots__ = ("level", "first", "items", "start", "end", "max_depth", "calls")

    def __init__(self, level, first, items, span, depth):
        self.level = level
        self.first = close(first)
        self.items = [(op, close(x)) for op, x in items]
        self.start, self.end = span
        self.max_depth = depth
        self.calls = 0

    @property
    def span(self) -> Span:
        return (self.start, self.end)

    @property
    def depth(self) -> int:
        return self.max_depth


def close(node) -> Syn:
    if isinstance(node, _OpenChain):
        return Chain(node.span, node.max_depth, node.first, tuple(node.items), node.level,
                     calls=node.calls)
    return node


def _callbacks() -> dict:
    b = SyntaxBuilder()
    return {name: getattr(b, name) for name in dir(SyntaxBuilder) if not name.startswith("_")}


@lru_cache(maxsize=1)
def _parser():
    from lark import Lark
    from lark.visitors import Transformer

    class _Inline(Transformer):
        pass

    inline = _Inline()
    for name, fn in _callbacks().items():
        setattr(inline, name, fn)
    return Lark(_grammar_text(), parser="lalr", lexer="contextual", transformer=inline,
                maybe_placeholders=False, cache=True)


def _grammar_text() -> str:
    from importlib import resources
    from pathlib import Path

    packaged = resources.files("matdiff").joinpath("grammar", "matdiff.lark")
    if packaged.is_file():
        text = packaged.read_text(encoding="utf-8")
    else:  # source checkout: the grammar lives at the repository's top level
        text = (Path(__file__).resolve().parents[2] / "grammar" / "matdiff.lark").read_text(
            "utf-8")
    # the grammar holds syntax only: which names are functions, the operator registry says
    names = sorted(_FUNCTIONS, key=lambda n: (-len(n), n))  # deterministic: the parser cache hits
    return text.replace("%FUNCTIONS%", "|".join(re.escape(n) for n in names))


def grammar_text() -> str:
    return _grammar_text()


_EXPECTED_LABELS = {
    "RPAR": "')'", "LPAR": "'('", "COMMA": "','", "NAME": "a name", "NUMBER": "a number",
    "FUNC": "a function", "MINUS": "'-'", "PLUS": "'+'", "$END": "end of input",
}


def parse_plain(text: str) -> Syn:
    """Parse the plain expression language."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

    if not text.strip():
        raise ParseError("empty expression", (0, max(1, len(text))), text)
    token = PARSE_STATE.set((text, [0]))
    try:
        marked = _mark_norms(text) if ("||" in text or "‖" in text) else text
        return close(_parser().parse(marked))
    except ParseError as e:
        raise e.with_source(text) from None
    except VisitError as e:  # an error raised inside a callback
        if isinstance(e.orig_exc, ParseError):
            raise e.orig_exc.with_source(text) from None
        raise
    except UnexpectedCharacters as e:
        raise _character_error(e.pos_in_stream, text) from None
    except UnexpectedEOF:
        raise ParseError("unexpected end of input (an operand or ')' is missing)",
                         (len(text), len(text) + 1), text) from None
    except UnexpectedToken as e:
        raise _token_error(e, text) from None
    finally:
        PARSE_STATE.reset(token)


_OPERAND_END = re.compile(r"[A-Za-z0-9_α-ωΑ-Ω₀-₉)'ᵀ⊤¹⟧′’²³⁴⁵⁶⁷⁸⁹⁰]")


def _mark_norms(text: str) -> str:
    """Each || or ‖ marked as opening (⟦) or closing (⟧), padded to keep every column: a bar
    closes when one of its kind is open and an operand ends just before it."""
    out = list(text)
    open_bars: list[str] = []
    i = 0
    while i < len(text):
        bar = "||" if text.startswith("||", i) else "‖" if text[i] == "‖" else None
        if bar is None:
            i += 1
            continue
        before = "".join(out[:i]).rstrip()
        closes = bool(open_bars) and open_bars[-1] == bar and bool(before) and \
            _OPERAND_END.match(before[-1]) is not None
        if closes:
            open_bars.pop()
            out[i] = "⟧"
        else:
            open_bars.append(bar)
            out[i] = "⟦"
        if bar == "||":
            out[i + 1] = " "
        i += len(bar)
    if open_bars:  # unbalanced: leave the text as typed, so the error shows the bar
        return text
    return "".join(out)


def _character_error(pos: int, text: str) -> ParseError:
    """A character the language has no use for, with the fix when the spelling is known."""
    ch = text[pos]
    span = (pos, pos + 1)
    hint = None
    if ch == "." and text[pos + 1:pos + 2] == "T" and not _NAME_CHARS.match(text[pos + 2:pos + 3]):
        before = re.search(r"[A-Za-z_α-ωΑ-Ω][A-Za-z0-9_α-ωΑ-Ω₀-₉]*$", text[:pos])
        x = before.group(0) if before else "X"
        span, hint = (pos, pos + 2), f"'.T' is NumPy's transpose: use {x}' or {x}^T"
    elif ch == "." and text[pos + 1:pos + 2] == "'":
        span, hint = (pos, pos + 2), "for the transpose write X' (without the dot)"
    elif ch == "|" or ch == "‖":
        double = text.startswith("||", pos) or ch == "‖"
        bar = "||" if text.startswith("||", pos) else ch
        close_at = text.find(bar, pos + len(bar))
        inner = text[pos + len(bar):close_at].strip() if close_at > 0 else "x"
        inner = inner if 0 < len(inner) <= 40 else "x"
        if double:
            if close_at > 0:
                span = (pos, close_at + len(bar))
            rest = text[close_at + len(bar):] if close_at > 0 else ""
            power = re.match(r"\s*\^\s*2(?![0-9.])", rest)
            suggestion = f"norm2({inner})" + ("^2" if power else "")
            hint = (f"write {suggestion} for the Euclidean (Frobenius) norm"
                    + ("" if power else f", norm1({inner}) for the 1-norm"))
        else:
            hint = f"write abs({inner}) for an absolute value, norm2({inner}) for a norm"
    elif ch == "[":
        hint = "use ( ) for calls and grouping: tr(X), not tr[X]"
    return ParseError(f"unexpected character {ch!r}", span, text, hint=hint)


_FUNCTIONS = frozenset(function_names())


def _function_as_variable(name: str, span: Span, text: str) -> ParseError:
    return ParseError(f"'{name}' is a function: write {name}(…); function names cannot be used "
                      "as variables", span, text)


def _call_before(text: str, comma: int) -> ParseError | None:
    """A comma in name(…, …) where name is no matdiff function: say what to write."""
    depth = 0
    for i in range(comma - 1, -1, -1):
        ch = text[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", text[:i])
                if m is None:
                    return None
                name, span = m.group(1), (m.start(1), m.end(1))
                fix = FOREIGN_FUNCTIONS.get(name)
                if fix is not None:
                    return ParseError(f"'{name}' is not a matdiff function; {fix}", span, text)
                if name[:1].isupper():  # X(1, 1)
                    return ParseError(f"{name}(…, …) reads as indexing, which matdiff does not "
                                      "have", span, text,
                                      hint="differentiate the whole expression; for one "
                                           "entry write u'*X*v with unit vectors u and v")
                return ParseError(f"'{name}' is not a matdiff function", span, text,
                                  hint="`matdiff --help` lists the functions")
            depth -= 1
    return None


def _token_error(e, text: str) -> ParseError:
    tok = e.token
    if tok.type == "$END":
        what = "unexpected end of input"
        pos = len(text.rstrip())
        span = (pos, pos + 1)
    else:
        span = (tok.start_pos, tok.end_pos)
        what = f"unexpected {str(tok)!r}"
        if tok.type == "FUNC":
            return _function_as_variable(str(tok), span, text)
        if str(tok) == "*" and text[:span[0]].endswith("*"):
            return ParseError("'**' is not an operator in matdiff", (span[0] - 1, span[1]), text,
                              hint="use ^ for a power (X^2, a^3) and .^ for an element-wise "
                              "power (x.^2)")
    before = re.search(r"([A-Za-zσ_][A-Za-z0-9_]*)\s*$", text[:span[0]])
    if before and before.group(1) in _FUNCTIONS:
        return _function_as_variable(before.group(1), (before.start(1), before.end(1)), text)
    if str(tok) == ",":
        call = _call_before(text, span[0])
        if call is not None:  # dot(x, y), X(1, 1): a comma inside what reads as a call
            return call
    expected = sorted({_EXPECTED_LABELS.get(t, None) for t in e.expected} - {None})
    operand = {"a name", "a number", "a function", "'('"}
    if operand & set(expected):
        hint = "an operand is missing"
    elif expected:
        hint = "expected " + " or ".join(expected)
    else:
        hint = ""
    return ParseError(what + (f": {hint}" if hint else ""), span, text)
