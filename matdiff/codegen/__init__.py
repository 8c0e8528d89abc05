"""Code generation, in two layers:

    plan.py            backend-neutral: the plan of a function body (product order, shared
                       sub-products, factorizations, fusions, use counts)
    product_order.py   matrix-chain orders and their cost polynomials (run-time choices)
    body.py            what every backend's bodies share: the walk over a plan, run-time
                       order branches, fused forms, the helper library, the lowering context
    backends/numpy.py  the NumPy/SciPy spelling of a plan: helpers, reserved names, checks
    backends/jax.py    jax.numpy and jax.scipy.linalg (traceable; custom_vjp)
    backends/torch.py  PyTorch and torch.linalg (any device; autograd.Function)
    module.py          the emitted module: functions, docstrings, argument checks

A further backend is a new module under backends/, spelling the same plans."""

from .backends import TARGETS
from .body import CannotLower
from .module import (
    Extra,
    check_lines,
    extras_module,
    inputs_function,
    module_source,
    numpy_module,
)
from .naming import function_name, python_name

__all__ = ["TARGETS", "CannotLower", "Extra", "check_lines", "extras_module", "function_name",
           "inputs_function", "module_source", "numpy_module", "python_name"]
