"""Printers for the IR: language text (round-trips), Unicode math, LaTeX, NumPy modules."""
