"""One module per code backend; each spells the backend-neutral plans of codegen/plan.py."""
