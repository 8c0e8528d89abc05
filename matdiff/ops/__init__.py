"""The operator catalogue: each IR operator declared once, with every fact about it.

    registry.py      the Operator record, `declare`, and the lookups the stages use
    combinators.py   rules derived once per family (linear operators, Leibniz products)
    structure.py     sums, scalings, products, transposes, constants
    elementwise.py   element-wise functions: one row each, applied by the operator `fn`
    reductions.py    tr, sum, norms, logsumexp, softmax, diag
    matrix.py        inv, matrix and scalar powers, det, logdet
    kronecker.py     kron, vec and the commutation matrix of the vec forms
    axes.py          axis forms for batches: sum/mean/softmax/logsumexp(X, d), size(X, d)
    matrix_functions.py  expm, logm, sqrtm, eigmax/eigmin, nucnorm, specnorm, chol, pinv
    language.py      the functions of the expression language: name, arity, shape rule, build

Importing this package declares every operator."""

from . import (  # noqa: F401  (declare)
    axes,
    elementwise,
    kronecker,
    matrix,
    matrix_functions,  # noqa: F401  (declare; issue 15)
    reductions,
    structure,
)
from .elementwise import ELEMENTWISE, Elementwise, derivative
from .language import ALIASES, CALLS, RESERVED, Call, canonical, function_names
from .registry import (
    OPERATORS,
    REQUIRED,
    DRule,
    MissingRule,
    Operator,
    PeelRule,
    Spelling,
    rule,
    table,
)

__all__ = ["ALIASES", "CALLS", "RESERVED", "Call", "canonical", "function_names",
    "ELEMENTWISE",
    "Elementwise",
    "derivative",
    "OPERATORS",
    "REQUIRED",
    "DRule",
    "MissingRule",
    "Operator",
    "PeelRule",
    "Spelling",
    "rule",
    "table",
]
