"""User-facing errors. Each carries the span of the input it is about, so it can be shown
with a caret under the offending column. Anything that is not a MatdiffError is a bug."""

from __future__ import annotations

from dataclasses import dataclass

Span = tuple[int, int]  # [start, end) character offsets into the source text


class MatdiffError(Exception):
    """An error caused by the user's input (exit code 2 on the command line)."""

    def __init__(self, message: str, span: Span | None = None, source: str | None = None,
                 hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source
        self.hint = hint

    def with_source(self, source: str) -> MatdiffError:
        if self.source is None:
            self.source = source
        return self

    def render(self, label: str = "error") -> str:
        """One line with the message, then (when the place is known) the input with a caret."""
        text = f"{label}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        excerpt = caret_excerpt(self.source, self.span)
        return text + ("\n" + excerpt if excerpt else "")

    def __str__(self) -> str:
        return self.render()


class ParseError(MatdiffError):
    """The text is not in the expression language."""


class ShapeError(MatdiffError):
    """The expression has no consistent kinds and shapes."""


class DerivationError(MatdiffError):
    """The request cannot be answered (e.g. gradient of a non-scalar)."""


class InternalError(Exception):
    """matdiff contradicted itself (e.g. its own numerical self-check failed). A bug to report."""


@dataclass(frozen=True)
class _Window:
    line: str
    column: int  # display column of the first marked character
    width: int  # display width of the mark


_TAB = 4
_RAW_WINDOW = 400  # characters of a long line looked at around the error (bounded work)


def _glyph(ch: str) -> tuple[str, int]:
    """How one character is shown in an excerpt and how many columns it takes. Control and
    format characters are escaped (an ESC from stdin must not reach the terminal; a vertical
    tab or U+2028 must not break the excerpt into lines)."""
    import unicodedata

    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
        text = repr(ch)[1:-1]
        if not text.startswith("\\"):
            text = f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"
        return text, len(text)
    if cat.startswith("M"):
        return ch, 0
    return ch, 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _window(source: str, span: Span, width: int = 76) -> _Window:
    start, end = span
    start = max(0, min(start, len(source)))
    line_start = source.rfind("\n", 0, start) + 1
    line_end = source.find("\n", start)
    if line_end < 0:
        line_end = len(source)
    # look only at a bounded stretch of a long line
    lo = max(line_start, start - _RAW_WINDOW)
    hi = min(line_end, start + _RAW_WINDOW)
    pieces: list[str] = []
    col = 0
    mark_start = mark_end = None
    for pos in range(lo, hi + 1):
        if pos == start:
            mark_start = col
        if pos == max(start + 1, min(end, line_end)) and mark_end is None:
            mark_end = col
        if pos == hi:
            break
        ch = source[pos]
        if ch == "\t":
            text = " " * (_TAB - col % _TAB)
            w = len(text)
        else:
            text, w = _glyph(ch)
        pieces.append(text)
        col += w
    if mark_start is None:
        mark_start = col
    if mark_end is None or mark_end <= mark_start:
        mark_end = mark_start + 1
    line = "".join(pieces)
    prefix = "…" if lo > line_start else ""
    suffix = "…" if hi < line_end else ""
    # cut the display to a window around the column
    if len(line) > width:
        left = max(0, min(mark_start - width // 2, len(line) - width))
        right = min(len(line), left + width)
        prefix = "…" if left > 0 or prefix else ""
        suffix = "…" if right < len(line) or suffix else ""
        line = line[left:right]
        mark_start -= left
        mark_end = min(mark_end - left, right - left + 1)
    line = prefix + line + suffix
    mark_start += len(prefix)
    mark_end += len(prefix)
    return _Window(line, mark_start, max(1, mark_end - mark_start))


def caret_excerpt(source: str | None, span: Span | None) -> str:
    if source is None or span is None:
        return ""
    w = _window(source, span)
    lead = "  "
    if "\n" in source.rstrip("\n"):
        number = source.count("\n", 0, max(0, min(span[0], len(source)))) + 1
        lead = f"  line {number}: "
    marks = "^" * min(w.width, max(1, len(w.line) - w.column))
    return f"{lead}{w.line}\n{' ' * len(lead)}{' ' * w.column}{marks}"
