"""Numbers are the oracle: an independent NumPy evaluator of the IR, random data that respects
each variable's kind, and central finite-difference checks of gradients.

Inside the evaluator every value is a 2-D array (scalars 1×1, vectors n×1), so products and
scalings need no special cases; the public boundary uses floats and 1-D vectors."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.special as sp

from . import expr as E
from .ops import ELEMENTWISE

Env = dict[str, np.ndarray]


def _fn_table():
    out = {}
    for name, entry in ELEMENTWISE.items():
        if entry.definition is None:
            out[name] = eval("lambda x: " + entry.numpy.format(x="x"), {"np": np, "sp": sp})
    return out


_FN = _fn_table()


def _inv(x):
    try:
        return np.linalg.inv(x)
    except np.linalg.LinAlgError:  # singular here: no value (the caller tries other data)
        return np.full(x.shape, np.nan)


def _logdet(x):
    sign, value = np.linalg.slogdet(x)
    return value if sign > 0 else np.nan


def _softmax_columns(x):
    return sp.softmax(x, axis=0)


_S = np.ndarray


def _scalar(v) -> _S:
    return np.full((1, 1), v)


EVAL = {
    "add": lambda n, a, s: sum(a[1:], a[0]),
    "scale": lambda n, a, s: a[0] * a[1],
    "matmul": lambda n, a, s: np.linalg.multi_dot(a) if len(a) > 2 else a[0] @ a[1],
    "transpose": lambda n, a, s: a[0].T,
    "inv": lambda n, a, s: _inv(a[0]),
    "matpow": lambda n, a, s: np.linalg.matrix_power(a[0], n.attr),
    "pow": lambda n, a, s: np.power(a[0], a[1]),
    "hadamard": lambda n, a, s: np.prod(np.stack(a), axis=0),
    "hdiv": lambda n, a, s: a[0] / a[1],
    "epow": lambda n, a, s: np.power(a[0], a[1]),
    "tr": lambda n, a, s: _scalar(np.trace(a[0])),
    "det": lambda n, a, s: _scalar(np.linalg.det(a[0])),
    "logdet": lambda n, a, s: _scalar(_logdet(a[0])),
    "sum": lambda n, a, s: _scalar(np.sum(a[0])),
    "norm1": lambda n, a, s: _scalar(np.sum(np.abs(a[0]))),
    "norm2": lambda n, a, s: _scalar(np.sqrt(np.sum(a[0] ** 2))),
    "logsumexp": lambda n, a, s: _scalar(sp.logsumexp(a[0])),
    "softmax": lambda n, a, s: _softmax_columns(a[0]),
    "diag_embed": lambda n, a, s: np.diag(a[0][:, 0]),
    "diag_extract": lambda n, a, s: np.diag(a[0]).reshape(-1, 1).copy(),
    "const": lambda n, a, s: _scalar(float(n.attr)),
    "zero": lambda n, a, s: np.zeros(s(n.shape)),
    "ones": lambda n, a, s: np.ones(s(n.shape)),
    "eye": lambda n, a, s: np.eye(s(n.shape)[0]),
    "kron": lambda n, a, s: np.kron(a[0], a[1]),
    "vec": lambda n, a, s: a[0].reshape(-1, 1, order="F"),
    "commutation": lambda n, a, s: commutation_matrix(s((n.attr[0], E.ONE))[0],
                                                      s((n.attr[1], E.ONE))[0]),
}


def commutation_matrix(rows: int, cols: int) -> np.ndarray:
    """K with K @ vec(M) = vec(M.T) for M of shape (rows, cols), vec column-major."""
    k = np.zeros((rows * cols, rows * cols))
    for i in range(rows):
        for j in range(cols):
            k[i * cols + j, j * rows + i] = 1.0
    return k


def evaluate(node: E.Node, env: Env, sizes: dict[E.Dim, int], cache: dict | None = None):
    """Value of node (a 2-D array) with variables from env (2-D arrays)."""
    values: dict[E.Node, np.ndarray] = cache if cache is not None else {}

    def size(shape):
        return tuple(1 if d is E.ONE else sizes[d] for d in shape)

    with np.errstate(all="ignore"):
        for n in E.postorder(node):
            if n in values:
                continue
            if n.op == "var":
                values[n] = env[n.attr[0]]
            elif n.op == "fn":
                entry = ELEMENTWISE[n.attr]
                if entry.definition is not None:
                    values[n] = evaluate(entry.definition(n.args[0]), env, sizes, values)
                else:
                    values[n] = _FN[n.attr](values[n.args[0]])
            else:
                values[n] = EVAL[n.op](n, [values[a] for a in n.args], size)
    return values[node]


# ---------------------------------------------------------------- random data by kind

SIZES = (3, 4, 2, 5, 6, 7, 3, 4, 2, 5)


def dim_sizes(variables: dict[str, E.Node], *extra: E.Node) -> dict[E.Dim, int]:
    """A size for every dimension of the variables (and of the nodes in `extra`, for
    dimensions that only a constant such as vector(1) or eye carries)."""
    dims: list[E.Dim] = []
    nodes = list(variables.values())
    for root in extra:
        nodes += [n for n in E.walk(root)]
    for v in nodes:
        for d in v.shape:
            if d is not E.ONE and d not in dims:
                dims.append(d)
    sizes = {d: SIZES[i % len(SIZES)] for i, d in enumerate(d for d in dims
                                                          if d not in E.PRODUCTS)}
    for d in dims:  # composite dimensions of vec/Kronecker forms: products of their factors
        sizes.setdefault(d, _product_size(d, sizes))
    return sizes


def _product_size(d: E.Dim, sizes: dict) -> int:
    if d in sizes:
        return sizes[d]
    if d not in E.PRODUCTS:
        return sizes.setdefault(d, SIZES[0])
    a, b = E.PRODUCTS[d]
    return _product_size(a, sizes) * _product_size(b, sizes)


def random_value(kind: str, shape: tuple[int, int], rng: np.random.Generator, mode: str):
    """mode 'signed': entries of both signs; 'positive': entries in (0.1, 0.9), matrices
    diagonally dominant (invertible, det > 0) but not symmetric unless the kind says so."""
    r, c = shape
    if mode == "positive":
        x = rng.uniform(0.1, 0.9, size=shape)
    else:
        x = rng.uniform(0.3, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    if kind == "scalar":
        return x
    if kind in ("symmetric", "spd"):
        if kind == "spd":
            b = rng.uniform(-1, 1, size=shape) if mode == "signed" else x
            return b @ b.T / r + np.eye(r) * (1.0 if mode == "signed" else 0.5) + \
                (0 if mode == "signed" else 0.1)
        x = (x + x.T) / 2
    if r == c and kind != "vector":
        x = x + r * np.eye(r) * (0.6 if mode == "positive" else 1.0)
    return x


def random_direction(kind: str, shape: tuple[int, int], rng: np.random.Generator):
    v = rng.standard_normal(shape)
    if kind in ("symmetric", "spd"):
        v = (v + v.T) / 2
    return v


def random_env(variables: dict[str, E.Node], sizes, rng, mode: str) -> Env:
    env = {}
    for name, v in variables.items():
        shape = tuple(1 if d is E.ONE else sizes[d] for d in v.shape)
        env[name] = random_value(v.attr[1], shape, rng, mode)
    return env


# ---------------------------------------------------------------- gradient checks


@dataclass
class GradCheck:
    name: str
    max_rel_error: float
    ok: bool


def finite_difference(f_node: E.Node, env: Env, sizes, name: str, direction: np.ndarray,
                      eps: float) -> float:
    plus = dict(env)
    minus = dict(env)
    plus[name] = env[name] + eps * direction
    minus[name] = env[name] - eps * direction
    fp = evaluate(f_node, plus, sizes)[0, 0]
    fm = evaluate(f_node, minus, sizes)[0, 0]
    return (fp - fm) / (2 * eps)


def compare(fd: float, analytic: float, scale: float) -> float:
    return abs(fd - analytic) / max(abs(fd), abs(analytic), 1e-3 * scale, 1e-12)


def best_fd_error(fd, analytic: float, scale: float) -> float:
    """The smallest relative error of `analytic` against central differences fd(eps) over
    several steps and a Richardson extrapolation: a small step suffers from rounding (f ≈ 0
    made of large terms), a large one from curvature (sin(8000a)); O(h⁴) extrapolation
    handles the second without the first."""
    values = {eps: fd(eps) for eps in (1e-5, 1e-4, 1e-6)}
    best = min(compare(v, analytic, scale) for v in values.values())
    if best < 1e-8:  # settled: the usual case costs three differences, not six
        return best
    values[5e-6] = fd(5e-6)
    richardson = (4 * values[5e-6] - values[1e-5]) / 3
    return min(best, compare(richardson, analytic, scale),
               compare(values[5e-6], analytic, scale), compare(fd(1e-7), analytic, scale))


def find_data(f_node: E.Node, grads: dict[str, E.Node], variables, sizes, rng):
    """A random point where f and every gradient are finite (signed data first)."""
    for mode in ("signed", "positive", "positive", "positive"):
        env = random_env(variables, sizes, rng, mode)
        values = [evaluate(f_node, env, sizes)] + [evaluate(g, env, sizes) for g in grads.values()]
        if all(np.all(np.isfinite(v)) for v in values):
            return env
    return None


def check_gradients(f_node: E.Node, grads: dict[str, E.Node], variables: dict[str, E.Node],
                    seed: int = 0, directions: int = 2, tol: float = 1e-5) -> list[GradCheck]:
    """Compare tr(Gᵀ V) with central differences of f along random directions V."""
    rng = np.random.default_rng(seed)
    sizes = dim_sizes(variables, f_node, *grads.values())
    env = find_data(f_node, grads, variables, sizes, rng)
    if env is None:
        return [GradCheck(name, float("nan"), False) for name in grads]
    out = []
    scale = abs(evaluate(f_node, env, sizes)[0, 0]) + 1.0
    for name, g_node in grads.items():
        g = evaluate(g_node, env, sizes)
        kind = variables[name].attr[1]
        worst = 0.0
        for _ in range(directions):
            v = random_direction(kind, env[name].shape, rng)
            analytic = float(np.sum(g * v))
            along = functools.partial(finite_difference, f_node, env, sizes, name, v)
            worst = max(worst, best_fd_error(along, analytic, scale))
        out.append(GradCheck(name, worst, worst <= tol))
    return out


def to_public(value: np.ndarray, shape: E.Shape):
    """2-D internal array → float (scalar), 1-D array (vector) or 2-D array (matrix)."""
    kind = E.shape_kind(shape)
    if kind == "scalar":
        return float(value[0, 0])
    if kind == "vector":
        return value[:, 0].copy()
    return value


def from_public(value, shape: E.Shape) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    kind = E.shape_kind(shape)
    if kind == "scalar":
        return arr.reshape(1, 1)
    if kind == "vector":
        return arr.reshape(-1, 1)
    return arr


