"""Numbers are the oracle: an independent NumPy evaluator of the IR, random data that respects
each variable's kind, and central finite-difference checks of gradients.

Inside the evaluator every value is a 2-D array (scalars 1×1, vectors n×1), so products and
scalings need no special cases; the public boundary uses floats and 1-D vectors."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..ir import expr as E
from ..ops import ELEMENTWISE, rule, table
from ..ops.matrix_functions import DOMAIN as MATRIX_DOMAIN

Env = dict[str, np.ndarray]


class _Eval(dict):
    """op → the operator's declared float64 evaluation (matdiff/ops), failing with its name."""

    def __missing__(self, op: str):
        return rule(op, "numeric")


EVAL = _Eval(table("numeric"))


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
            elif n.op == "fn" and ELEMENTWISE[n.attr].evaluate is None:
                # σ′ and friends: the value of what they stand for
                values[n] = evaluate(ELEMENTWISE[n.attr].definition(n.args[0]), env, sizes,
                                     values)
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
    if not (np.isfinite(fd) and np.isfinite(analytic)):
        return float("nan")
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


def best_directional_error(function: E.Node, env: Env, sizes, name: str, direction,
                           analytic: np.ndarray, scale: float, shaped=lambda fd: fd) -> float:
    """The smallest relative error of an array-valued directional derivative `analytic`
    against central differences of `function` along `direction` (steps 1e-4…1e-6; NaN when
    no step gives finite values). `shaped` lays the difference out like `analytic`."""
    x = env[name]
    best = float("nan")
    for eps in (1e-4, 1e-5, 1e-6):
        fd = shaped((evaluate(function, {**env, name: x + eps * direction}, sizes) -
                     evaluate(function, {**env, name: x - eps * direction}, sizes)) / (2 * eps))
        if not (np.all(np.isfinite(fd)) and np.all(np.isfinite(analytic))):
            continue
        err = float(np.max(np.abs(fd - analytic))) / max(
            float(np.max(np.abs(fd))), float(np.max(np.abs(analytic))), 1e-6 * scale)
        best = err if best != best else min(best, err)
    return best


# ---------------------------------------------------------------- where f is defined

# Beyond this condition number an inverse, solve or log-det is treated as singular: its value
# (and finite differences through it) would be dominated by rounding.
ILL_CONDITIONED = 1e8
KINK_MARGIN = 1e-3  # |argument| of abs/sign/relu/norm1 below this (relative) is "at the kink"


@dataclass
class Problem:
    """Why a point is unusable: `value` problems leave f (or a gradient) undefined there;
    the others only leave it non-differentiable or too ill-conditioned to check."""

    node: E.Node
    subject: E.Node  # the node the reason is about (printed only when asked: printing every
    what: str  # candidate's problem would make the point search quadratic in depth)
    value: bool

    @property
    def reason(self) -> str:
        return _describe(self.subject, self.what)


def _describe(subject: E.Node, what: str) -> str:
    text = f"{_node_text(subject)} {what}"
    if subject.op == "var" and what in _KIND_FIXES:
        text += _KIND_FIXES[what].format(name=subject.attr[0])
    return text


# A variable that is sampled general but needs a structured kind: say how to declare it.
_KIND_FIXES = {
    "is not symmetric": " (declare it: --let {name}:symmetric, or {name}:spd where the "
                        "operation needs positive definite)",
    "is not positive definite": " (declare it: --let {name}:spd)",
}


def _cond(m: np.ndarray) -> float:
    if not np.all(np.isfinite(m)):
        return float("inf")
    try:
        return float(np.linalg.cond(m))
    except np.linalg.LinAlgError:
        return float("inf")


def _node_text(n: E.Node) -> str:
    from ..printing.unicode import to_unicode

    text = to_unicode(n)
    return text if len(text) <= 40 else text[:37] + "…"


def node_problem(n: E.Node, values: dict) -> Problem | None:
    """Whether the operation at n is defined, differentiable and well conditioned at the
    values its arguments have (`values`: node → 2-D array, as `evaluate` fills its cache)."""
    v = values.get(n)
    if v is None:
        return None
    with np.errstate(all="ignore"):
        specific = _operation_problem(n, values) if n.args and n.args[0] in values else None
        if specific is not None:
            return specific
        if not np.all(np.isfinite(v)):
            return Problem(n, n, "is not finite (overflow or division by zero)",
                           True)
    return None


def _operation_problem(n: E.Node, values: dict) -> Problem | None:
    a = values[n.args[0]]
    op = n.op
    if op == "inv" or (op == "matpow" and isinstance(n.attr, int) and n.attr < 0):
        if _cond(a) > ILL_CONDITIONED:
            return Problem(n, n.args[0], "is singular", True)
    elif op == "logdet":
        sign, _ = np.linalg.slogdet(a)
        if sign <= 0:
            return Problem(n, n.args[0], "has det ≤ 0", True)
        if _cond(a) > ILL_CONDITIONED:
            return Problem(n, n.args[0], "is singular", True)
    elif op == "det":
        if _cond(a) > ILL_CONDITIONED:  # d det X = det X tr(X⁻¹dX) needs X⁻¹
            return Problem(n, n.args[0], "is singular", False)
    elif op == "hdiv":
        b = values.get(n.args[1])
        if b is not None and np.min(np.abs(b)) <= 1e-6 * max(1.0, np.max(np.abs(b))):
            return Problem(n, n.args[1], "has a zero entry", True)
    elif op in ("pow", "epow"):
        b = values.get(n.args[1])
        if b is not None:
            exponent = float(np.ravel(b)[0])
            integral = exponent == round(exponent)
            if not integral and np.min(a) <= 0:
                return Problem(n, n.args[0], "is not positive", True)
            if exponent < 0 and np.min(np.abs(a)) <= 1e-6 * max(1.0, np.max(np.abs(a))):
                return Problem(n, n.args[0], "is zero", True)
    elif op in MATRIX_DOMAIN:  # matrix functions and factorizations (ops/matrix_functions)
        found = MATRIX_DOMAIN[op](a) if np.all(np.isfinite(a)) else None
        if found is not None:
            return Problem(n, n.args[0], found[0], found[1])
    elif op == "norm2":
        if np.sqrt(np.sum(a * a)) <= 1e-6:
            return Problem(n, n.args[0], "is zero", False)
    elif op == "norm1":
        if np.min(np.abs(a)) <= KINK_MARGIN * max(1.0, np.max(np.abs(a))):
            return Problem(n, n.args[0], "is at a kink of norm1", False)
    elif op == "fn":
        name = n.attr
        scale = max(1.0, float(np.max(np.abs(a))))
        if name in ("log", "sqrt"):
            if np.min(a) <= 0:
                return Problem(n, n.args[0], "is not positive", True)
            if np.min(a) <= 1e-6 * scale:
                return Problem(n, n.args[0], "is at 0", False)
        elif name in ("arcsin", "arccos"):
            if np.max(np.abs(a)) >= 1:
                return Problem(n, n.args[0], "is outside (−1, 1)", True)
            if np.max(np.abs(a)) >= 1 - 1e-4:
                return Problem(n, n.args[0], "is at ±1", False)
        elif name == "tan":
            if np.min(np.abs(np.cos(a))) <= 1e-3:
                return Problem(n, n.args[0], "is at a pole of tan", True)
        elif name in KINKED:
            inner = n.args[0]
            while inner.op == "fn" and inner.attr == "relu" and inner.args[0] in values:
                # sign(relu(y)), relu's derivative, is flat where relu(y) = 0: y's zero is the
                # kink, not the whole half-space where relu(y) vanishes
                inner = inner.args[0]
            a = values[inner]
            scale = max(1.0, float(np.max(np.abs(a))))
            if np.min(np.abs(a)) <= KINK_MARGIN * scale:
                return Problem(n, n.args[0], f"is at a kink of {name}", False)
    return None


KINKED = ("abs", "sign", "relu")


def kink_arguments(*roots: E.Node) -> list[E.Node]:
    """The arguments whose sign decides a piecewise function (abs, sign, relu, norm1)."""
    out = []
    for root in roots:
        for n in E.walk(root):
            if (n.op == "fn" and n.attr in KINKED) or n.op == "norm1":
                arg = n.args[0]
                # sign(relu(z)), sign(|z|): never negative, so both sides of it are never
                # reached; its sign changes where z's does, and that is the kink to straddle
                while arg.op == "fn" and arg.attr in ("relu", "abs"):
                    arg = arg.args[0]
                if arg not in out:
                    out.append(arg)
    return out


def point_problems(roots: list[E.Node], values: dict) -> list[Problem]:
    out = []
    seen: set = set()
    for root in roots:
        for n in E.postorder(root):
            if n in seen:
                continue
            seen.add(n)
            p = node_problem(n, values)
            if p is not None:
                out.append(p)
    return out


@dataclass
class Point:
    env: Env
    sizes: dict
    values: dict  # node → value at this point (the evaluator's cache)


@dataclass
class PointSearch:
    """The outcome of looking for data where every operation is defined and differentiable."""

    point: Point | None
    tried: int
    value_defined: bool  # f had a value at some point tried (only derivatives failed)
    reason: str  # the most common problem, when no point was found

    def explain(self) -> str:
        return f"{self.reason} at every point tried ({self.tried} points)"

    def message(self) -> str:
        """Why no check was possible, as a sentence fragment."""
        if self.reason.startswith("every "):
            return f"{self.reason} at each of the {self.tried} points tried"
        return (f"no point found where every operation is defined and differentiable "
                f"({self.explain()})")


def size_assignments(dims: list[E.Dim], rng: np.random.Generator, count: int):
    """Sizes for the free dimensions: the usual first, then other orders, so that a
    rank condition (XᵀX invertible needs rows ≥ columns) is met by one of them."""
    free = [d for d in dims if d not in E.PRODUCTS]
    yield {d: SIZES[i % len(SIZES)] for i, d in enumerate(free)}
    if not free:
        return
    yield {d: SIZES[i % len(SIZES)] for i, d in enumerate(reversed(free))}
    yield {d: 3 for d in free}
    for _ in range(count - 3):
        yield {d: int(rng.integers(2, 8)) for d in free}


def _all_dims(variables: dict[str, E.Node], extra) -> list[E.Dim]:
    dims: list[E.Dim] = []
    nodes = list(variables.values())
    for root in extra:
        nodes += [n for n in E.walk(root)]
    for v in nodes:
        for d in v.shape:
            if d is not E.ONE and d not in dims:
                dims.append(d)
    return dims


def _with_products(sizes: dict, dims: list[E.Dim]) -> dict:
    sizes = dict(sizes)
    for d in dims:
        sizes.setdefault(d, _product_size(d, sizes))
    return sizes


# data modes: (how entries are drawn, a scale); the first two are the usual ones
MODES = [("signed", 1.0), ("positive", 1.0), ("signed", 0.3), ("positive", 0.2),
         ("signed", 3.0), ("negative", 1.0), ("positive", 5.0), ("signed", 0.05),
         ("unit", 1.0), ("positive", 30.0), ("negative", 30.0)]


def _mode_value(kind, shape, rng, mode, scale):
    if mode == "unit" and shape != (1, 1):
        # largest singular value 1: high matrix powers neither over- nor underflow (a scalar
        # would become exactly ±1, where (−1)^a looks defined)
        x = random_value(kind, shape, rng, "signed")
        top = float(np.linalg.norm(x, 2)) if x.size else 1.0
        return x / top if top > 0 else x
    if mode == "unit":
        mode = "signed"
    if mode == "negative":
        x = random_value(kind, shape, rng, "positive")
        return -x if kind not in ("spd",) else x
    x = random_value(kind, shape, rng, mode)
    return x * scale if kind != "spd" else x * max(scale, 0.05)


def _summing_to_one(x: np.ndarray) -> np.ndarray:
    """x shifted to sum to 1, exactly in binary: entries on a grid of 2⁻²⁴ (sums of them are
    exact in double precision, and the 50-digit comparison sees the data as it is)."""
    y = np.round((x + (1.0 - x.sum()) / x.size) * 2.0 ** 24) / 2.0 ** 24
    flat = y.reshape(-1)
    flat[-1] = 1.0 - flat[:-1].sum()
    return y


def find_point(roots: list[E.Node], variables: dict[str, E.Node], rng: np.random.Generator,
               sizes: dict | None = None, attempts: int = 48, scale: float = 1.0,
               sums_to_one: frozenset = frozenset()) -> PointSearch:
    """Random data (and, unless `sizes` is given, sizes) at which every operation of `roots`
    is defined, differentiable and well conditioned. The usual signed data comes first; then
    other size orders, positive and negative data, and small and large scales, drawn per
    variable, so that domains such as y − Ax > 0 or XᵀX invertible are found too."""
    dims = _all_dims(variables, roots)
    if sizes is not None:
        assignments = [sizes]
    else:
        assignments = [_with_products(s, dims) for s in size_assignments(dims, rng, 6)]
    reasons: dict[str, int] = {}
    value_defined = False
    tried = 0
    per_assignment = max(1, attempts // len(assignments))
    names = list(variables)
    for k in range(per_assignment):
        for s in assignments:
            if k < 3:
                modes = {n: MODES[(0, 1, 8)[k]] for n in names}
            else:
                modes = {n: MODES[int(rng.integers(len(MODES)))] for n in names}
            env = {}
            for name, v in variables.items():
                shape = tuple(1 if d is E.ONE else s[d] for d in v.shape)
                mode, factor = modes[name]
                env[name] = _mode_value(v.attr[1], shape, rng, mode, factor * scale)
                if name in sums_to_one:  # a declared probability vector: 1ᵀy = 1 exactly
                    env[name] = _summing_to_one(env[name])
            tried += 1
            values: dict = {}
            try:
                for r in roots:
                    evaluate(r, env, s, values)
            except ValueError:  # dimensions tied outside these roots (a chain's links)
                continue
            problems = point_problems(roots, values)
            if not problems:
                return PointSearch(Point(env, s, values), tried, True, "")
            if not any(p.value for p in point_problems(roots[:1], values)):
                value_defined = True  # f has a value here; only a derivative fails
            first = (problems[0].subject, problems[0].what)
            reasons[first] = reasons.get(first, 0) + 1
    if reasons:
        subject, what = max(reasons, key=reasons.get)
        common = _describe(subject, what)
    else:
        common = "no data"
    return PointSearch(None, tried, value_defined, common)


def find_data(f_node: E.Node, grads: dict[str, E.Node], variables, sizes, rng):
    """A random point (at these sizes) where f and every gradient are defined (None if none)."""
    found = find_point([f_node, *grads.values()], variables, rng, sizes=sizes, attempts=12)
    return found.point.env if found.point else None


@dataclass
class GradCheck:
    name: str
    max_rel_error: float
    ok: bool


@dataclass
class CheckOutcome:
    """The self-check: per-variable results, or why no check was possible."""

    checks: list[GradCheck]
    search: PointSearch

    @property
    def checked(self) -> bool:
        return self.search.point is not None and bool(self.checks)

    @property
    def ok(self) -> bool:
        return self.checked and all(c.ok for c in self.checks)


def worst_of(a: float, b: float) -> float:
    """max that keeps NaN: a NaN comparison is a failed comparison, never a perfect one."""
    if a != a or b != b:
        return float("nan")
    return max(a, b)


def check_gradients(f_node: E.Node, grads: dict[str, E.Node], variables: dict[str, E.Node],
                    seed: int = 0, directions: int = 2, tol: float = 1e-5,
                    points: int = 5) -> CheckOutcome:
    """Compare tr(Gᵀ V) with central differences of f along random directions V, at a point
    where every operation is defined and differentiable. A point where every directional
    derivative underflows (tr(X¹⁰⁰⁰) at small X: both sides ≈ 1e-200) proves nothing, so
    another is drawn; if all are like that, the check is reported as not made."""
    rng = np.random.default_rng(seed)
    search = None
    tried = 0
    for _ in range(points):
        search = find_point([f_node, *grads.values()], variables, rng)
        if search.point is None:
            return CheckOutcome([], search)
        tried += search.tried
        checks, informative = _check_at(search.point, f_node, grads, variables, rng,
                                        directions, tol)
        if informative or not all(c.ok for c in checks):
            return CheckOutcome(checks, search)
    search = PointSearch(None, tried, True, "every directional derivative is negligibly small "
                                            "(values under- or overflow)")
    return CheckOutcome([], search)


def _check_at(point: Point, f_node, grads, variables, rng, directions, tol):
    env, sizes = point.env, point.sizes
    out = []
    informative = True
    with np.errstate(all="ignore"):
        scale = abs(point.values[f_node][0, 0]) + 1.0
        for name, g_node in grads.items():
            g = point.values[g_node]
            kind = variables[name].attr[1]
            worst, largest = 0.0, 0.0
            for _ in range(directions):
                v = random_direction(kind, env[name].shape, rng)
                analytic = float(np.sum(g * v))
                along = functools.partial(finite_difference, f_node, env, sizes, name, v)
                largest = max(largest, abs(analytic), abs(along(1e-4)))
                worst = worst_of(worst, best_fd_error(along, analytic, scale))
            # values that underflow (tr(X¹⁰⁰⁰) at small X) compare as 0 = 0: no evidence.
            # A gradient that is 0 up to rounding (sum(softmax(x)) ≡ 1) is evidence, though:
            # its entries are ~1e-17, not ~1e-200
            if not E.is_zero(g_node) and largest < 1e-100:
                informative = False
            out.append(GradCheck(name, worst, worst <= tol))  # NaN <= tol is False
    return out, informative


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


