"""Exact cross-check with SymPy: two expressions evaluated on explicit matrices whose
entries are symbols (3×3 and 3-vectors, or 2×2 with transcendental functions; symmetric
matrices with mirrored symbols), so an
identity is proved at those sizes rather than sampled at random points.

The difference of the two sides is brought to a canonical rational form (`sympy.cancel`).
Zero proves equality at those sizes. A nonzero rational function in the entries proves
that they differ (it vanishes only on a set of measure zero). Transcendental functions
(exp, log, σ, …) enter as SymPy functions of the entries; there a nonzero residue after
`cancel` and a bounded `simplify` leaves the question open (None), since relations such as
exp(a)exp(b) = exp(a + b) are not all applied by a canonical form."""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass

from . import expr as E

# 3×3 for rational expressions: at 2×2 a Cayley–Hamilton identity (A² = tr(A)A − det(A)I)
# would pass as equality. With exp, σ, … the entries grow fast, and 2×2 keeps SymPy quick.
RATIONAL_SIZE, TRANSCENDENTAL_SIZE = 3, 2
TRANSCENDENTAL_OPS = {"fn", "softmax", "logsumexp", "logdet", "norm2", "norm1"}
MAX_NODES = 400  # beyond this, symbolic 3×3 entries grow too large to settle in milliseconds


def _sympy():
    import sympy

    return sympy


def _scalar(sp, v):
    return sp.Matrix([[v]])


def _elementwise(fn):
    return lambda sp, n, a: a[0].applyfunc(lambda x: fn(sp, x))


# one entry per function of the language that SymPy represents exactly
FUNCTIONS = {
    "exp": lambda sp, x: sp.exp(x),
    "log": lambda sp, x: sp.log(x),
    "sqrt": lambda sp, x: sp.sqrt(x),
    "sin": lambda sp, x: sp.sin(x),
    "cos": lambda sp, x: sp.cos(x),
    "tan": lambda sp, x: sp.tan(x),
    "tanh": lambda sp, x: sp.tanh(x),
    "arctan": lambda sp, x: sp.atan(x),
    "sigmoid": lambda sp, x: 1 / (1 + sp.exp(-x)),
    "sigmoid'": lambda sp, x: sp.exp(-x) / (1 + sp.exp(-x)) ** 2,
    "softplus": lambda sp, x: sp.log(1 + sp.exp(x)),
    # piecewise: a zero residue still proves equality; anything else is left open
    "abs": lambda sp, x: sp.Abs(x),
    "sign": lambda sp, x: sp.sign(x),
    "relu": lambda sp, x: sp.Max(x, 0),
}


def _hadamard(a):
    out = a[0]
    for b in a[1:]:
        out = out.multiply_elementwise(b)
    return out


def _const(sp, n):
    value = n.attr
    return _scalar(sp, sp.Rational(value.numerator, value.denominator)
                   if hasattr(value, "numerator") else sp.nsimplify(value))


def _pow(sp, n, a):
    return a[0].applyfunc(lambda x: x ** a[1][0, 0])


def _softmax(sp, a):
    e = a.applyfunc(sp.exp)
    return e / sum(e)


OPS = {
    "add": lambda sp, n, a: sum(a[1:], a[0]),
    "scale": lambda sp, n, a: a[1] * a[0][0, 0],
    "matmul": lambda sp, n, a: _product(a),
    "transpose": lambda sp, n, a: a[0].T,
    "inv": lambda sp, n, a: a[0].adjugate(method="berkowitz") / a[0].det(method="berkowitz"),
    "matpow": lambda sp, n, a: a[0] ** n.attr,
    "pow": _pow,
    "epow": _pow,
    "hadamard": lambda sp, n, a: _hadamard(a),
    "hdiv": lambda sp, n, a: a[0].multiply_elementwise(a[1].applyfunc(lambda x: 1 / x)),
    "tr": lambda sp, n, a: _scalar(sp, a[0].trace()),
    "det": lambda sp, n, a: _scalar(sp, a[0].det(method="berkowitz")),
    "logdet": lambda sp, n, a: _scalar(sp, sp.log(a[0].det(method="berkowitz"))),
    "sum": lambda sp, n, a: _scalar(sp, sum(a[0])),
    "norm2": lambda sp, n, a: _scalar(sp, sp.sqrt(sum(x ** 2 for x in a[0]))),
    "norm1": lambda sp, n, a: _scalar(sp, sum(sp.Abs(x) for x in a[0])),
    "logsumexp": lambda sp, n, a: _scalar(sp, sp.log(sum(sp.exp(x) for x in a[0]))),
    "softmax": lambda sp, n, a: _softmax(sp, a[0]),
    "diag_embed": lambda sp, n, a: sp.diag(*list(a[0])),
    "diag_extract": lambda sp, n, a: sp.Matrix([a[0][i, i] for i in range(a[0].rows)]),
    "const": lambda sp, n, a: _const(sp, n),
}
SHAPED = {  # constants whose value is fixed by their shape
    "zero": lambda sp, rows, cols: sp.zeros(rows, cols),
    "ones": lambda sp, rows, cols: sp.ones(rows, cols),
    "eye": lambda sp, rows, cols: sp.eye(rows),
}


def _product(a):
    out = a[0]
    for b in a[1:]:
        out = out * b
    return out


def feasible(*roots: E.Node) -> bool:
    """Whether every operation has an exact SymPy meaning and the expressions are small."""
    nodes = {n for r in roots for n in E.postorder(r)}
    if len(nodes) > MAX_NODES:
        return False
    return all(n.op in OPS or n.op in SHAPED or n.op == "var" or
               (n.op == "fn" and n.attr in FUNCTIONS) for n in nodes)


def _symbols(sp, name: str, kind: str, shape, size: int):
    rows, cols = (1 if d is E.ONE else size for d in shape)
    if kind in ("symmetric", "spd"):
        return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}",
                                                           real=True))
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def evaluate(node: E.Node, variables: dict[str, E.Node], cache: dict, size: int):
    """The SymPy matrix of node, every dimension `size`, variables as matrices of symbols."""
    sp = _sympy()
    for n in E.postorder(node):
        if n in cache:
            continue
        if n.op == "var":
            cache[n] = _symbols(sp, n.attr[0], variables[n.attr[0]].attr[1], n.shape, size)
        elif n.op == "fn":
            cache[n] = _elementwise(FUNCTIONS[n.attr])(sp, n, [cache[n.args[0]]])
        elif n.op in SHAPED:
            rows, cols = (1 if d is E.ONE else size for d in n.shape)
            cache[n] = SHAPED[n.op](sp, rows, cols)
        else:
            cache[n] = OPS[n.op](sp, n, [cache[a] for a in n.args])
    return cache[node]


@dataclass
class Outcome:
    equal: bool | None  # True proved, False disproved, None not settled (or not covered)
    residue: object = None  # the SymPy matrix a − b after cancellation
    size: int = 0  # the size every dimension had
    note: str = ""  # why it is not settled, when it is not


# SymPy's cancel/gcd on 3×3 symbolic inverses and powers can run for minutes and take
# hundreds of MB; past this budget the verdict rests on the high-precision numeric test.
TIME_BUDGET = 1.5


class _OutOfTime(Exception):
    pass


@contextlib.contextmanager
def _time_budget(seconds: float):
    """Raise _OutOfTime in the block after `seconds` (a timer signal; main thread only —
    elsewhere the block is not run at all, since nothing could stop it)."""
    if threading.current_thread() is not threading.main_thread() or \
            not hasattr(signal, "setitimer"):
        raise _OutOfTime("not attempted outside the main thread")

    def expire(signum, frame):
        raise _OutOfTime(f"SymPy ran past its budget of {seconds:g} s of CPU time")

    # CPU time (ITIMER_PROF), not wall time: the same budget on a loaded machine
    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def equal(a: E.Node, b: E.Node, variables: dict[str, E.Node],
          budget: float = TIME_BUDGET) -> Outcome:
    """Whether a = b identically at the symbolic sizes, within a time budget."""
    if a is b:  # interned: the same formula
        return Outcome(True, None, 0, "the same formula")
    if not feasible(a, b):
        return Outcome(None, note="an operation SymPy cannot represent exactly, or too large")
    try:
        with _time_budget(budget):
            return _equal(a, b, variables)
    except _OutOfTime as e:
        return Outcome(None, note=str(e))
    except RecursionError:
        return Outcome(None, note="too deep for SymPy")


def _equal(a: E.Node, b: E.Node, variables: dict[str, E.Node]) -> Outcome:
    sp = _sympy()
    cache: dict = {}
    size = TRANSCENDENTAL_SIZE if any(n.op in TRANSCENDENTAL_OPS for r in (a, b)
                                      for n in E.postorder(r)) else RATIONAL_SIZE
    try:
        difference = evaluate(a, variables, cache, size) - evaluate(b, variables, cache, size)
    except (ZeroDivisionError, ValueError, TypeError):  # e.g. a singular symbolic matrix
        return Outcome(None, note="SymPy could not evaluate it")
    residue = difference.applyfunc(sp.cancel)
    if residue.is_zero_matrix:
        return Outcome(True, residue, size)
    if all(entry.is_rational_function() for entry in residue):
        return Outcome(False, residue, size)
    residue = residue.applyfunc(lambda x: sp.simplify(sp.expand_log(x, force=True)))
    if residue.is_zero_matrix:
        return Outcome(True, residue, size)
    return Outcome(None, residue, size, "SymPy found no canonical form")
