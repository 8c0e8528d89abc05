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

from ..ir import expr as E
from ..ops import ELEMENTWISE, table

EXACT = table("exact")  # op → the operator's declared SymPy evaluation (matdiff/ops)

# 3×3 for rational expressions: at 2×2 a Cayley–Hamilton identity (A² = tr(A)A − det(A)I)
# would pass as equality. With exp, σ, … the entries grow fast, and 2×2 keeps SymPy quick.
RATIONAL_SIZE, TRANSCENDENTAL_SIZE = 3, 2
TRANSCENDENTAL_OPS = {"fn", "softmax", "logsumexp", "logdet", "norm2", "norm1"}
MAX_NODES = 400  # beyond this, symbolic 3×3 entries grow too large to settle in milliseconds


def _sympy():
    import sympy

    return sympy


def feasible(*roots: E.Node) -> bool:
    """Whether every operation has an exact SymPy meaning and the expressions are small."""
    nodes = {n for r in roots for n in E.postorder(r)}
    if len(nodes) > MAX_NODES:
        return False
    return all(n.op == "var" or (n.op in EXACT and (
        n.op != "fn" or ELEMENTWISE[n.attr].sympy is not None
        or ELEMENTWISE[n.attr].definition is not None)) for n in nodes)


def _dim_size(d: E.Dim, size: int) -> int:
    """Every dimension `size`; a product dimension (m·p of kron) the product of its factors."""
    if d is E.ONE:
        return 1
    if d in E.PRODUCTS:
        a, b = E.PRODUCTS[d]
        return _dim_size(a, size) * _dim_size(b, size)
    return size


def _symbols(sp, name: str, kind: str, shape, size: int):
    rows, cols = (_dim_size(d, size) for d in shape)
    if kind in ("symmetric", "spd"):
        return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}",
                                                           real=True))
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def evaluate(node: E.Node, variables: dict[str, E.Node], cache: dict, size: int):
    """The SymPy matrix of node, every dimension `size`, variables as matrices of symbols."""
    sp = _sympy()

    def shape_size(shape):
        return tuple(_dim_size(d, size) for d in shape)

    for n in E.postorder(node):
        if n in cache:
            continue
        if n.op == "var":
            cache[n] = _symbols(sp, n.attr[0], variables[n.attr[0]].attr[1], n.shape, size)
        elif n.op == "fn" and ELEMENTWISE[n.attr].sympy is None:
            cache[n] = evaluate(ELEMENTWISE[n.attr].definition(n.args[0]), variables, cache,
                                size)
        else:
            cache[n] = EXACT[n.op](sp, n, [cache[a] for a in n.args], shape_size)
    return cache[node]


@dataclass
class Outcome:
    equal: bool | None  # True proved, False disproved, None not settled (or not covered)
    residue: object = None  # the SymPy matrix a − b after cancellation
    size: int = 0  # the size every dimension had
    note: str = ""  # why it is not settled, when it is not


# SymPy's cancel/gcd on 3×3 symbolic inverses and powers can run for minutes and take
# hundreds of MB; past this budget the verdict rests on the high-precision numeric test.
TIME_BUDGET = 0.8


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
