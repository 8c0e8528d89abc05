"""The IR evaluated in high precision (mpmath, 50 significant digits), for `check`.

Two formulas that agree to 1e-7 in double precision may still differ (a claim off by a
factor 1.0000001); in 50-digit arithmetic their rounding error is ~1e-45 relative, so a
difference above `TOLERANCE` is a real one and agreement below it is equality up to the
conditioning of the point. The inputs are the same float64 data the numeric checks use
(converted exactly), so only the evaluation is more precise."""

from __future__ import annotations

import numpy as np

from ..ir import expr as E

DIGITS = 50
TOLERANCE = 1e-30  # relative; 20 digits of headroom over the working precision
CHECK_DIGITS = 90  # the second, more precise evaluation that bounds the first one's error


class Unsupported(Exception):
    """An operation this evaluator has no rule for (the caller falls back to float64)."""


def _mp():
    import mpmath

    return mpmath


def _entries(m):
    return [m[i, j] for i in range(m.rows) for j in range(m.cols)]


def evaluate(node: E.Node, env: dict[str, np.ndarray], sizes: dict, cache: dict | None = None,
             digits: int = DIGITS):
    """node's value as an mpmath matrix; variables from float64 arrays (converted exactly).
    Raises Unsupported for an operation without a rule here, ZeroDivisionError or
    ValueError where the value does not exist."""
    from ..ops import ELEMENTWISE, table

    mp = _mp()
    values = cache if cache is not None else {}
    precise = table("precise")

    def size(shape):
        return tuple(1 if d is E.ONE else sizes[d] for d in shape)

    with mp.workdps(digits):
        for n in E.postorder(node):
            if n in values:
                continue
            if n.op == "var":
                values[n] = mp.matrix(np.asarray(env[n.attr[0]], dtype=float).tolist())
            elif n.op == "fn" and ELEMENTWISE[n.attr].mpmath is None and \
                    ELEMENTWISE[n.attr].definition is not None:
                values[n] = evaluate(ELEMENTWISE[n.attr].definition(n.args[0]), env, sizes,
                                     values, digits)
            elif n.op == "fn" and ELEMENTWISE[n.attr].mpmath is None:
                raise Unsupported(n.attr)
            elif n.op in precise:
                values[n] = precise[n.op](mp, n, [values[a] for a in n.args], size)
            else:
                raise Unsupported(n.op)
            value = values[n]
            if any(isinstance(x, mp.mpc) and x.imag for x in
                   (_entries(value) if hasattr(value, "rows") else [value])):
                # mpmath continues log, √, asin, x^p … into the complex numbers, where
                # exp(log(x)) = x again: a value that is not real does not exist here
                raise ValueError(f"{n.op} has no real value here")
    return values[node]


def differ(a: E.Node, a_sizes: dict, b: E.Node, b_sizes: dict, env) -> tuple[bool, float]:
    """Whether a and b differ at this point, and their relative difference. Each side is
    evaluated at DIGITS and CHECK_DIGITS; the change between the two bounds its rounding
    error (1 − tanh(x)² at x = 100 cancels 87 digits), and a difference counts only above
    ten times that bound and above CHECK_DIGITS' own resolution."""
    mp = _mp()
    # a claim 2X + 1e-40·X differs by 5e-41: constants far from 1 widen the digits needed
    extra = _constant_digits(a) + _constant_digits(b)
    a1, b1 = evaluate(a, env, a_sizes, digits=DIGITS + extra), \
        evaluate(b, env, b_sizes, digits=DIGITS + extra)
    a2 = evaluate(a, env, a_sizes, digits=CHECK_DIGITS + extra)
    b2 = evaluate(b, env, b_sizes, digits=CHECK_DIGITS + extra)
    if (a2.rows, a2.cols) != (b2.rows, b2.cols):
        return True, float("inf")
    with mp.workdps(CHECK_DIGITS + extra):
        xs, ys = _entries(a2), _entries(b2)
        error = max(abs(x - y) for x, y in zip(_entries(a1), xs)) + \
            max(abs(x - y) for x, y in zip(_entries(b1), ys))
        top = max([abs(x) for x in xs] + [abs(y) for y in ys] + [mp.mpf(10) ** -300])
        diff = max(abs(x - y) for x, y in zip(xs, ys))
        relative = float(diff / top)
        # a constant written as a double (0.1 is exact, 3.141592653589793 is not π) is known
        # to about 1e-16: differences below that are the literal's, not the formula's
        floor = 1e-13 if _inexact_constants(a) or _inexact_constants(b) else \
            10.0 ** -(60 + extra)
        return bool(diff > 10 * error and relative > floor), relative


def _constant_digits(node: E.Node) -> int:
    """The decimal digits of node's exact constants (numerators and denominators, together,
    since products of constants need them all): 1e-40 and 1 + 1e-40 both need 40 more
    digits to be told from 0 and 1. Capped so that a check costs at most ~700 digits."""
    from fractions import Fraction

    total = 0
    for n in E.walk(node):
        if n.op == "const" and isinstance(n.attr, Fraction):
            total += len(str(abs(n.attr.numerator))) + len(str(n.attr.denominator)) - 2
    return min(total, 600)


def _inexact_constants(node: E.Node) -> bool:
    from fractions import Fraction

    return any(n.op == "const" and not isinstance(n.attr, Fraction) for n in E.walk(node))
