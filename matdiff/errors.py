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
    column: int
    width: int


def _window(source: str, span: Span, width: int = 76) -> _Window:
    start, end = span
    line_start = source.rfind("\n", 0, start) + 1
    line_end = source.find("\n", start)
    if line_end < 0:
        line_end = len(source)
    line = source[line_start:line_end]
    column = start - line_start
    mark = max(1, min(end, line_end) - start)
    # Long inputs (e.g. a 1 MB expression) are cut to a window around the column.
    if len(line) > width:
        left = max(0, column - width // 2)
        right = min(len(line), left + width)
        prefix = "…" if left > 0 else ""
        suffix = "…" if right < len(line) else ""
        line = prefix + line[left:right] + suffix
        column = column - left + len(prefix)
        mark = min(mark, right - (start - line_start) if right > start - line_start else 1)
    return _Window(line, column, max(1, mark))


def caret_excerpt(source: str | None, span: Span | None) -> str:
    if source is None or span is None:
        return ""
    w = _window(source, span)
    return f"  {w.line}\n  {' ' * w.column}{'^' * min(w.width, max(1, len(w.line) - w.column))}"
