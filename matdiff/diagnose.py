"""`matdiff check`: is the claimed gradient right, and if not, how is it wrong.

The claim is parsed in the expression language with the same declarations, its shape is
compared with the variable's, and its value with matdiff's own (checked) gradient at several
random points and, where SymPy can settle it, exactly on small matrices of symbols.
A wrong claim is compared with the usual mistakes — a transpose, a constant
factor, a sign, the symmetric part, the 1ᵀy = 1 assumption — and the difference is shown."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import exact
from . import expr as E
from .errors import DerivationError, ShapeError
from .gradient import derive
from .printing.unicode import to_unicode
from .typecheck import typecheck


@dataclass
class Verdict:
    correct: bool  # proved, or equal at many points in high precision (never for "unproved")
    text: str
    exact: bool | None = None  # SymPy's verdict on symbolic small matrices (None: not settled)
    status: str = ""  # correct | wrong | unproved (agrees at every point, not proved)

    def __post_init__(self):
        if not self.status:
            self.status = "correct" if self.correct else "wrong"

    @property
    def agrees(self) -> bool:
        """correct, or agreeing everywhere it was evaluated without a proof."""
        return self.status in ("correct", "unproved")


def _merged_dims(alone, combined) -> list[tuple[str, str]]:
    """Pairs of the expression's dimensions that typing the claim with it made equal."""
    seen: dict = {}
    merged = []
    for name, v in alone.variables.items():
        for d, d2 in zip(v.shape, combined.variables[name].shape):
            if d is E.ONE:
                continue
            other = seen.setdefault(d2, d)
            if other is not d and (other.name, d.name) not in merged:
                merged.append((other.name, d.name))
    return merged


def _check_fits(expr: str, claim: str, types):
    """Type the claim together with f, so a claim whose dimensions contradict the
    expression's (e.g. A*B where A's columns and B's rows differ) is a shape error."""
    prefix = f"({expr}) + 0*sum("
    try:
        return typecheck(prefix + claim + ")", types)
    except ShapeError as e:
        span = e.span
        if span is not None and span[0] >= len(prefix):
            span = (span[0] - len(prefix), max(span[0] - len(prefix) + 1,
                                               min(span[1] - len(prefix), len(claim))))
        else:
            span = (0, len(claim))
        raise DerivationError(f"the claim has no consistent shape with the expression: "
                              f"{e.message}", span, claim) from None


def check_claim(expr: str, wrt: str, claim: str, types=None, steps: bool = False) -> Verdict:
    result = derive(expr, [wrt], types, steps=steps)
    variables = result.typed.variables
    v = variables[wrt]
    try:
        claim_typed = typecheck(claim, {**{n: x.attr[1] for n, x in variables.items()},
                                        **(types or {})})
    except ShapeError as e:
        raise DerivationError(f"the claim has no consistent shape: {e.message}", e.span,
                              claim) from None
    g_claim = claim_typed.root
    unknown = set(claim_typed.variables) - set(variables)
    if unknown:
        raise DerivationError(f"the claim uses {', '.join(sorted(unknown))}, which the "
                              "expression does not have", None, claim)
    combined = _check_fits(expr, claim, {**{n: x.attr[1] for n, x in variables.items()},
                                         **(types or {})})
    merged = _merged_dims(result.typed, combined)
    if merged:
        same = ", ".join(f"{a} = {b}" for a, b in merged)
        return Verdict(False, f"wrong shape: the claim only makes sense if {same}, which the "
                              f"expression does not require (∂f/∂{wrt} is "
                              f"{_shape_words(v)})\nmatdiff: ∂f/∂{wrt} = "
                              f"{to_unicode(result.gradients[wrt])}")
    ours = result.gradients[wrt]
    shown = f"matdiff: ∂f/∂{wrt} = {to_unicode(ours)}"
    expected_shape = _dims(v)
    got_shape = _dims(g_claim)
    rank_v, rank_c = len(expected_shape), len(got_shape)
    if rank_v != rank_c:
        return Verdict(False, f"wrong shape: the claim is {_shape_words(g_claim)}, but "
                              f"∂f/∂{wrt} has the shape of {wrt}: {_shape_words(v)}\n{shown}")
    comparison = compare_claim(result, claim_typed, wrt)
    if comparison is None:
        return Verdict(False, f"could not evaluate the claim at points where ∂f/∂{wrt} is "
                              f"defined\n{shown}", status="wrong")
    samples = comparison.samples
    if _shapes_differ(samples):
        g, c = samples[0]
        return Verdict(False, f"wrong shape {_symbolic(g_claim, claim_typed, variables)}, "
                              f"expected {_shape_words(v)} "
                              f"(the shape of {wrt})" + (" — off by a transpose" if
                                                        c.shape == g.shape[::-1] else "")
                       + f"\n{shown}" + (f"\n{_steps(result)}" if steps else ""),
                       status="wrong")
    proof = exact.equal(g_claim, ours, variables)
    how = _how_decided(comparison, proof)
    tail = ("\n" + _steps(result) + "\n" + how) if steps else ""
    if comparison.equal:
        if proof.equal is True or not comparison.piecewise:
            return Verdict(True, "correct" + tail, proof.equal, status="correct")
        return Verdict(False, f"agrees with ∂f/∂{wrt} at {comparison.points} points"
                              f"{comparison.kink_words()}; not proved (the claim or the "
                              f"expression is piecewise: abs, sign, relu or norm1)\n{shown}"
                       + tail, proof.equal, status="unproved")
    diagnosis = _diagnosis(comparison.differing or samples, result, wrt, claim_typed,
                           comparison.worst, comparison.where)
    return Verdict(False, diagnosis + "\n" + shown + tail, proof.equal, status="wrong")


@dataclass
class Comparison:
    """The claim against matdiff's gradient at many points, in 50-digit arithmetic."""

    equal: bool  # agreement at every point
    points: int  # how many points were compared
    samples: list  # (gradient, claim) float64 pairs at the points
    differing: list  # the pairs at points where they differ
    worst: float  # the largest relative difference seen
    piecewise: bool  # abs/sign/relu/norm1 appear in f, ∂f/∂X or the claim
    kinks_covered: bool  # both sides of every kink were reached
    precise: bool  # compared in high precision (False: float64 fallback)
    where: list  # (env, sizes) of every point compared

    def kink_words(self) -> str:
        if not self.piecewise:
            return ""
        return (", on both sides of every kink" if self.kinks_covered else
                ", though not on both sides of every kink")


# the scales the random points are drawn at: the usual unit-size data first, then small and
# large arguments (a claim may be wrong only beyond |x| = 2, or only for tiny x)
POINT_SCALES = (1.0, 1.0, 1.0, 0.3, 3.0, 10.0, 0.05, 30.0, 100.0, 1000.0)
EXTRA_KINK_SCALES = (1e4, 1e5, 1e6)


def compare_claim(result, claim_typed, wrt, seed: int = 1000) -> Comparison | None:
    """Evaluate the claim and ∂f/∂X at points spread over scales and signs (and on both sides
    of every kink) in high precision. Equality means agreement to `precise.TOLERANCE` at
    every point; a difference anywhere is a difference."""
    from . import precise
    from .numeric import evaluate, find_point, kink_arguments

    variables = result.typed.variables
    ours = result.gradients[wrt]
    claim = claim_typed.root
    roots = [result.f, *result.gradients.values()]
    kinks_f = kink_arguments(result.f, *result.gradients.values())
    kinks_c = kink_arguments(claim)
    piecewise = bool(kinks_f or kinks_c)
    sides = {k: set() for k in kinks_f + kinks_c}
    rng = np.random.default_rng(seed)
    samples, differing, where = [], [], []
    worst, use_precise, compared = 0.0, True, 0

    def visit(scale: float) -> None:
        nonlocal worst, use_precise, compared
        search = find_point(roots, variables, rng, scale=scale, attempts=12)
        if search.point is None:
            return
        env, sizes, values = search.point.env, search.point.sizes, search.point.values
        where.append((env, sizes))
        claim_sizes = _claim_sizes(claim_typed, env)
        with np.errstate(all="ignore"):
            c_values: dict = {}
            c = evaluate(claim, env, claim_sizes, c_values)
        g = values[ours]
        for k in kinks_f:
            _record_sides(sides[k], values.get(k))
        for k in kinks_c:
            _record_sides(sides[k], c_values.get(k))
        if c.shape != g.shape:
            samples.append((g, c))
            differing.append((g, c))
            compared += 1
            return
        if not np.all(np.isfinite(c)) and not use_precise:
            differing.append((g, c))
            compared += 1
            worst = float("inf")
            return
        different = None
        if use_precise:
            try:
                different, difference = precise.differ(claim, claim_sizes, ours, sizes, env)
            except precise.Unsupported:
                use_precise = False
            except (ZeroDivisionError, ValueError, ArithmeticError):
                different, difference = True, float("inf")  # the claim has no value here
        if different is None:  # float64 fallback: rounding bounds what can be told apart
            top = max(float(np.max(np.abs(g), initial=0)), float(np.max(np.abs(c), initial=0)),
                      1e-300)
            difference = float(np.max(np.abs(g - c), initial=0)) / top
            different = difference > 1e-9
        compared += 1
        if np.all(np.isfinite(c)):  # float64 samples for the diagnosis (exp(1000) overflows)
            samples.append((g, c))
        if different:
            worst = max(worst, difference)
            differing.append((g, c))

    for scale in POINT_SCALES:
        visit(scale)
    if piecewise and not all(len(s) == 2 for s in sides.values()):
        for scale in EXTRA_KINK_SCALES:  # a kink far out (relu(‖x‖ − 100)): look further
            visit(scale)
            if all(len(s) == 2 for s in sides.values()):
                break
    if not samples and not differing:
        return None
    return Comparison(not differing, compared, samples or differing, differing, worst,
                      piecewise, all(len(s) == 2 for s in sides.values()), use_precise, where)


def _record_sides(seen: set, value) -> None:
    if value is None:
        return
    if np.any(value > 0):
        seen.add(1)
    if np.any(value < 0):
        seen.add(-1)


def _how_decided(comparison: Comparison, proof) -> str:
    arithmetic = "50-digit arithmetic" if comparison.precise else "double precision"
    numbers = (f"{'equal' if comparison.equal else 'different'} at "
               f"{comparison.points if comparison.equal else len(comparison.differing)} of "
               f"{comparison.points} points spread over scales and signs ({arithmetic}"
               f"{comparison.kink_words()})")
    if proof.equal is None:
        why = proof.note or "SymPy found no canonical form"
        return f"how decided: {numbers}; not settled exactly ({why})"
    if proof.size == 0:
        return f"how decided: {numbers}, and the claim is matdiff's own formula"
    return f"how decided: {numbers}, and {'identical' if proof.equal else 'different'} " \
           f"for {proof.size}×{proof.size} matrices of symbols (SymPy)"


def _first_nonzero(residue) -> str:
    return next(str(x) for x in residue if x != 0)


def _steps(result) -> str:
    from .printing.report import derivation_steps

    return "\n".join(f"{i:3d}. {line}   [{rule}]"
                     for i, (rule, line) in enumerate(derivation_steps(result), 1))


def _dims(node) -> list:
    return [d for d in node.shape if d is not E.ONE]


def _shape_words(node) -> str:
    return E.shape_text(node.shape)


def _symbolic(claim, claim_typed, variables) -> str:
    """The claim's shape in the expression's dimension names."""
    rename = {}
    for name, cv in claim_typed.variables.items():
        for dc, de in zip(cv.shape, variables[name].shape):
            rename.setdefault(dc, de)
    shape = tuple(rename.get(d, d) for d in claim.shape)
    return E.shape_text(shape)


def _samples(result, claim_typed, wrt, points, adjust):
    """(gradient, claim) at the comparison's points with the data changed by `adjust` (A made
    symmetric, y made a probability vector); None where either is undefined."""
    from .numeric import evaluate

    out = []
    with np.errstate(all="ignore"):
        for env, sizes in points:
            env = adjust(env)
            g = evaluate(result.gradients[wrt], env, sizes)
            c = evaluate(claim_typed.root, env, _claim_sizes(claim_typed, env))
            if not (np.all(np.isfinite(c)) and np.all(np.isfinite(g))):
                return None
            out.append((g, c))
    return out


def _claim_sizes(claim_typed, env):
    sizes = {}
    for name, v in claim_typed.variables.items():
        for d, n in zip(v.shape, env[name].shape):
            if d is not E.ONE:
                sizes[d] = n
    # dimensions only constants fix (e.g. eye alone) get a default
    for n in E.walk(claim_typed.root):
        for d in n.shape:
            if d is not E.ONE and d not in sizes:
                sizes[d] = 3
    return sizes


def _shapes_differ(samples) -> bool:
    return any(g.shape != c.shape for g, c in samples)


def _close(a, b, tol=1e-9) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(a).max()))


def _relation(samples, wrt: str) -> str | None:
    """How the claim relates to the true gradient on these samples, if simply."""
    if all(_close(c, g) for g, c in samples):
        return "equal"
    if all(c.shape == g.shape[::-1] and _close(c.T, g) for g, c in samples):
        return "off by a transpose: the claim is the transpose of ∂f/∂" + wrt
    if all(_close(-c, g) for g, c in samples):
        return "sign error: the claim is −∂f/∂" + wrt
    ratios = []
    for g, c in samples:
        mask = np.abs(g) > 1e-9 * max(1.0, np.abs(g).max())
        if not mask.any():
            return None
        ratios.append(float(np.median(c[mask] / g[mask])))
    k = ratios[0]
    if all(_close(c, k * g) for g, c in samples) and abs(k) > 1e-12:
        if abs(k - 0.5) < 1e-9:
            return "missing factor 2: the claim is half of ∂f/∂" + wrt
        if abs(k - 2) < 1e-9:
            return "extra factor 2: the claim is twice ∂f/∂" + wrt
        return f"off by a constant factor: the claim is {_factor_text(k)} × ∂f/∂{wrt}"
    return None


def _factor_text(k: float) -> str:
    """A factor with the digits that make it differ from a nearby simple number: 1.000001,
    not 1; a small fraction as p/q."""
    from fractions import Fraction

    simple = Fraction(k).limit_denominator(12)
    if abs(float(simple) - k) <= 1e-12 * max(1.0, abs(k)):
        return str(simple)
    for digits in range(6, 17):
        text = f"{k:.{digits}g}"
        if abs(float(text) - k) <= 1e-12 * max(1.0, abs(k)):
            return text
    return repr(k)


def _diagnosis(samples, result, wrt, claim_typed, worst: float, points) -> str:
    g0, c0 = samples[0]
    simple = _relation(samples, wrt)
    if simple == "equal":  # too close for double precision, apart in 50 digits
        return (f"wrong: the claim differs from ∂f/∂{wrt} by a relative {worst:.1g} — too "
                "little to see in double precision, but not rounding: the two formulas "
                "differ in 50-digit arithmetic")
    if simple is not None:
        return simple
    v = result.typed.variables[wrt]
    if v.kind == "matrix" and g0.shape[0] == g0.shape[1] and \
            all(_close((c + c.T) / 2, (g + g.T) / 2) for g, c in samples):
        return (f"right only for symmetric {wrt}: the claim and ∂f/∂{wrt} have the same "
                f"symmetric part but differ for general {wrt}")
    others = {n: x for n, x in result.typed.variables.items() if n != wrt}
    for name, x in others.items():
        if x.kind == "matrix" and x.shape[0] is x.shape[1]:
            def symmetrize(env, name=name):
                return {**env, name: (env[name] + env[name].T) / 2}
            sym = _samples(result, claim_typed, wrt, points, symmetrize)
            relation = _relation(sym, wrt) if sym else None
            if relation is not None:
                tail = "" if relation == "equal" else f"; even then it is {relation}"
                return f"right only when {name} is symmetric (∂f/∂{wrt} uses {name} and " \
                       f"{name}ᵀ){tail}"
    for name, x in others.items():
        if x.kind == "vector":
            def normalise(env, name=name):
                return {**env, name: np.abs(env[name]) / np.sum(np.abs(env[name]))}
            prob = _samples(result, claim_typed, wrt, points, normalise)
            if prob and _relation(prob, wrt) == "equal":
                return (f"right only when 1ᵀ{name} = 1 ({name} a probability vector, e.g. "
                        "one-hot); in general a factor 1ᵀ" + name + " is missing")
    diff = E.sub(claim_typed.root, result.gradients[wrt]) if claim_typed.root.shape == \
        result.gradients[wrt].shape else None
    extra = f" (claim − ∂f/∂{wrt} = {to_unicode(_simplified(diff))})" if diff is not None else ""
    return "wrong: the claim differs from ∂f/∂" + wrt + extra


def _simplified(node):
    from .simplify import simplify

    return simplify(node)
