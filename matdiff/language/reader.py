"""Which reader parses an input: the plain expression language (syntax.py) or LaTeX
(latex_syntax.py); both give the same syntax nodes, with spans into the text as typed."""

from __future__ import annotations

import re
from contextvars import ContextVar

from ..errors import ParseError
from .latex_syntax import parse_latex
from .syntax import Syn, parse_plain

# How input text is read: "auto" (LaTeX when the plain language cannot read a text that has a
# backslash or a $), "latex" (--input latex) or "text" (--input text).
INPUT_MODE: ContextVar[str] = ContextVar("matdiff_input_mode", default="auto")


def parse_syntax(text: str) -> Syn:
    """Parse `text` (the plain language, or LaTeX) into syntax nodes; raise ParseError with the
    offending column."""
    mode = INPUT_MODE.get()
    if mode == "latex":
        return parse_latex(text)
    if mode == "auto" and "\\" in text:
        # a backslash: LaTeX first (Ax is A·x there), the plain language if LaTeX fails
        try:
            return parse_latex(text)
        except ParseError as latex_error:
            try:
                return parse_plain(text)
            except ParseError:
                raise latex_error from None
    try:
        return parse_plain(text)
    except ParseError:
        if mode == "auto" and re.search(r"[_^]\{|\{", text):
            # LaTeX without a backslash (W_{1} x, a^{b - 1}, {A + B} x): read it if LaTeX can
            try:
                return parse_latex(text)
            except ParseError:
                pass
        raise
