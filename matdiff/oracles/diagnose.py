"""`matdiff check`: is the claimed gradient right, and if not, how is it wrong.

The claim is parsed in the expression language with the same declarations, its shape is
compared with the variable's, and its value with matdiff's own (checked) gradient at several
random points and, where SymPy can settle it, exactly on small matrices of symbols.
A wrong claim is compared with the usual mistakes — a transpose, a constant
factor, a sign, the symmetric part, the 1ᵀy = 1 assumption — and the difference is shown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..derive.gradient import derive
from ..errors import DerivationError, MatdiffError, ShapeError
from ..ir import expr as E
from ..language.typecheck import typecheck
from ..printing.unicode import to_unicode
from . import exact


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


def _plain(text: str) -> str:
    """The text in the plain language (LaTeX read back as the plain language), bracketed."""
    from ..language.latex_syntax import to_plain
    from ..language.reader import parse_syntax

    return to_plain(parse_syntax(text))


def _check_fits(expr: str, claim: str, types):
    """Type the claim together with f, so a claim whose dimensions contradict the
    expression's (e.g. A*B where A's columns and B's rows differ) is a shape error."""
    from ..language.reader import INPUT_MODE

    expr_plain, claim_plain = _plain(expr), _plain(claim)
    prefix = f"0*sum({expr_plain}) + 0*sum("
    mode = INPUT_MODE.set("text")
    try:
        return typecheck(prefix + claim_plain + ")", types)
    except ShapeError as e:
        span = e.span
        if claim_plain == claim and span is not None and span[0] >= len(prefix):
            span = (span[0] - len(prefix), max(span[0] - len(prefix) + 1,
                                               min(span[1] - len(prefix), len(claim))))
        else:
            span = (0, len(claim))
        raise DerivationError(f"the claim has no consistent shape with the expression: "
                              f"{e.message}", span, claim, hint=e.hint) from None
    finally:
        INPUT_MODE.reset(mode)


@dataclass
class _Target:
    """What a claim is compared with: ∂f/∂X, the Jacobian J or the Hessian H (with the
    derivation it came from), in the form compare_claim reads."""

    typed: object
    f: object
    gradients: dict
    label: str  # ∂f/∂X, J, H
    what: str  # gradient | jacobian | hessian
    derivation: object = None  # the Derivation (gradient) for --steps


LAYOUTS = ("denominator", "numerator")
CONVENTIONS = ("matdiff", "cookbook")
TARGETS = ("gradient", "jacobian", "hessian")


def check_claim(expr: str, wrt: str, claim: str, types=None, steps: bool = False, *,
                layout: str = "denominator", convention: str = "matdiff",
                target: str = "gradient", prove: bool | str = True) -> Verdict:
    """Decide whether `claim` is ∂f/∂wrt (or, with target "jacobian"/"hessian", J or H).

    layout "numerator": the claim is ∂f/∂Xᵀ (the transpose of matdiff's gradient);
    convention "cookbook": for a symmetric/spd X the claim is the Matrix Cookbook's 2G − diag(G);
    prove: True runs the exact SymPy step whenever the numbers agree; "auto" only where it
    decides something the numbers cannot (piecewise claims) or with `steps`."""
    from ..derive.simplify import assume_sums_to_one
    from ..language.latex_syntax import KNOWN_NAMES
    from ..language.shapes import probability_names

    if layout not in LAYOUTS:
        raise DerivationError(f"unknown layout {layout!r}: use numerator or denominator")
    if convention not in CONVENTIONS:
        raise DerivationError(f"unknown convention {convention!r}: use cookbook or matdiff")
    probability = probability_names(types)
    tgt = _target(expr, wrt, types, steps, target)
    variables = tgt.typed.variables
    v = variables[wrt]
    ours = assume_sums_to_one(tgt.gradients[wrt], probability)
    tgt.gradients = {wrt: ours}
    label = tgt.label
    shown = f"matdiff: {label} = {to_unicode(ours)}"
    claim_types = {**{n: x.attr[1] for n, x in variables.items()}, **(types or {})}
    known = KNOWN_NAMES.set(frozenset(variables))
    try:
        try:
            claim_typed = typecheck(claim, claim_types)
        except ShapeError as e:
            raise DerivationError(f"the claim has no consistent shape: {e.message}", e.span,
                                  claim, hint=e.hint) from None
        unknown = set(claim_typed.variables) - set(variables)
        if unknown:
            raise DerivationError(f"the claim uses {', '.join(sorted(unknown))}, which the "
                                  "expression does not have", None, claim)
        combined = _check_fits(expr, claim, claim_types)
    finally:
        KNOWN_NAMES.reset(known)
    tail_steps = _steps(tgt) if steps else ""

    def finish(correct, text, how, exact_=None, status=""):
        if steps:
            text += "\n" + tail_steps + "\n" + how
        return Verdict(correct, text, exact_, status=status)

    merged = _merged_dims(tgt.typed, combined)
    if merged:
        same = ", ".join(f"{a} = {b}" for a, b in merged)
        fix = None if not prove else _transpose_fix(
            expr, wrt, claim, types, sorted(claim_typed.variables), layout=layout,
            convention=convention, target=target)
        if fix is not None:
            return finish(False, f"{fix[0]}: {fix[1]} is {label} (as written the claim only "
                                 f"makes sense if {same})\n{shown}",
                          "how decided: by shapes, then the corrected claim compared at "
                          "points in high precision", status="wrong")
        return finish(False, f"wrong shape: the claim only makes sense if {same}, which the "
                             f"expression does not require ({label} is "
                             f"{_shape_words(ours)})\n{shown}",
                      "how decided: by shapes alone (no value was compared)", status="wrong")
    g_claim = claim_typed.root
    notes = []
    if layout == "numerator" and not g_claim.is_scalar:
        g_claim = E.transpose(g_claim)  # the claim is ∂f/∂Xᵀ: compare its transpose
        notes.append("read in numerator layout, as declared: the claim is "
                     f"{'∂f/∂' + wrt + 'ᵀ' if target == 'gradient' else 'transposed'}, and its "
                     f"transpose is compared with {label}")
    symmetric_var = target == "gradient" and v.attr[1] in ("symmetric", "spd")
    if convention == "cookbook" and symmetric_var:
        ours_cmp = _cookbook(ours)
        notes.append(f"read in the Matrix Cookbook's convention, as declared: the claim is "
                     f"compared with 2G − diag(G) = {to_unicode(ours_cmp)}, G being matdiff's "
                     f"symmetric {label}")
    else:
        ours_cmp = ours
    claim_typed = _with_root(claim_typed, g_claim)
    if len(_dims(ours_cmp)) != len(_dims(g_claim)):
        return finish(False, f"wrong shape: the claim is {_shape_words(g_claim)}, but "
                             f"{label} is {_shape_words(ours_cmp)}"
                             + _layout_hint(g_claim, ours_cmp, target, layout, wrt)
                             + f"\n{shown}",
                      "how decided: by shapes alone (no value was compared)", status="wrong")
    cmp_target = _Target(tgt.typed, tgt.f, {wrt: ours_cmp}, label, target)
    sums_to_one = probability & set(variables)  # the declared probability vectors
    comparison = compare_claim(cmp_target, claim_typed, wrt, sums_to_one=sums_to_one)
    if comparison is None:  # matdiff's own formula has no value anywhere it looked
        from .numeric import find_point

        search = find_point([tgt.f, ours_cmp], variables, np.random.default_rng(0))
        why = search.explain() if search.point is None else "no point to compare the claim at"
        raise DerivationError(
            f"cannot check the claim: matdiff's own {label} = {to_unicode(ours_cmp)} has no "
            f"value at any point tried: {why}", None, None,
            hint="the formula needs a value where it is singular; compare by hand")
    samples = comparison.samples
    if _shapes_differ(samples):
        g, c = samples[0]
        transposed = c.shape == g.shape[::-1]
        read = "wrong shape: the claim, transposed as --layout numerator says, is " if \
            layout == "numerator" and not claim_typed.root.is_scalar else "wrong shape "
        return finish(False, f"{read}{_symbolic(g_claim, claim_typed, variables)}, "
                             f"expected {_shape_words(ours_cmp)}"
                             + (f" (the shape of {wrt})" if target == "gradient" else "")
                             + (" — off by a transpose" if transposed else "")
                             + (_layout_words(target, wrt, layout) if transposed else "")
                             + f"\n{shown}",
                      "how decided: by shapes (the claim's size differs from "
                      f"{label}'s at the sizes of the first point)", status="wrong")
    note_text = "".join(f"\nnote: {n}" for n in notes)
    note_text += "".join(f"\nnote: {y} is a probability vector: 1ᵀ{y} = 1 is used"
                         for y in sorted(sums_to_one))
    if comparison.equal:
        proof = _prove(g_claim, ours_cmp, variables, comparison, prove, steps, sums_to_one)
        how = _how_decided(comparison, proof)
        if proof.equal is False:  # a difference below what the digits resolve (1 + e⁻³⁰⁰)
            residue = _first_nonzero(proof.residue)
            residue = residue if len(residue) <= 120 else residue[:117] + "..."
            return finish(False, f"wrong: equal to {label} at {comparison.points} points to "
                                 f"the digits compared, but not identically: SymPy finds "
                                 f"claim − {label} ≠ 0 for {proof.size}×{proof.size} matrices "
                                 f"of symbols (an entry: {residue})\n{shown}" + note_text,
                          how, False, status="wrong")
        if proof.equal is True or not comparison.piecewise:
            return finish(True, "correct" + note_text, how, proof.equal, status="correct")
        return finish(False, f"agrees with {label} at {comparison.points} points"
                             f"{comparison.kink_words()}; not proved (the claim or the "
                             f"expression is piecewise: abs, sign, relu or norm1)\n{shown}"
                             + note_text, how, proof.equal, status="unproved")
    if symmetric_var and convention != "cookbook":
        # only the symmetric part of a gradient matters for a symmetric X: (C + Cᵀ)/2 = G
        sym_claim = _with_root(claim_typed, _sym(g_claim))
        sym_cmp = compare_claim(cmp_target, sym_claim, wrt, sums_to_one=sums_to_one)
        if sym_cmp is not None and sym_cmp.equal:
            proof = _prove(_sym(g_claim), ours_cmp, variables, sym_cmp, prove, steps,
                           sums_to_one)
            if proof.equal is True or (proof.equal is None and not sym_cmp.piecewise):
                return finish(True, f"correct for symmetric {wrt} (declared {v.attr[1]}): the "
                                    f"claim's symmetric part (C + Cᵀ)/2 is {label}; matdiff "
                                    f"reports that symmetric representative, {label} = "
                                    f"{to_unicode(ours)}" + note_text,
                              _how_decided(sym_cmp, proof) + " (symmetric parts compared)",
                              proof.equal, status="correct")
    exact_ = False if comparison.precise else None
    if comparison.undefined:  # exp(log(x)) for 2x: equal where x > 0, no real value elsewhere
        return finish(False, f"wrong: the claim has no value at points where {label} has one "
                             f"(a log or √ of a negative number, a division by zero, …), "
                             f"e.g. at {_point_words(comparison.undefined[0])}\n{shown}"
                             + note_text, _how_decided(comparison, None), exact_,
                      status="wrong")
    diagnosis = _diagnosis(samples, cmp_target, wrt, claim_typed,
                           comparison.worst, comparison.where, label=label, target=target,
                           symmetric_var=symmetric_var, convention=convention,
                           probability=probability, layout=layout)
    return finish(False, diagnosis + "\n" + shown + note_text,
                  _how_decided(comparison, None), exact_, status="wrong")


def _target(expr, wrt, types, steps, target) -> _Target:
    if target not in TARGETS:
        raise DerivationError(f"unknown check target {target!r}")
    if target == "gradient":
        result = derive(expr, [wrt], types, steps=steps)
        return _Target(result.typed, result.f, dict(result.gradients), f"∂f/∂{wrt}",
                       "gradient", result)
    from ..derive.jacobian import hessian, jacobian

    if target == "jacobian":
        out = jacobian(expr, wrt, types)
        return _Target(out.typed, out.typed.root, {wrt: out.result}, "J = ∂f/∂" + wrt + "ᵀ",
                       "jacobian", out)
    out = hessian(expr, wrt, types)
    if out.kind != "hessian":
        raise DerivationError(f"{wrt} is a matrix: its Hessian is a 4th-order tensor, so "
                              "check --hessian takes a vector or scalar variable",
                              hint="check the gradient instead, or the Hessian with respect "
                              "to a vector")
    return _Target(out.typed, out.typed.root, {wrt: out.result}, "H = ∂²f/∂" + wrt + "∂" + wrt
                   + "ᵀ", "hessian", out)


def _with_root(typed, root):
    from ..language.typecheck import Typed

    return Typed(root, typed.source, typed.variables, getattr(typed, "context_kinds", {}))


def _sym(node):
    return E.scale(E.const(Fraction(1, 2)), E.add(node, E.transpose(node)))


def _cookbook(g):
    """The Matrix Cookbook's gradient for a symmetric X from matdiff's symmetric G:
    2G − diag(G) (it differentiates by the independent entries X_ij, i ≤ j)."""
    from ..derive.simplify import simplify

    return simplify(E.sub(E.scale(E.const(2), g), E.diag_embed(E.diag_extract(g))))


def _transpose_fix(expr, wrt, claim, types, names, **options) -> tuple[str, str] | None:
    """(what is wrong, the corrected claim) when adding or removing one transpose of one
    occurrence of a variable makes the claim right: the student's 2A(Ax − y) for
    2Aᵀ(Ax − y), or Aᵀy for Ay."""
    spots = [(name, m.end()) for name in names
             for m in re.finditer(rf"(?<![\w\\]){re.escape(name)}(?![\w(])", claim)]
    for name, end in spots[:12]:  # a full check each: a bounded number of tries
        if claim[end:end + 1] in ("'", "ᵀ"):
            fixed = claim[:end] + claim[end + 1:]
            what = f"one transpose too many: {name}ᵀ stands where {name} belongs"
        else:
            fixed = claim[:end] + "'" + claim[end:]
            what = f"a transpose is missing: {name} stands where {name}ᵀ belongs"
        try:  # prove=False: no SymPy here, and no search for a fix of the fix
            verdict = check_claim(expr, wrt, fixed, types, prove=False, **options)
        except MatdiffError:
            continue
        if verdict.status == "correct":
            return what, fixed
    return None


def _layout_words(target, wrt, layout="denominator") -> str:
    if target == "gradient" and layout == "numerator":
        return (f": this is the denominator-layout answer ∂f/∂{wrt} (the shape of {wrt}), but "
                f"--layout numerator (as declared) asks for ∂f/∂{wrt}ᵀ — transpose the claim, "
                "or leave out --layout numerator if your course uses the denominator layout")
    if target == "gradient":
        return (f": this is the numerator-layout answer ∂f/∂{wrt}ᵀ; matdiff uses the "
                f"denominator layout (∂f/∂{wrt} has the shape of {wrt}) — if your course uses "
                "numerator layout, declare it with --layout numerator")
    if target == "jacobian":
        return (": this is the denominator-layout Jacobian ∂fᵀ/∂" + wrt + " (n×m); matdiff's "
                "J is numerator layout, m×n, with df = J d" + wrt)
    return ""


def _layout_hint(claim, ours, target, layout, wrt) -> str:
    c, g = _dims(claim), _dims(ours)
    if target == "gradient" and layout == "denominator" and claim.shape[0] is E.ONE and \
            claim.shape[1] is not E.ONE and len(g) == 1:
        return (f" — a row vector: the numerator-layout answer ∂f/∂{wrt}ᵀ; matdiff uses the "
                f"denominator layout (a column like {wrt}); declare --layout numerator if your "
                "course uses that layout")
    del c
    return ""


def _prove(a, b, variables, comparison, prove, steps, sums_to_one=frozenset()):
    """The exact SymPy step, when it is wanted: always (prove=True), or ("auto") only where
    it decides something the numbers cannot (a piecewise claim) or --steps asks for it."""
    if prove is True or (prove == "auto" and (comparison.piecewise or steps)):
        outcome = exact.equal(a, b, variables)
        if outcome.equal is False and sums_to_one:  # its symbols do not know 1ᵀy = 1
            return exact.Outcome(None, outcome.residue, outcome.size,
                                 f"SymPy's symbols do not know 1ᵀ{min(sums_to_one)} = 1")
        return outcome
    return exact.Outcome(None, None, -1, "SymPy not run: the claim is smooth and equal at "
                                         "every point, which decides")


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
    undefined: list = field(default_factory=list)  # envs where only the claim has no value

    def kink_words(self) -> str:
        if not self.piecewise:
            return ""
        return (", on both sides of every kink" if self.kinks_covered else
                ", though not on both sides of every kink")


# the scales the random points are drawn at: the usual unit-size data first, then small and
# large arguments (a claim may be wrong only beyond |x| = 2, or only for tiny x)
POINT_SCALES = (1.0, 1.0, 1.0, 0.3, 3.0, 10.0, 0.05, 30.0, 100.0, 1000.0, 1e-3, 1e4)
EXTRA_KINK_SCALES = (1e4, 1e5, 1e6)


def compare_claim(result, claim_typed, wrt, seed: int = 1000,
                  sums_to_one: frozenset = frozenset()) -> Comparison | None:
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
    samples, differing, where, undefined = [], [], [], []
    worst, use_precise, compared = 0.0, True, 0

    def visit(scale: float) -> None:
        search = find_point(roots, variables, rng, scale=scale, attempts=12,
                            sums_to_one=sums_to_one)
        if search.point is not None:
            compare_at(search.point.env, search.point.sizes, search.point.values)

    def compare_at(env, sizes, values) -> None:
        nonlocal worst, use_precise, compared
        where.append((env, sizes))
        g = values[ours]
        claim_sizes = _claim_sizes(claim_typed, env, g.shape)
        with np.errstate(all="ignore"):
            c_values: dict = {}
            c = evaluate(claim, env, claim_sizes, c_values)
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
            undefined.append(env)
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
                try:  # whose value is missing: the claim's, or (rounding) matdiff's own?
                    precise.evaluate(ours, env, sizes)
                except (ZeroDivisionError, ValueError, ArithmeticError, precise.Unsupported):
                    use_precise = False  # compared in double precision below
                else:
                    different, difference = True, float("inf")  # the claim has no value here
                    undefined.append(env)
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
    if piecewise and where:
        # just either side of each kink's zero crossing: a kink moved by 0.01 differs only
        # between the two crossings, where no random point falls
        env0, sizes0 = where[0]
        for k in kinks_f + kinks_c:
            k_sizes = (lambda env, s=sizes0: s) if k in kinks_f else \
                (lambda env: _claim_sizes(claim_typed, env))
            for env in _straddles(k, k_sizes, env0, variables, rng, sums_to_one):
                with np.errstate(all="ignore"):
                    values: dict = {}
                    for r in roots:
                        evaluate(r, env, sizes0, values)
                if all(np.all(np.isfinite(values[r])) for r in roots):
                    compare_at(env, sizes0, values)
    if not samples and not differing:
        return None
    return Comparison(not differing, compared, samples or differing, differing, worst,
                      piecewise, all(len(s) == 2 for s in sides.values()), use_precise, where,
                      undefined)


def _point_words(env: dict) -> str:
    """A point as a person reads it: small values in full, larger ones by their sign."""
    words = []
    for name, x in env.items():
        x = np.asarray(x, dtype=float)
        if x.size <= 3:
            words.append(f"{name} = " + ", ".join(f"{v:.3g}" for v in x.ravel()))
        else:
            words.append(f"{name} with {int((x < 0).sum())} negative of {x.size} entries")
    return "; ".join(words)


def _straddles(kink, sizes_of, env0, variables, rng, sums_to_one=frozenset(),
               entries: int = 3) -> list:
    """Points a hair either side of where entries of the kink argument cross zero, found by
    bisection along a random line through env0 (each variable moved along its own random
    direction, scaled to its entries)."""
    from .numeric import evaluate, random_direction

    direction = {n: random_direction(v.attr[1], env0[n].shape, rng) *
                 max(1.0, float(np.max(np.abs(env0[n])))) for n, v in variables.items()}
    for n in sums_to_one:  # along the line 1ᵀy stays 1
        direction[n] = direction[n] - direction[n].mean()

    def at(t):
        return {n: env0[n] + t * direction[n] for n in env0}

    def value(t):
        env = at(t)
        with np.errstate(all="ignore"):
            return np.ravel(evaluate(kink, env, sizes_of(env)))

    # out to ±10⁴ times the data's size, geometrically: relu(‖x‖ − 100) kinks far out
    far = np.logspace(-3, 4, 36)
    ts = np.concatenate([-far[::-1], [0.0], far])
    try:
        grid = [value(t) for t in ts]
    except (KeyError, ValueError):
        return []
    out = []
    for i in range(min(entries, len(grid[0]))):
        for lo, hi, a, b in zip(ts, ts[1:], grid, grid[1:]):
            if not (np.isfinite(a[i]) and np.isfinite(b[i])) or a[i] * b[i] >= 0:
                continue
            for _ in range(60):  # bisection to the crossing
                mid = (lo + hi) / 2
                if value(mid)[i] * value(lo)[i] <= 0:
                    hi = mid
                else:
                    lo = mid
            step = 1e-7 * max(1.0, abs(lo))
            out += [at(lo - step), at(hi + step), at(2 * hi - lo + step)]
            break
    return out


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
    if proof is None:
        return (f"how decided: {numbers}; a difference at one point in high precision "
                "settles it (no exact step needed)")
    if proof.size == -1:
        return f"how decided: {numbers}; {proof.note}"
    if proof.equal is None:
        why = proof.note or "SymPy found no canonical form"
        return f"how decided: {numbers}; not settled exactly ({why})"
    if proof.size == 0:
        return f"how decided: {numbers}, and the claim is matdiff's own formula"
    return f"how decided: {numbers}, and {'identical' if proof.equal else 'different'} " \
           f"for {proof.size}×{proof.size} matrices of symbols (SymPy)"


def _first_nonzero(residue) -> str:
    return next(str(x) for x in residue if x != 0)


def _steps(target) -> str:
    """The derivation the verdict rests on (numbered as `grad --steps` prints it)."""
    from ..present.report import derivation_steps

    if target.what == "gradient":
        return "\n".join(f"{i:3d}. {line}   [{rule}]" for i, (rule, line) in
                         enumerate(derivation_steps(target.derivation), 1))
    (wrt, result), = target.gradients.items()
    out = target.derivation
    what = ("d f = J d" + wrt + ", J read off the differential (numerator layout)"
            if target.what == "jacobian" else
            "H = ∂(∂f/∂" + wrt + ")/∂" + wrt + "ᵀ, the Jacobian of the gradient")
    lines = [f"  1. f = {to_unicode(target.f)}   [the function]"]
    if target.what == "hessian":
        lines.append(f"  2. ∂f/∂{wrt} = {to_unicode(out.function)}   [the gradient]")
    lines.append(f"{len(lines) + 1:3d}. {target.label} = {to_unicode(result)}   [{what}]")
    return "\n".join(lines)


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
            c = evaluate(claim_typed.root, env, _claim_sizes(claim_typed, env, g.shape))
            if not (np.all(np.isfinite(c)) and np.all(np.isfinite(g))):
                return None
            out.append((g, c))
    return out


def _claim_sizes(claim_typed, env, like=None):
    """Sizes of the claim's own dimensions: from its variables' data, then (for a dimension
    only a constant fixes, as in tr(A)*eye) from the shape `like` of matdiff's gradient, a
    product dimension (m·p) from its factors, and 3 for anything still open."""
    sizes = {}
    for name, v in claim_typed.variables.items():
        for d, n in zip(v.shape, env[name].shape):
            if d is not E.ONE:
                sizes[d] = n
    if like is not None:
        for d, n in zip(claim_typed.root.shape, like):
            if d is not E.ONE:
                sizes.setdefault(d, n)
    for n in E.walk(claim_typed.root):
        for d in n.shape:
            if d is not E.ONE and d not in sizes:
                sizes[d] = _product_size(d, sizes)
    return sizes


def _product_size(d, sizes) -> int:
    if d in sizes:
        return sizes[d]
    if d in E.PRODUCTS:
        a, b = E.PRODUCTS[d]
        return _product_size(a, sizes) * _product_size(b, sizes)
    return sizes.setdefault(d, 3)


def _shapes_differ(samples) -> bool:
    return any(g.shape != c.shape for g, c in samples)


def _close(a, b, tol=1e-9) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(a).max()))


def _relation(samples, wrt: str, label: str | None = None) -> str | None:
    """How the claim relates to the true gradient on these samples, if simply."""
    label = label or "∂f/∂" + wrt
    # points at tiny scales (entries ~10⁻³, a cubic gradient ~10⁻⁹) are for catching claims
    # wrong near 0, not for ratios: there every entry is below _close's absolute tolerance
    samples = [(g, c) for g, c in samples if np.abs(g).max(initial=0) > 1e-6] or samples
    if all(_close(c, g) for g, c in samples):
        return "equal"
    if all(c.shape == g.shape[::-1] and _close(c.T, g) for g, c in samples):
        return "off by a transpose: the claim is the transpose of " + label
    if all(_close(-c, g) for g, c in samples):
        return "sign error: the claim is −" + label
    ratios = []
    for g, c in samples:
        mask = np.abs(g) > 1e-9 * max(1.0, np.abs(g).max())
        if not mask.any():
            return None
        ratios.append(float(np.median(c[mask] / g[mask])))
    k = ratios[0]
    if all(_close(c, k * g) for g, c in samples) and abs(k) > 1e-12:
        if abs(k - 0.5) < 1e-9:
            return "missing factor 2: the claim is half of " + label
        if abs(k - 2) < 1e-9:
            return "extra factor 2: the claim is twice " + label
        return f"off by a constant factor: the claim is {_factor_text(k)} × {label}"
    if len(samples) > 1 and all(np.isfinite(r) and r != 0 and _close(c, r * g)
                                for (g, c), r in zip(samples, ratios)) and \
            any(g.size > 1 for g, _ in samples):
        # c = k·g at every point, with k changing from point to point: a scalar factor such
        # as the outer derivative of the chain rule, d log(u) = du/u, is missing or extra
        return (f"a scalar factor is missing or extra: at each point the claim is a multiple "
                f"of {label}, but the multiple changes from point to point (a factor that "
                "depends on the variables, such as the outer function's derivative in the "
                "chain rule)")
    return None


def _long_literals(node) -> list[tuple[str, int]]:
    """Decimal literals of 12 or more significant digits (a truncated π or √2), as printed."""
    from ..printing.base import format_number

    out = []
    for n in E.walk(node):
        if n.op == "const":
            text = format_number(abs(n.attr))
            digits = "".join(ch for ch in text.split("e")[0] if ch.isdigit()).strip("0")
            if len(digits) >= 12:
                out.append((text.removesuffix("e0"), len(digits)))
    return out


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


def _diagnosis(samples, result, wrt, claim_typed, worst: float, points, *, label=None,
               target="gradient", symmetric_var=False, convention="matdiff",
               probability=frozenset(), layout="denominator") -> str:
    label = label or f"∂f/∂{wrt}"
    g0, c0 = samples[0]
    simple = _relation(samples, wrt, label)
    if simple == "equal":  # too close for double precision, apart in 50 digits
        text = (f"wrong: the claim differs from {label} by a relative {worst:.1g} — too "
                "little to see in double precision, but not rounding: the two formulas "
                "differ in 50-digit arithmetic")
        long = _long_literals(claim_typed.root)
        if long and worst < 10.0 ** (2 - max(digits for _, digits in long)):
            text += (f"; that is the size of the rounding in the literal {long[0][0]}: if it "
                     "stands for an irrational number (π, √2, …), the claim is right up to "
                     "that rounding")
        return text
    if simple is not None:
        if simple.startswith("off by a transpose"):
            simple += _layout_words(target, wrt, layout)
        return simple
    v = result.typed.variables[wrt]
    if target == "hessian" and g0.shape[0] == g0.shape[1] and \
            all(_close((c + c.T) / 2, g) for g, c in samples):
        return ("not symmetrised: a Hessian is symmetric, and the claim's symmetric part "
                "(C + Cᵀ)/2 is H, but the claim itself is not (write (C + Cᵀ)/2)")
    if symmetric_var and convention != "cookbook" and \
            all(_close(c, 2 * g - np.diag(np.diag(g))) for g, c in samples):
        return (f"right under the Matrix Cookbook's convention for symmetric {wrt}: the claim "
                f"is 2G − diag(G), which differentiates by the independent entries "
                f"{wrt}_ij (i ≤ j); matdiff gives the symmetric gradient G = (G₀ + G₀ᵀ)/2 "
                f"(G₀ treating {wrt} as unconstrained), with df = tr(G d{wrt}) for every "
                f"symmetric d{wrt} — if your course uses the Cookbook's convention, declare "
                "it with --convention cookbook")
    if v.kind == "matrix" and target == "gradient" and g0.shape[0] == g0.shape[1] and \
            not symmetric_var and \
            all(_close((c + c.T) / 2, (g + g.T) / 2) for g, c in samples):
        return (f"right only for symmetric {wrt}: the claim and {label} have the same "
                f"symmetric part but differ for general {wrt} (declare --let {wrt}:symmetric "
                f"if {wrt} is symmetric)")
    others = {n: x for n, x in result.typed.variables.items() if n != wrt}
    symmetric_only = None
    for name, x in others.items():
        if x.kind == "matrix" and x.shape[0] is x.shape[1]:
            def symmetrize(env, name=name):
                return {**env, name: (env[name] + env[name].T) / 2}
            sym = _samples(result, claim_typed, wrt, points, symmetrize)
            relation = _relation(sym, wrt, label) if sym else None
            if relation == "equal":
                return f"right only when {name} is symmetric ({label} uses {name} and " \
                       f"{name}ᵀ)"
            if relation is not None and symmetric_only is None:
                symmetric_only = (f"right only when {name} is symmetric ({label} uses {name} "
                                  f"and {name}ᵀ); even then it is {relation}")
    for name, x in others.items():
        if x.kind == "vector" and name not in probability:
            def normalise(env, name=name):
                return {**env, name: np.abs(env[name]) / np.sum(np.abs(env[name]))}
            prob = _samples(result, claim_typed, wrt, points, normalise)
            relation = _relation(prob, wrt, label) if prob else None
            if relation is not None and (relation == "equal" or
                                         relation.startswith("sign error")):
                # a float64 hint at a few points: confirmed where 1ᵀy = 1 exactly, at every
                # scale and kink, before it is said (sign(Ax − 1.001y) is not about 1ᵀy)
                root = claim_typed.root if relation == "equal" else E.neg(claim_typed.root)
                confirmed = compare_claim(result, _with_root(claim_typed, root), wrt,
                                          sums_to_one=frozenset({name}))
                if confirmed is None or not confirmed.equal:
                    relation = None
            if relation == "equal":
                return (f"right only when 1ᵀ{name} = 1 ({name} a probability vector, e.g. "
                        f"one-hot); in general a factor 1ᵀ{name} is missing — if {name} is "
                        f"one-hot or a distribution, declare it with --let {name}:probability")
            if relation is not None and relation.startswith("sign error"):
                return (f"sign error: even when 1ᵀ{name} = 1 ({name} a probability vector) "
                        f"the claim is −{label}; in general a factor 1ᵀ{name} is missing too "
                        f"(declare --let {name}:probability for one-hot {name})")
    term = _term_diagnosis(samples, result, wrt, claim_typed, points, label)
    if term is not None:
        return term + (f"; seen another way, {symmetric_only}" if symmetric_only else "")
    if symmetric_only is not None:
        return symmetric_only
    diff = _difference(result, wrt, claim_typed, points)
    extra = f" (claim − {label} = {to_unicode(diff)})" if diff is not None else ""
    return f"wrong: the claim differs from {label}" + extra


def _expand(node, limit: int = 12) -> list:
    """The node as a list of terms, products distributed over sums: (A + Aᵀ)X → AX, AᵀX."""
    from ..derive.simplify import simplify

    if node.op == "add":
        out = []
        for t in node.args:
            out += _expand(t, limit)
        return out[:limit * 2]
    if node.op == "scale":
        return [simplify(E.scale(node.args[0], t)) for t in _expand(node.args[1], limit)]
    if node.op == "matmul":
        factors = [_expand(f, limit) for f in node.args]
        terms = [[]]
        for options in factors:
            terms = [t + [o] for t in terms for o in options]
            if len(terms) > limit:
                return [node]
        return [simplify(E.matmul(*t)) for t in terms]
    if node.op == "transpose":
        return [simplify(E.transpose(t)) for t in _expand(node.args[0], limit)]
    return [node]


def _values(nodes, claim_typed, points):
    """Each node's float64 value at each point (None where it is undefined)."""
    from .numeric import evaluate

    out = []
    with np.errstate(all="ignore"):
        for env, sizes in points[:4]:
            row = []
            for n in nodes:
                try:
                    val = evaluate(n, env, {**_claim_sizes(claim_typed, env), **sizes})
                except (ValueError, KeyError, ArithmeticError, np.linalg.LinAlgError):
                    return None
                if not np.all(np.isfinite(val)):
                    return None
                row.append(val)
            out.append(row)
    return out


def _occurrences(root: E.Node, name: str) -> int:
    """How often the variable `name` is written in root (a shared node counts each time)."""
    counts: dict[E.Node, int] = {}
    for n in E.postorder(root):
        counts[n] = (n.op == "var" and n.attr[0] == name) + sum(counts[a] for a in n.args)
    return counts[root]


def _term_diagnosis(samples, result, wrt, claim_typed, points, label) -> str | None:
    """A claim right except for one term: which term of ∂f/∂X is missing, or which term of the
    claim is extra (or has the wrong sign)."""
    ours_terms = _expand(result.gradients[wrt])
    claim_terms = _expand(claim_typed.root)
    if len(ours_terms) + len(claim_terms) > 24:
        return None
    nodes = [result.gradients[wrt], claim_typed.root, *ours_terms, *claim_terms]
    vals = _values(nodes, claim_typed, points)
    if not vals:
        return None
    k = len(ours_terms)

    def holds(fn) -> bool:
        return all(fn(row) for row in vals)

    if len(ours_terms) > 1:
        for i, t in enumerate(ours_terms):
            if holds(lambda r, i=i: _close(r[1], r[0] - r[2 + i])):
                why = f" (each occurrence of {wrt} in f contributes a term)" \
                    if _occurrences(result.f, wrt) > 1 else ""
                return (f"missing a term: the claim is {label} without {to_unicode(t)}{why}")
            if holds(lambda r, i=i: _close(r[1], r[0] - 2 * r[2 + i])):
                return (f"one term has the wrong sign: the claim subtracts {to_unicode(t)}, "
                        f"which {label} adds")
    if len(claim_terms) > 1:
        for j, t in enumerate(claim_terms):
            if holds(lambda r, j=j: _close(r[1] - r[2 + k + j], r[0])):
                return (f"an extra term: the claim differs from {label} by {to_unicode(t)}; "
                        f"without that term it would be {label}")
    return None


def _difference(result, wrt, claim_typed, points):
    """claim − ∂f/∂X, simplified: terms that agree at every point cancel first."""
    ours = result.gradients[wrt]
    claim = claim_typed.root
    if claim.shape != ours.shape:
        return None
    ours_terms, claim_terms = _expand(ours), _expand(claim)
    vals = _values([*ours_terms, *claim_terms], claim_typed, points) \
        if len(ours_terms) + len(claim_terms) <= 24 else None
    if vals:
        k = len(ours_terms)
        left_o, left_c = list(range(k)), list(range(len(claim_terms)))
        for j in list(left_c):
            for i in left_o:
                if all(_close(row[k + j], row[i]) for row in vals):
                    left_o.remove(i)
                    left_c.remove(j)
                    break
        parts = [claim_terms[j] for j in left_c] + [E.neg(ours_terms[i]) for i in left_o]
        if parts and len(parts) < len(ours_terms) + len(claim_terms):
            return _simplified(E.add(*parts))
    return _simplified(E.sub(claim, ours))


def _simplified(node):
    from ..derive.simplify import simplify

    return simplify(node)


# ---------------------------------------------------------------- grading a class (--batch)

BATCH_COLUMNS = ("id", "expression", "wrt", "claim")


@dataclass
class BatchRow:
    line: int  # 1-based line of the file the row is on
    id: str
    verdict: str  # correct | wrong | unproved | error
    text: str  # the diagnosis, or what is wrong with the row


def read_batch(path: str) -> list[tuple[int, dict | str]]:
    """The rows of a CSV (header id,expression,wrt,claim[,let]) or JSONL file: (line, fields)
    for each, or (line, message) for a row that cannot be read. A file that cannot be opened
    is a MatdiffError."""
    import csv
    import json

    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise DerivationError(f"cannot read the batch file {path}: {reason}") from None
    rows: list[tuple[int, dict | str]] = []
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if path.lower().endswith((".jsonl", ".ndjson", ".json")) or first.lstrip().startswith("{"):
        for i, ln in enumerate(lines, 1):
            if not ln.strip():
                continue
            try:
                obj = json.loads(ln)
            except json.JSONDecodeError as e:
                rows.append((i, f"not a JSON object ({e.msg})"))
                continue
            rows.append((i, obj if isinstance(obj, dict) else "not a JSON object"))
        return rows
    reader = csv.reader(lines)
    header = None
    for record in reader:
        i = reader.line_num
        if not any(c.strip() for c in record):
            continue
        if header is None:
            header = [c.strip().lower() for c in record]
            missing = [c for c in BATCH_COLUMNS if c not in header]
            if missing:
                raise DerivationError(f"the batch file {path} has no column "
                                      f"{', '.join(missing)} in its header line "
                                      f"({', '.join(header)}): the columns are "
                                      "id, expression, wrt, claim[, let]")
            continue
        if len(record) != len(header):
            rows.append((i, f"{len(record)} fields, expected {len(header)} "
                            f"({', '.join(header)}); quote fields that contain commas"))
            continue
        rows.append((i, dict(zip(header, record))))
    return rows


def grade_batch(path: str, types=None, **options) -> list[BatchRow]:
    """Check every row; a malformed row is reported in its place and the batch goes on."""
    from ..errors import MatdiffError

    out = []
    for line, fields in read_batch(path):
        if isinstance(fields, str):
            out.append(BatchRow(line, "", "error", f"line {line}: {fields}"))
            continue
        rid = str(fields.get("id", "")).strip()
        missing = [c for c in ("expression", "wrt", "claim")
                   if not str(fields.get(c) or "").strip()]
        if missing:
            out.append(BatchRow(line, rid, "error", f"line {line}: no {', '.join(missing)}"))
            continue
        try:
            row_types = dict(types or {})
            let = fields.get("let") or ""
            if isinstance(let, dict):
                row_types.update({str(k): str(v) for k, v in let.items()})
            else:
                for part in str(let).replace(";", ",").replace(" ", ",").split(","):
                    if part.strip():
                        if ":" not in part:
                            raise DerivationError(f"let expects NAME:KIND, got {part.strip()!r}")
                        n, k = part.split(":", 1)
                        row_types[n.strip()] = k.strip()
            verdict = check_claim(str(fields["expression"]), str(fields["wrt"]).strip(),
                                  str(fields["claim"]), row_types, **options)
            out.append(BatchRow(line, rid, verdict.status, verdict.text))
        except MatdiffError as e:
            message = e.message + (f" ({e.hint})" if e.hint else "")
            out.append(BatchRow(line, rid, "error", f"line {line}: {message}"))
        except RecursionError:
            out.append(BatchRow(line, rid, "error", f"line {line}: expression too deeply nested"))
    return out
