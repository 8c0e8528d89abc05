"""Printers for the IR: language text (round-trips), Unicode math, LaTeX; and the reports
of the commands (render.py, report.py, tree.py)."""

from . import text  # noqa: F401  (registers the IR's str(): nodes print in the language)
