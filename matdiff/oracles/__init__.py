"""The oracles: float64 evaluation and finite differences (numeric), 50/90-digit
evaluation (precise), SymPy proofs (exact), and check's verdicts built on them
(diagnose)."""
