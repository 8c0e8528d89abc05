"""Code generation, in two layers:

    plan.py            backend-neutral: the plan of a function body (product order, shared
                       sub-products, factorizations, fusions, use counts)
    product_order.py   matrix-chain orders and their cost polynomials (run-time choices)
    backends/numpy.py  the NumPy/SciPy spelling of a plan: helpers, reserved names, lowering
    module.py          the emitted module: functions, docstrings, argument checks

A second backend is a new module under backends/, spelling the same plans."""

from .module import Extra, check_lines, inputs_function, numpy_module
from .naming import function_name, python_name

__all__ = ["Extra", "check_lines", "function_name", "inputs_function", "numpy_module",
           "python_name"]
