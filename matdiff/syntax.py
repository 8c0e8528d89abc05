"""Text → syntax nodes. Lark (LALR) with the transformer run inline while parsing, so no parse
tree is built and no recursion happens here: 5,000-deep or megabyte-long inputs are cheap.
Sums and products come out as flat chains (so `x+x+…+x` is one node, not a million-deep tree).
Construction only: kinds and shapes are typecheck.py's job."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import ParseError, Span

MAX_DEPTH = 1000  # nesting beyond this is refused with a clear message, not a RecursionError


@dataclass(frozen=True, slots=True)
class Syn:
    span: Span
    depth: int


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


def _join(a: Span, b: Span) -> Span:
    return (min(a[0], b[0]), max(a[1], b[1]))


def _tok_span(tok) -> Span:
    return (tok.start_pos, tok.end_pos)


def _checked_depth(depth: int, span: Span) -> int:
    if depth > MAX_DEPTH:
        raise ParseError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", span)
    return depth


_PRODUCT_OPS = {"*": "*", "@": "*", "·": "*", ".*": ".*", "⊙": ".*", "∘": ".*"}


class _Builder:
    """Lark inline-transformer callbacks: one method per grammar alias."""

    # ---- chains (flattened while parsing; each partial chain is private to the parse)
    def _chain(self, level: str, left: Syn, op: str, right: Syn) -> Chain:
        depth = _checked_depth(max(left.depth, right.depth + 1), _join(left.span, right.span))
        if isinstance(left, _OpenChain) and left.level == level:
            left.items.append((op, close(right)))
            left.end = max(left.end, right.span[1])
            left.max_depth = max(left.max_depth, depth)
            return left
        chain = _OpenChain(level, left, [(op, right)], _join(left.span, right.span), depth)
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
        return Unary((x.span[0] - 1, x.span[1]), _checked_depth(x.depth + 1, x.span), "-", x)

    def pos(self, c):
        return close(c[0])

    def pow(self, c):
        return self._power("^", c)

    def epow(self, c):
        return self._power(".^", c)

    def _power(self, op, c):
        base, exponent = close(c[0]), close(c[1])
        span = _join(base.span, exponent.span)
        depth = _checked_depth(max(base.depth, exponent.depth) + 1, span)
        return Power(span, depth, op, base, exponent)

    def transpose(self, c):
        return self._postfix("transpose", c)

    def inverse(self, c):
        return self._postfix("inverse", c)

    def _postfix(self, op, c):
        x = close(c[0])
        span = _join(x.span, _tok_span(c[1]))
        return Postfix(span, _checked_depth(x.depth + 1, span), op, x)

    def number(self, c):
        return Num(_tok_span(c[0]), 1, str(c[0]))

    def name(self, c):
        return Name(_tok_span(c[0]), 1, str(c[0]))

    def call(self, c):
        func, args = c[0], tuple(close(a) for a in c[1:])
        end = max(a.span[1] for a in args) + 1
        span = (func.start_pos, end)
        depth = _checked_depth(max(a.depth for a in args) + 1, span)
        return Call(span, depth, str(func), _tok_span(func), args)


class _OpenChain:
    """A chain still being extended by the parser (mutable so that appending is O(1))."""

    __slots__ = ("level", "first", "items", "start", "end", "max_depth")

    def __init__(self, level, first, items, span, depth):
        self.level = level
        self.first = close(first)
        self.items = [(op, close(x)) for op, x in items]
        self.start, self.end = span
        self.max_depth = depth

    @property
    def span(self) -> Span:
        return (self.start, self.end)

    @property
    def depth(self) -> int:
        return self.max_depth


def close(node) -> Syn:
    if isinstance(node, _OpenChain):
        return Chain(node.span, node.max_depth, node.first, tuple(node.items), node.level)
    return node


def _callbacks() -> dict:
    b = _Builder()
    return {name: getattr(b, name) for name in dir(_Builder) if not name.startswith("_")}


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
        return packaged.read_text(encoding="utf-8")
    # Source checkout: the grammar lives at the repository's top level.
    return (Path(__file__).resolve().parent.parent / "grammar" / "matdiff.lark").read_text("utf-8")


def grammar_text() -> str:
    return _grammar_text()


_EXPECTED_LABELS = {
    "RPAR": "')'", "LPAR": "'('", "COMMA": "','", "NAME": "a name", "NUMBER": "a number",
    "FUNC": "a function", "MINUS": "'-'", "PLUS": "'+'", "$END": "end of input",
}


def parse_syntax(text: str) -> Syn:
    """Parse `text` into syntax nodes; raise ParseError with the offending column."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

    if not text.strip():
        raise ParseError("empty expression", (0, max(1, len(text))), text)
    try:
        return close(_parser().parse(text))
    except ParseError as e:
        raise e.with_source(text) from None
    except VisitError as e:  # an error raised inside a callback
        if isinstance(e.orig_exc, ParseError):
            raise e.orig_exc.with_source(text) from None
        raise
    except UnexpectedCharacters as e:
        ch = text[e.pos_in_stream]
        raise ParseError(f"unexpected character {ch!r}", (e.pos_in_stream, e.pos_in_stream + 1),
                         text) from None
    except UnexpectedEOF:
        raise ParseError("unexpected end of input (an operand or ')' is missing)",
                         (len(text), len(text) + 1), text) from None
    except UnexpectedToken as e:
        raise _token_error(e, text) from None


_FUNCTIONS = frozenset(
    "exp log sqrt sin cos tan tanh arcsin arccos arctan abs sign relu sigmoid σ softplus tr det "
    "logdet sum norm1 norm2 diag softmax logsumexp inv vector matrix".split())


def _function_as_variable(name: str, span: Span, text: str) -> ParseError:
    return ParseError(f"'{name}' is a function: write {name}(…); function names cannot be used "
                      "as variables", span, text)


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
    before = re.search(r"([A-Za-zσ_][A-Za-z0-9_]*)\s*$", text[:span[0]])
    if before and before.group(1) in _FUNCTIONS:
        return _function_as_variable(before.group(1), (before.start(1), before.end(1)), text)
    expected = sorted({_EXPECTED_LABELS.get(t, None) for t in e.expected} - {None})
    operand = {"a name", "a number", "a function", "'('"}
    if operand & set(expected):
        hint = "an operand is missing"
    elif expected:
        hint = "expected " + " or ".join(expected)
    else:
        hint = ""
    return ParseError(what + (f": {hint}" if hint else ""), span, text)
