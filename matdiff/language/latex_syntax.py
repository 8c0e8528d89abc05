r"""LaTeX → the same syntax nodes as the plain language (issue 13).

Homework is written `\mathbf{x}^\top A \mathbf{x}`, `\|Ax-b\|_2^2`, `\operatorname{tr}(X^\top A X)`,
`\frac{1}{2}\log\det\Sigma`. A hand-written lexer turns the LaTeX into tokens (it decides what a
command means, whether a bar opens or closes a norm, what a superscript is, where a name ends),
and Lark parses them with grammar/latex.lark into syntax.py's nodes, whose spans point into the
LaTeX text, so errors put their caret under the LaTeX column.

Reading rules a student can rely on:
- single letters are separate factors (`Ax` is A·x, as in LaTeX); a letter may carry digits or a
  subscript (`W1`, `W_1`, `W_{1}`, `x_i`); `\mathbf{x}`, `\boldsymbol{\mu}`, `\bm{x}`, `\vec{x}`,
  `\mathit{name}` are names; `\mathbf{1}` is a vector of ones;
- Greek commands are names (`\mu` → μ, `\Sigma` → Σ, a matrix); `\sigma(…)` is the sigmoid,
  `\sigma` alone the scalar `sigma`;
- `\|x\|`, `\|x\|_2`, `\|X\|_F` are norm2, `\|x\|_1` norm1; `|X|` (bars around a name that is a
  matrix by default) is det(X), other `|…|` and `\left|…\right|` are abs;
- a function without brackets takes the next factor: `\log\det X`, `\det X^\top`;
- `e^{…}` is exp(…) unless `e` is a variable of the expression being compared with.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from functools import lru_cache

from ..errors import ParseError
from ..ops import CALLS, RESERVED, function_names
from .syntax import (
    PARSE_STATE,
    Call,
    Chain,
    Name,
    Num,
    Postfix,
    Power,
    Syn,
    SyntaxBuilder,
    Unary,
    checked_depth,
    close,
    count_operand,
    join_spans,
    token_span,
)

# names the surrounding problem already has: `\mu` reads as `mu` when the expression says mu,
# `W_{1}` as `W_1` when it says W_1 (the default spellings are μ and W1)
KNOWN_NAMES: ContextVar[frozenset[str]] = ContextVar("matdiff_latex_names", default=frozenset())

_GREEK = ("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa "
          "lambda mu nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi "
          "omega").split()
_GREEK_CHAR = dict(zip(
    _GREEK, "αβγδεεζηθθικλμνξππρρσςτυφφχψω"))
_GREEK_SPELLED = {g: g.removeprefix("var") for g in _GREEK}
_CAPITAL = {"Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π",
            "Sigma": "Σ", "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω"}
_LATIN_LIKE_CAPITAL = dict(zip("ABEZHIKMNOPTX", "ΑΒΕΖΗΙΚΜΝΟΡΤΧ"))
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

# function spellings (after \operatorname{…}, \mathrm{…}, \text{…}, or a bare command): every
# function of the language (the operator registry) under its own name, plus the other names
# notes use for them
FUNCTIONS = {name: name for name in function_names()} | {
    "ln": "log", "Tr": "tr", "trace": "tr", "Trace": "tr", "Diag": "diag",
    "LSE": "logsumexp", "lse": "logsumexp", "ReLU": "relu", "sgn": "sign", "σ": "sigmoid",
}
# bare commands that are functions (\log, \det, …; \tr and \Tr are common macros)
_COMMAND_FUNCTIONS = {"exp", "log", "ln", "sin", "cos", "tan", "tanh", "arcsin", "arccos",
                      "arctan", "det", "tr", "Tr", "trace", "sgn", "diag", "erf"}
# words written without a backslash that are calls when a bracket follows: tr(X), softmax(z)
_PLAIN_CALLS = sorted(set(CALLS) | {"ln", "Tr"}, key=len, reverse=True)
_TEXT_WRAPPERS = {"operatorname", "mathrm", "text", "textrm", "mathop", "textnormal",
                  "mathit", "textit", "mathsf", "textsf", "rm", "it"}
_BOLD_WRAPPERS = {"mathbf", "boldsymbol", "bm", "vec", "mathbfit", "pmb", "bf", "bold",
                  "mathbb", "symbf", "mathcal", "hat", "bar", "tilde", "overline", "underline"}
_SPACING = {",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle", "limits",
            "nolimits", "mathstrut", "strut", "thinspace", "medspace", "thickspace", "enspace",
            "negthinspace", "nonumber", "notag", "relax", "ensuremath"}
_SIZES = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
          "biggl", "biggr", "Biggl", "Biggr", "middle"}
_OPENERS = {"left", "bigl", "Bigl", "biggl", "Biggl"}
_CLOSERS = {"right", "bigr", "Bigr", "biggr", "Biggr"}
_PRODUCTS = {"cdot": "MUL", "times": "MUL", "ast": "MUL", "odot": "HAD", "circ": "HAD",
             "oslash": "HDIV", "otimes": "KRON", "div": "DIV"}
_TRANSPOSES = {r"\top", "T", r"\mathsf{T}", r"\mathsfT", r"\rmT", r"\mathrm{T}", r"\mathrmT",
               r"\intercal", r"\prime", "'", r"\textsf{T}", r"\textsfT", r"\mathit{T}",
               r"\mathbf{T}", r"\mathsf{\top}", r"\mathbf{\top}", r"\!\top", r"\top\!"}
_INVERSES = {"-1"}
_INV_TRANSPOSES = {"-" + t for t in _TRANSPOSES if t != "'"} | {r"-\top"}
_UNSUPPORTED = {
    "partial": "paste the expression f (or the claimed gradient), not the derivative ∂f/∂X",
    "nabla": "paste the expression f (or the claimed gradient), not ∇f",
    "sum": "write sums with a vector of ones: \\mathbf{1}^\\top x, or \\operatorname{sum}(x)",
    "prod": "matdiff has no products over indices",
    "int": "matdiff has no integrals",
    "infty": "the ∞-norm is not supported; use \\|x\\|_1 or \\|x\\|_2",
    "max": "matdiff has no max (relu(x) is max(x, 0))",
    "min": "matdiff has no min",
    "lambda_max": "matdiff has no eigenvalues yet",
    "operatorname": "",
}
_OPERAND_END = {"NAME", "NUMBER", "_RPAR", "_RBRACE", "TRANSPOSE", "INVERSE", "INVTRANSPOSE",
                "PINV", "NORM_CLOSE", "BAR_CLOSE", "ONES"}


def looks_like_latex(text: str) -> bool:
    return "\\" in text or "$" in text


class _Lexer:
    """LaTeX text → Lark tokens (with positions into the text)."""

    def __init__(self, text: str, known: frozenset[str]):
        self.text = text
        self.known = known
        self.pos = 0
        self.out: list = []
        self.bars: list[str] = []  # open bar kinds: "norm" or "abs"
        self.after_func = False

    # ---------------------------------------------------------------- helpers
    def error(self, message: str, start: int, end: int | None = None, hint: str | None = None):
        return ParseError(message, (start, end if end is not None else start + 1), self.text,
                          hint=hint)

    def emit(self, kind: str, value: str, start: int, end: int):
        from lark import Token

        if kind in ("_LPAR",) and self.after_func:
            kind = "_CALL_LPAR"
        self.after_func = kind == "FUNC"
        self.out.append(Token(kind, value, start_pos=start, end_pos=end, line=1,
                              column=start + 1, end_line=1, end_column=end + 1))

    def last(self) -> str | None:
        return self.out[-1].type if self.out else None

    def skip_space(self, pos: int) -> int:
        """Whitespace and spacing commands (\\, \\; \\quad …) are skipped."""
        text = self.text
        while pos < len(text):
            if text[pos] in " \t\r\n~$&":
                pos += 1
                continue
            m = re.match(r"\\(,|;|:|!|\s|[A-Za-z]+)", text[pos:])
            if m and m.group(1).strip() in _SPACING | {""}:
                pos += m.end()
                continue
            if m and m.group(1) in ("mkern", "mskip", "hspace", "kern"):
                n = re.match(r"\\[A-Za-z]+\s*\{?\s*-?[\d.]*\s*[a-z]*\s*\}?", text[pos:])
                pos += n.end()
                continue
            break
        return pos

    def braced(self, pos: int) -> tuple[str, int]:
        """The raw text of a {…} group (or one character/command) starting at pos."""
        text = self.text
        pos = self.skip_space(pos)
        if pos >= len(text):
            raise self.error("a LaTeX argument is missing at the end of the input", pos)
        if text[pos] == "{":
            depth, i = 0, pos
            while i < len(text):
                if text[i] == "{" and text[i - 1:i] != "\\":
                    depth += 1
                elif text[i] == "}" and text[i - 1:i] != "\\":
                    depth -= 1
                    if depth == 0:
                        return text[pos + 1:i], i + 1
                i += 1
            raise self.error("this { is never closed", pos, hint="add the matching }")
        m = re.match(r"\\[A-Za-z]+|\\.|.", text[pos:], re.S)
        return m.group(0), pos + m.end()

    # ---------------------------------------------------------------- names
    def pick(self, candidates: list[str]) -> str:
        for c in candidates:
            if c in self.known:
                return c
        return candidates[0]

    def subscript(self, pos: int) -> tuple[str, int]:
        """`_1`, `_{12}`, `_i`, `_{\\mathrm{in}}` → ("12", end); ("", pos) when none."""
        p = self.skip_space(pos)
        if p < len(self.text) and self.text[p] == "_":
            raw, end = self.braced(p + 1)
            clean = re.sub(r"\\(mathrm|text|mathit|textrm|operatorname)\s*", "", raw)
            clean = re.sub(r"[{}\s]", "", clean)
            if clean.startswith("\\") and clean[1:] in _GREEK_SPELLED:
                clean = _GREEK_SPELLED[clean[1:]]
            if not re.fullmatch(r"[A-Za-z0-9]+", clean):
                raise self.error(f"a subscript {raw!r} is not part of a name matdiff can read",
                                 p, end, hint="use letters and digits in subscripts: W_1, x_i")
            return clean, end
        return "", pos

    def name_with_subscript(self, base_candidates: list[str], start: int, pos: int):
        sub, end = self.subscript(pos)
        if sub:
            cands = []
            for b in base_candidates:
                if sub.isdigit():
                    cands += [b + sub, b + "_" + sub, b + sub.translate(_SUBSCRIPT)]
                else:
                    cands += [b + "_" + sub, b + sub]
            base_candidates = cands
        self.emit("NAME", self.pick(base_candidates), start, end)
        return end

    def greek(self, word: str) -> list[str] | None:
        if word in _CAPITAL:
            return [_CAPITAL[word], word]
        if word in _GREEK_CHAR:
            spelled = _GREEK_SPELLED[word]
            if spelled == "sigma":  # σ is the sigmoid: the variable is sigma
                return ["sigma"]
            return [_GREEK_CHAR[word], spelled]
        return None

    # ---------------------------------------------------------------- bars
    def bar(self, kind: str, start: int, end: int, forced: str | None, left_right: bool):
        """A | or ‖ that opens or closes: forced by \\left/\\right, else decided by what
        precedes it (after an operand, a bar of the kind that is open closes)."""
        opens = forced == "open" or (
            forced is None and not (self.bars and self.bars[-1][0] == kind
                                    and self.last() in _OPERAND_END))
        if opens:
            self.bars.append((kind, start))
            self.emit("NORM_OPEN" if kind == "norm" else "BAR_OPEN",
                      "left" if left_right else "bare", start, end)
            return end
        if not self.bars or self.bars[-1][0] != kind:
            raise self.error("this bar closes nothing", start, end,
                             hint="bars come in pairs: \\|x\\| for a norm, |X| for a determinant")
        self.bars.pop()
        if kind == "norm":
            sub, end2 = self.subscript(end)
            which = {"": "", "2": "2", "F": "F", "Fro": "F", "fro": "F", "1": "1"}.get(sub)
            if which is None:
                raise self.error(f"the norm \\|…\\|_{sub} is not supported", start, end2,
                                 hint="matdiff has \\|x\\|_2 (Euclidean), \\|X\\|_F "
                                 "(Frobenius) and \\|x\\|_1")
            self.emit("NORM_CLOSE", which, start, end2)
            return end2
        self.emit("BAR_CLOSE", "bare", start, end)
        return end

    # ---------------------------------------------------------------- superscripts
    def superscript(self, pos: int) -> int:
        """At `^`: a transpose, an inverse, an element-wise power ^{\\circ k} or a power."""
        text = self.text
        start = pos
        p = self.skip_space(pos + 1)
        raw, end = self.braced(p)
        braced = p < len(text) and text[p] == "{"
        norm = re.sub(r"\s+|\\[,;:!]|\\mkern-?[\d.]*mu|\{\}", "", raw)
        norm = norm.replace("{", "").replace("}", "") if norm.count("{") == norm.count("}") \
            else norm
        if not braced and raw == "-":  # X^-1, X^-\top (not LaTeX, but typed)
            raw2, end2 = self.braced(end)
            if raw2 == "1":
                self.emit("INVERSE", "^-1", start, end2)
                return end2
            if raw2 in _TRANSPOSES:
                self.emit("INVTRANSPOSE", "^-T", start, end2)
                return end2
        if norm in {t.replace("{", "").replace("}", "") for t in _TRANSPOSES}:
            self.emit("TRANSPOSE", "^T", start, end)
            return end
        if norm in _INVERSES:
            self.emit("INVERSE", "^-1", start, end)
            return end
        if norm in ("+", r"\dagger"):  # W^{+}: the pseudo-inverse, as matdiff prints pinv
            self.emit("PINV", "^+", start, end)
            return end
        if norm in {t.replace("{", "").replace("}", "") for t in _INV_TRANSPOSES}:
            self.emit("INVTRANSPOSE", "^-T", start, end)
            return end
        if braced and re.match(r"\s*\\circ\b", raw):  # ^{\circ 2}: element-wise power
            inner = text.index("\\circ", p) + len("\\circ")
            self.emit("ECIRC", ".^", start, inner)
            return inner
        self.emit("CARET", "^", start, start + 1)
        if braced:
            return p  # the { … } group is lexed as a group
        # one character or command: x^2 is x², x^23 is x²·3 (as LaTeX reads it)
        if raw.isdigit():
            self.emit("NUMBER", raw, p, end)
            return end
        return p

    # ---------------------------------------------------------------- main loop
    def run(self) -> list:
        text = self.text
        pos = 0
        while True:
            pos = self.skip_space(pos)
            if pos >= len(text):
                break
            pos = self.step(pos)
        if self.bars:
            kind, at = self.bars[-1]
            raise self.error("this bar is never closed", at,
                             hint="close the norm with \\|" if kind == "norm" else
                             "close it with |")
        return self.out

    def step(self, pos: int) -> int:
        text = self.text
        ch = text[pos]
        if ch == "\\":
            return self.command(pos)
        if ch.isdigit() or (ch == "." and text[pos + 1:pos + 2].isdigit()):
            m = re.match(r"\d+(\.\d+)?|\.\d+", text[pos:])
            end = pos + m.end()
            self.emit("NUMBER", m.group(0), pos, end)
            return end
        if ch.isalpha() and ch.isascii():
            return self.letters(pos)
        if ch in _SINGLE_CHAR or ch == ".":
            return self.single(ch, pos)
        if ch in "αβγδεζηθικλμνξπρτυφχψωΓΔΘΛΞΠΣΥΦΨΩ":
            return self.name_with_subscript([ch], pos, pos + 1)
        if ch == "σ":
            self.emit("FUNC", "sigmoid", pos, pos + 1)
            return pos + 1
        if ch == "|" or ch == "‖":
            kind = "norm" if ch == "‖" or text.startswith("||", pos) else "abs"
            end = pos + (2 if text.startswith("||", pos) else 1)
            return self.bar(kind, pos, end, None, False)
        if ch == "^":
            return self.superscript(pos)
        if ch in "'ᵀ⊤":
            self.emit("TRANSPOSE", "'", pos, pos + 1)
            return pos + 1
        if ch == "⁻" and text.startswith("⁻¹", pos):
            self.emit("INVERSE", "⁻¹", pos, pos + 2)
            return pos + 2
        if ch == "_":
            raise self.error("a subscript must follow a name", pos,
                             hint="write x_1 or W_{12}; \\|x\\|_2 for a norm")
        if ch == "=":
            raise self.error("'=' is not part of an expression", pos,
                             hint="paste only the expression f, or only the claimed gradient")
        raise self.error(f"unexpected character {ch!r}", pos)

    def single(self, ch: str, pos: int) -> int:
        text = self.text
        if ch == ".":
            two = text[pos:pos + 2]
            if two in (".*", "./", ".^"):
                self.emit({".*": "HAD", "./": "HDIV", ".^": "ECARET"}[two], two, pos, pos + 2)
                return pos + 2
            raise self.error("unexpected '.'", pos,
                             hint="a '.' belongs to a number (0.5) or to .* ./ .^")
        kind = _SINGLE_CHAR[ch]
        self.emit(kind, ch, pos, pos + 1)
        return pos + 1

    def letters(self, pos: int) -> int:
        text = self.text
        rest = text[pos:]
        # a known multi-letter name of the problem (mu, W1, sigma, …) reads whole
        for name in sorted((n for n in self.known if len(n) > 1 and n.isascii()),
                           key=len, reverse=True):
            if rest.startswith(name) and not re.match(r"[A-Za-z0-9]", rest[len(name):] or " "):
                return self.name_with_subscript([name], pos, pos + len(name))
        for word in _PLAIN_CALLS:
            if rest.startswith(word) and re.match(r"\s*(\(|\\left\s*\(|\\bigl?\s*\()",
                                                  rest[len(word):]):
                func = FUNCTIONS.get(word, word)
                self.emit("FUNC", func, pos, pos + len(word))
                return pos + len(word)
        m = re.match(r"[A-Za-z]\d*", rest)
        if m.group(0) == "e" and rest[1:].lstrip().startswith("^") and "e" not in self.known:
            self.emit("FUNC", "exp", pos, pos + 1)
            p = self.skip_space(pos + 1)
            raw, end = self.braced(p + 1)
            self.emit("_LPAR", "(", p, p + 1)
            sub = _Lexer(raw, self.known)
            sub.run()
            offset = self.skip_space(p + 1) + (1 if text[self.skip_space(p + 1)] == "{" else 0)
            for t in sub.out:
                self.emit(t.type, t.value, offset + t.start_pos, offset + t.end_pos)
            self.emit("_RPAR", ")", end - 1, end)
            return end
        return self.name_with_subscript([m.group(0)], pos, pos + m.end())

    def command(self, pos: int) -> int:
        text = self.text
        m = re.match(r"\\([A-Za-z]+|.)", text[pos:], re.S)
        if m is None:
            raise self.error("a lone backslash", pos)
        word = m.group(1)
        end = pos + m.end()
        if word in _SIZES:  # \left( \right\| \bigl| : the delimiter that follows
            p = self.skip_space(end)
            dm = re.match(r"\\\||\\[A-Za-z]+|\\\{|\\\}|.", text[p:], re.S)
            if dm is None:
                raise self.error(f"\\{word} needs a delimiter after it", pos, end)
            delim = dm.group(0)
            dend = p + dm.end()
            forced = "open" if word in _OPENERS else "close" if word in _CLOSERS else None
            if delim == ".":
                return dend  # \left. … \right|: an invisible delimiter
            return self.delimiter(delim, pos, dend, forced, True)
        if word in ("|", "Vert", "lVert", "rVert", "vert", "lvert", "rvert", "{", "}",
                    "lbrace", "rbrace", "lbrack", "rbrack", "langle", "rangle", "mid"):
            forced = "open" if word in ("lVert", "lvert") else \
                "close" if word in ("rVert", "rvert") else None
            return self.delimiter(m.group(0), pos, end, forced, False)
        if word in _PRODUCTS:
            self.emit(_PRODUCTS[word], m.group(0), pos, end)
            return end
        if word in ("frac", "tfrac", "dfrac", "cfrac"):
            return self.frac(pos, end)
        if word == "sqrt":
            self.emit("SQRT", "sqrt", pos, end)
            return self.group_or_char(end)
        if word == "log":  # \log\det X and \log|X| are log-determinants
            p = self.skip_space(end)
            if text.startswith("\\det", p) and not re.match(r"[A-Za-z]", text[p + 4:p + 5]):
                self.emit("FUNC", "logdet", pos, p + 4)
                return p + 4
        if word in _COMMAND_FUNCTIONS:
            self.emit("FUNC", FUNCTIONS[word], pos, end)
            return end
        if word in _TEXT_WRAPPERS:
            raw, rend = self.braced(end)
            inner = raw.replace("\\_", "_").strip()
            if inner in FUNCTIONS:
                self.emit("FUNC", FUNCTIONS[inner], pos, rend)
                return rend
            if word in ("operatorname", "mathop"):
                raise self.error(f"matdiff has no function {inner!r}", pos, rend,
                                                  hint="the functions are " + ", ".join(sorted(
                                     set(CALLS) - set(RESERVED))))
            if inner == "T":
                raise self.error("a transpose is written as a superscript", pos, rend,
                                 hint="write X^{\\mathsf{T}} or X^\\top")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", inner):
                return self.wrapped(inner, pos, rend, word)
            cands = [inner]
            if inner in _LATIN_LIKE_CAPITAL:
                cands.append(_LATIN_LIKE_CAPITAL[inner])
            return self.name_with_subscript(cands, pos, rend)
        if word in _BOLD_WRAPPERS:
            raw, rend = self.braced(end)
            return self.wrapped(raw.strip(), pos, rend, word)
        if word == "sigma":  # \sigma(…) is the sigmoid, \sigma alone the variable sigma
            p = self.skip_space(end)
            if re.match(r"\(|\\left\s*\(|\\bigl?\s*\(", text[p:]):
                self.emit("FUNC", "sigmoid", pos, end)
                return end
        cands = self.greek(word)
        if cands is not None:
            return self.name_with_subscript(cands, pos, end)
        if word in ("top", "intercal", "prime"):
            self.emit("TRANSPOSE", "'", pos, end)
            return end
        if word in _UNSUPPORTED and _UNSUPPORTED[word]:
            raise self.error(f"\\{word} is not supported", pos, end, hint=_UNSUPPORTED[word])
        if word == "I" or word == "Id":
            self.emit("NAME", "I", pos, end)
            return end
        if pos > 0 and re.match(r"[A-Za-z0-9)']", text[pos - 1]) and text.count("\\") == 1:
            # A\b: MATLAB's left division, read as a LaTeX command
            raise self.error(f"'{text[pos - 1]}\\{word}' reads as the LaTeX command \\{word}",
                             pos, end, hint="matdiff has no backslash solve: write inv(A)*b "
                                            "for A\\b")
        raise self.error(f"unknown LaTeX command \\{word}", pos, end,
                         hint="matdiff reads the maths of an expression: \\frac, \\top, \\log, "
                              "\\det, \\operatorname{tr}, \\|…\\|, \\mathbf{x}, Greek letters")

    def wrapped(self, inner: str, pos: int, end: int, word: str) -> int:
        """\\mathbf{x}, \\boldsymbol{\\mu}, \\bm{1}, \\boldsymbol{\\sigma}: a name, ones, or σ."""
        inner = re.sub(r"\s+", "", inner)
        if inner in ("1", "\\mathbf{1}", "\\one"):
            self.emit("ONES", "1", pos, end)
            return end
        if inner == "0":
            self.emit("ONES", "0", pos, end)
            return end
        if inner in ("I", "Id") and word in ("mathbf", "mathbb", "boldsymbol", "bm"):
            return self.name_with_subscript(["I"], pos, end)
        if inner == "\\sigma":  # bold σ: the sigmoid (matdiff's own LaTeX output); σ' too
            p = self.skip_space(end)
            if self.text.startswith("'", p) or self.text.startswith("^{\\prime}", p):
                q = p + (1 if self.text.startswith("'", p) else len("^{\\prime}"))
                self.emit("FUNC", "sigmoid'", pos, q)
                return q
            self.emit("FUNC", "sigmoid", pos, end)
            return end
        if inner.startswith("\\"):
            cands = self.greek(inner[1:])
            if cands is None:
                raise self.error(f"\\{word}{{{inner}}} is not a name matdiff can read", pos, end)
            return self.name_with_subscript(cands, pos, end)
        inner = inner.replace("\\_", "_")
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", inner):
            return self.name_with_subscript([inner], pos, end)
        raise self.error(f"\\{word}{{{inner}}} is not a name matdiff can read", pos, end,
                         hint="write \\mathbf{x}, \\boldsymbol{\\mu} or \\mathbf{1}")

    def delimiter(self, delim: str, start: int, end: int, forced: str | None,
                  left_right: bool) -> int:
        if delim in ("(", "[", "\\{", "\\lbrace", "\\lbrack"):
            self.emit("_LPAR", "(", start, end)
        elif delim in (")", "]", "\\}", "\\rbrace", "\\rbrack"):
            self.emit("_RPAR", ")", start, end)
        elif delim in ("\\|", "\\Vert", "\\lVert", "\\rVert", "‖"):
            forced = forced or ("open" if delim == "\\lVert" else
                                "close" if delim == "\\rVert" else None)
            return self.bar("norm", start, end, forced, left_right)
        elif delim in ("|", "\\vert", "\\lvert", "\\rvert", "\\mid"):
            forced = forced or ("open" if delim == "\\lvert" else
                                "close" if delim == "\\rvert" else None)
            return self.bar("abs", start, end, forced, left_right)
        else:
            raise self.error(f"{delim} is not a bracket matdiff reads", start, end,
                             hint="use ( ), [ ], { }, |…| or \\|…\\|")
        return end

    def group_or_char(self, pos: int) -> int:
        """An argument written as {…} (lexed normally) or as one character (\\frac12)."""
        p = self.skip_space(pos)
        if p < len(self.text) and self.text[p] == "{":
            self.emit("_LBRACE", "{", p, p + 1)
            return p + 1
        raw, end = self.braced(p)
        self.emit("_LBRACE", "{", p, p)
        sub = _Lexer(raw, self.known)
        sub.run()
        for t in sub.out:
            self.emit(t.type, t.value, p + t.start_pos, p + t.end_pos)
        self.emit("_RBRACE", "}", end, end)
        return end

    def frac(self, pos: int, end: int) -> int:
        """\\frac{a}{b}: both groups are lexed here (with their braces)."""
        self.emit("FRAC", "frac", pos, end)
        first_end = self._group_tokens(end)
        return self._group_tokens(first_end)

    def _group_tokens(self, pos: int) -> int:
        p = self.skip_space(pos)
        if p < len(self.text) and self.text[p] == "{":
            raw, end = self.braced(p)
            self.emit("_LBRACE", "{", p, p + 1)
            sub = _Lexer(raw, self.known)
            sub.run()
            for t in sub.out:
                self.emit(t.type, t.value, p + 1 + t.start_pos, p + 1 + t.end_pos)
            self.emit("_RBRACE", "}", end - 1, end)
            return end
        return self.group_or_char(p)


_SINGLE_CHAR = {"+": "PLUS", "-": "MINUS", "*": "MUL", "@": "MUL", "·": "MUL", "/": "DIV",
                "(": "_LPAR", ")": "_RPAR", "[": "_LPAR", "]": "_RPAR", "{": "_LBRACE",
                "}": "_RBRACE", ",": "_COMMA", "⊙": "HAD", "∘": "HAD", "−": "MINUS",
                "⊗": "KRON"}


# ------------------------------------------------------------------- the syntax nodes

class _LatexBuilder(SyntaxBuilder):
    def name(self, c):
        span = token_span(c[0])
        count_operand(span)
        return Name(span, 1, str(c[0]))

    def number(self, c):
        span = token_span(c[0])
        count_operand(span)
        return Num(span, 1, str(c[0]))

    def mul(self, c):
        return self._chain("product", c[0], "*", c[2])

    def kron(self, c):
        a, b = close(c[0]), close(c[2])
        span = join_spans(a.span, b.span)
        return Call(span, checked_depth(max(a.depth, b.depth) + 1, span), "kron",
                    token_span(c[1]), (a, b), calls=max(a.calls, b.calls) + 1)

    def add(self, c):
        return self._chain("sum", c[0], "+", c[2])

    def sub(self, c):
        return self._chain("sum", c[0], "-", c[2])

    def hadamard(self, c):
        return self._chain("product", c[0], ".*", c[2])

    def hdiv(self, c):
        return self._chain("product", c[0], "./", c[2])

    def div(self, c):
        return self._chain("product", c[0], "/", c[2])

    def neg(self, c):
        x = close(c[1])
        start = c[0].start_pos
        return Unary((start, x.span[1]), checked_depth(x.depth + 1, x.span), "-", x,
                     calls=x.calls)

    def pos(self, c):
        return close(c[1])

    def pow(self, c):
        return self._power("^", [c[0], c[2]])

    def epow(self, c):
        return self._power(".^", [c[0], c[2]])

    def pseudo_inverse(self, c):
        x = close(c[0])
        span = (x.span[0], token_span(c[1])[1])
        return Call(span, checked_depth(x.depth + 1, span), "pinv", token_span(c[1]), (x,),
                    calls=x.calls + 1)

    def invtranspose(self, c):
        inner = self._postfix("inverse", c)
        return Postfix(inner.span, inner.depth + 1, "transpose", inner, calls=inner.calls)

    def ones(self, c):
        tok = c[0]
        span = token_span(tok)
        count_operand(span)
        return Call(span, 2, "vector", span, (Num(span, 1, str(tok)),), calls=1)

    def call(self, c):
        func = c[0]
        if str(func) == "sigmoid'":  # σ'(x) = σ(x) − σ(x).^2 (any kind of x)
            x = close(c[1])
            span = (func.start_pos, x.span[1] + 1)
            depth = checked_depth(x.depth + 3, span)
            sig = Call(span, x.depth + 1, "sigmoid", token_span(func), (x,), calls=x.calls + 1)
            square = Power(span, x.depth + 2, ".^", sig, Num(span, 1, "2"), calls=x.calls + 1)
            return Chain(span, depth, sig, (("-", square),), "sum", calls=x.calls + 1)
        return super().call(c)

    def sqrt(self, c):
        x = close(c[1])
        span = (c[0].start_pos, x.span[1] + 1)
        return Call(span, checked_depth(x.depth + 1, span), "sqrt", token_span(c[0]), (x,),
                    calls=x.calls + 1)

    def frac(self, c):
        a, b = close(c[1]), close(c[2])
        span = (c[0].start_pos, b.span[1] + 1)
        depth = checked_depth(max(a.depth, b.depth) + 1, span)
        return Chain(span, depth, a, (("/", b),), "product", calls=max(a.calls, b.calls))

    def norm(self, c):
        x = close(c[1])
        span = (c[0].start_pos, c[2].end_pos)
        func = "norm1" if str(c[2]) == "1" else "norm2"
        return Call(span, checked_depth(x.depth + 1, span), func, span, (x,),
                    calls=x.calls + 1, norm_subscript=str(c[2]))

    def bars(self, c):
        x = close(c[1])
        span = (c[0].start_pos, c[2].end_pos)
        func = "abs"
        if str(c[0]) == "bare" and _leading_name_is_matrix(x):
            func = "det"
        return Call(span, checked_depth(x.depth + 1, span), func, span, (x,),
                    calls=x.calls + 1)



def _leading_name_is_matrix(x: Syn) -> bool:
    from .shapes import default_kind

    while True:
        if isinstance(x, Name):
            return default_kind(x.name) == "matrix" and x.name not in ("I", "eye")
        if isinstance(x, Chain):
            x = x.first
        elif isinstance(x, (Postfix, Unary)):
            x = x.operand
        elif isinstance(x, Power):
            x = x.base
        else:
            return False


class _CustomLexer:
    """Lark's custom-lexer protocol: tokens of the text being parsed."""

    def __init__(self, lexer_conf):
        pass

    def lex(self, data):
        yield from _Lexer(data, KNOWN_NAMES.get()).run()


@lru_cache(maxsize=1)
def _parser():
    from lark import Lark
    from lark.lexer import Lexer
    from lark.visitors import Transformer

    class _Inline(Transformer):
        pass

    inline = _Inline()
    b = _LatexBuilder()
    for name in ("add", "sub", "mul", "hadamard", "hdiv", "div", "kron", "juxt", "neg", "pos",
                 "pow", "epow", "transpose", "inverse", "invtranspose", "pseudo_inverse", "number",
                 "name", "ones", "call", "sqrt", "frac", "norm", "bars"):
        setattr(inline, name, getattr(b, name))

    class LatexLexer(_CustomLexer, Lexer):
        pass

    return Lark(_grammar_text(), parser="lalr", lexer=LatexLexer, transformer=inline,
                maybe_placeholders=False)


def _grammar_text() -> str:
    from importlib import resources
    from pathlib import Path

    packaged = resources.files("matdiff").joinpath("grammar", "latex.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammar" / "latex.lark").read_text("utf-8")


_LABELS = {"_RPAR": "')'", "_RBRACE": "'}'", "NORM_CLOSE": "a closing \\|",
           "BAR_CLOSE": "a closing |", "$END": "the end of the input"}


def parse_latex(text: str) -> Syn:
    """LaTeX text → syntax nodes; ParseError with the LaTeX column on bad input."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

    if not text.strip():
        raise ParseError("empty expression", (0, max(1, len(text))), text)
    token = PARSE_STATE.set((text, [0]))
    try:
        return close(_parser().parse(text))
    except ParseError as e:
        raise e.with_source(text) from None
    except VisitError as e:
        if isinstance(e.orig_exc, ParseError):
            raise e.orig_exc.with_source(text) from None
        raise
    except UnexpectedEOF:
        end = len(text.rstrip())
        raise ParseError("unexpected end of the LaTeX input (an operand or a closing bracket "
                         "is missing)", (end, end + 1), text) from None
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            end = len(text.rstrip())
            expected = sorted({_LABELS.get(t, "") for t in e.expected} - {""})
            raise ParseError("unexpected end of the LaTeX input" +
                             (f": expected {' or '.join(expected)}" if expected else
                              " (an operand is missing)"), (end, end + 1), text) from None
        span = (tok.start_pos, max(tok.end_pos, tok.start_pos + 1))
        shown = text[tok.start_pos:tok.end_pos] or str(tok)
        hint = None
        if tok.type in ("_RPAR", "_RBRACE", "NORM_CLOSE", "BAR_CLOSE"):
            hint = "an operand is missing before it, or the brackets do not match"
        raise ParseError(f"unexpected {shown!r} in the LaTeX input", span, text,
                         hint=hint) from None
    except UnexpectedCharacters as e:  # not raised by the custom lexer; kept for safety
        raise ParseError("unexpected character", (e.pos_in_stream, e.pos_in_stream + 1),
                         text) from None
    finally:
        PARSE_STATE.reset(token)


# ------------------------------------------------------------------- back to plain text

def to_plain(syn: Syn) -> str:
    """The syntax nodes in the plain language, fully bracketed: how a LaTeX input was read."""
    if isinstance(syn, Num):
        return syn.text
    if isinstance(syn, Name):
        return syn.name
    if isinstance(syn, Call):
        return f"{syn.func}({', '.join(to_plain(a) for a in syn.args)})"
    if isinstance(syn, Unary):
        return f"{syn.op}{_bracket(syn.operand)}"
    if isinstance(syn, Power):
        return f"{_bracket(syn.base)}{syn.op}{_bracket(syn.exponent)}"
    if isinstance(syn, Postfix):
        return f"{_bracket(syn.operand)}" + ("'" if syn.op == "transpose" else "^-1")
    if isinstance(syn, Chain):
        out = [_bracket(syn.first) if syn.level == "product" else to_plain(syn.first)]
        for op, x in syn.rest:
            if syn.level == "sum":
                out.append(f" {op} {_bracket(x) if isinstance(x, Unary) else to_plain(x)}")
            else:
                out.append(f"{op or '*'}{_bracket(x)}")
        return "".join(out)
    raise TypeError(type(syn).__name__)


def _bracket(syn: Syn) -> str:
    text = to_plain(syn)
    if isinstance(syn, (Num, Name, Call)) and not text.startswith("-"):
        return text
    return f"({text})"
