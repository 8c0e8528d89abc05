"""The expression language: text → syntax nodes (plain or LaTeX) → typed IR
with symbolic shapes."""
