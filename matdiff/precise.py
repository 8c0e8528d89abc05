"""The IR evaluated in high precision (mpmath, 50 significant digits), for `check`.

Two formulas that agree to 1e-7 in double precision may still differ (a claim off by a
factor 1.0000001); in 50-digit arithmetic their rounding error is ~1e-45 relative, so a
difference above `TOLERANCE` is a real one and agreement below it is equality up to the
conditioning of the point. The inputs are the same float64 data the numeric checks use
(converted exactly), so only the evaluation is more precise."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from . import expr as E

DIGITS = 50
TOLERANCE = 1e-30  # relative; 20 digits of headroom over the working precision
CHECK_DIGITS = 90  # the second, more precise evaluation that bounds the first one's error


class Unsupported(Exception):
    """An operation this evaluator has no rule for (the caller falls back to float64)."""


def _mp():
    import mpmath

    return mpmath


def _elementwise(mp):
    return {
        "exp": mp.exp,
        "log": mp.log,
        "sqrt": mp.sqrt,
        "sin": mp.sin,
        "cos": mp.cos,
        "tan": mp.tan,
        "tanh": mp.tanh,
        "arcsin": mp.asin,
        "arccos": mp.acos,
        "arctan": mp.atan,
        "abs": abs,
        "sign": mp.sign,
        "relu": lambda x: x if x > 0 else mp.mpf(0),
        "sigmoid": lambda x: 1 / (1 + mp.exp(-x)),
        "softplus": lambda x: mp.log1p(mp.exp(x)) if x < 30 else x + mp.log1p(mp.exp(-x)),
    }


def _map(m, fn):
    return m.apply(fn)


def _entries(m):
    return [m[i, j] for i in range(m.rows) for j in range(m.cols)]


def _scalar(mp, v):
    return mp.matrix([[v]])


def _const(mp, value):
    if isinstance(value, Fraction):
        return mp.mpf(value.numerator) / value.denominator
    return mp.mpf(value)


def _power(mp, a, b):
    p = b[0, 0]
    if p == int(p):
        k = int(p)
        return _map(a, lambda x: x ** k)
    return _map(a, lambda x: mp.power(x, p))


def _hadamard(mp, args):
    out = args[0].copy()
    for b in args[1:]:
        for i in range(out.rows):
            for j in range(out.cols):
                out[i, j] *= b[i, j]
    return out


def _hdiv(mp, a, b):
    out = a.copy()
    for i in range(out.rows):
        for j in range(out.cols):
            out[i, j] /= b[i, j]
    return out


def _softmax(mp, a):
    out = a.copy()
    for j in range(a.cols):
        col = [a[i, j] for i in range(a.rows)]
        top = max(col)
        e = [mp.exp(x - top) for x in col]
        total = mp.fsum(e)
        for i in range(a.rows):
            out[i, j] = e[i] / total
    return out


def _logsumexp(mp, a):
    xs = _entries(a)
    top = max(xs)
    return top + mp.log(mp.fsum(mp.exp(x - top) for x in xs))


def _logdet(mp, a):
    d = mp.det(a)
    if d <= 0:
        raise ZeroDivisionError("logdet of a matrix with det ≤ 0")
    return mp.log(d)


def _matmul(args):
    out = args[0]
    for b in args[1:]:
        out = out * b
    return out


def _ops(mp):
    return {
        "add": lambda n, a, s: _add(a),
        "scale": lambda n, a, s: a[1] * a[0][0, 0],
        "matmul": lambda n, a, s: _matmul(a),
        "transpose": lambda n, a, s: a[0].T,
        "inv": lambda n, a, s: mp.inverse(a[0]),
        "matpow": lambda n, a, s: a[0] ** n.attr,
        "pow": lambda n, a, s: _power(mp, a[0], a[1]),
        "epow": lambda n, a, s: _power(mp, a[0], a[1]),
        "hadamard": lambda n, a, s: _hadamard(mp, a),
        "hdiv": lambda n, a, s: _hdiv(mp, a[0], a[1]),
        "tr": lambda n, a, s: _scalar(mp, mp.fsum(a[0][i, i] for i in range(a[0].rows))),
        "det": lambda n, a, s: _scalar(mp, mp.det(a[0])),
        "logdet": lambda n, a, s: _scalar(mp, _logdet(mp, a[0])),
        "sum": lambda n, a, s: _scalar(mp, mp.fsum(_entries(a[0]))),
        "norm1": lambda n, a, s: _scalar(mp, mp.fsum(abs(x) for x in _entries(a[0]))),
        "norm2": lambda n, a, s: _scalar(mp, mp.sqrt(mp.fsum(x * x for x in _entries(a[0])))),
        "logsumexp": lambda n, a, s: _scalar(mp, _logsumexp(mp, a[0])),
        "softmax": lambda n, a, s: _softmax(mp, a[0]),
        "diag_embed": lambda n, a, s: mp.diag([a[0][i, 0] for i in range(a[0].rows)]),
        "diag_extract": lambda n, a, s: mp.matrix([[a[0][i, i]] for i in range(a[0].rows)]),
        "const": lambda n, a, s: _scalar(mp, _const(mp, n.attr)),
        "zero": lambda n, a, s: mp.zeros(*s(n.shape)),
        "ones": lambda n, a, s: mp.ones(*s(n.shape)),
        "eye": lambda n, a, s: mp.eye(s(n.shape)[0]),
    }


def _add(args):
    out = args[0]
    for b in args[1:]:
        out = out + b
    return out


def evaluate(node: E.Node, env: dict[str, np.ndarray], sizes: dict, cache: dict | None = None,
             digits: int = DIGITS):
    """node's value as an mpmath matrix; variables from float64 arrays (converted exactly).
    Raises Unsupported for an operation without a rule here, ZeroDivisionError or
    ValueError where the value does not exist."""
    from .ops import ELEMENTWISE

    mp = _mp()
    values = cache if cache is not None else {}
    functions = _elementwise(mp)
    ops = _ops(mp)

    def size(shape):
        return tuple(1 if d is E.ONE else sizes[d] for d in shape)

    with mp.workdps(digits):
        for n in E.postorder(node):
            if n in values:
                continue
            if n.op == "var":
                values[n] = mp.matrix(np.asarray(env[n.attr[0]], dtype=float).tolist())
            elif n.op == "fn":
                entry = ELEMENTWISE.get(n.attr)
                if entry is not None and entry.definition is not None:
                    values[n] = evaluate(entry.definition(n.args[0]), env, sizes, values,
                                         digits)
                elif n.attr in functions:
                    values[n] = _map(values[n.args[0]], functions[n.attr])
                else:
                    raise Unsupported(n.attr)
            elif n.op in ops:
                values[n] = ops[n.op](n, [values[a] for a in n.args], size)
            else:
                raise Unsupported(n.op)
    return values[node]


def differ(a: E.Node, a_sizes: dict, b: E.Node, b_sizes: dict, env) -> tuple[bool, float]:
    """Whether a and b differ at this point, and their relative difference. Each side is
    evaluated at DIGITS and CHECK_DIGITS; the change between the two bounds its rounding
    error (1 − tanh(x)² at x = 100 cancels 87 digits), and a difference counts only above
    ten times that bound and above CHECK_DIGITS' own resolution."""
    mp = _mp()
    a1, b1 = evaluate(a, env, a_sizes), evaluate(b, env, b_sizes)
    a2 = evaluate(a, env, a_sizes, digits=CHECK_DIGITS)
    b2 = evaluate(b, env, b_sizes, digits=CHECK_DIGITS)
    if (a2.rows, a2.cols) != (b2.rows, b2.cols):
        return True, float("inf")
    with mp.workdps(CHECK_DIGITS):
        xs, ys = _entries(a2), _entries(b2)
        error = max(abs(x - y) for x, y in zip(_entries(a1), xs)) + \
            max(abs(x - y) for x, y in zip(_entries(b1), ys))
        top = max([abs(x) for x in xs] + [abs(y) for y in ys] + [mp.mpf(10) ** -300])
        diff = max(abs(x - y) for x, y in zip(xs, ys))
        relative = float(diff / top)
        return bool(diff > 10 * error and relative > 1e-60), relative
