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
    correct: bool
    text: str
    exact: bool | None = None  # SymPy's verdict on symbolic small matrices (None: not settled)


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
    samples = _samples(result, claim_typed, wrt)
    if samples is None:
        return Verdict(False, f"could not evaluate the claim at random points\n{shown}")
    if _shapes_differ(samples):
        g, c = samples[0]
        return Verdict(False, f"wrong shape {_symbolic(g_claim, claim_typed, variables)}, "
                              f"expected {_shape_words(v)} "
                              f"(the shape of {wrt})" + (" — off by a transpose" if
                                                        c.shape == g.shape[::-1] else "")
                       + f"\n{shown}")
    numerically_equal = all(_close(c, g) for g, c in samples)
    proof = exact.equal(g_claim, ours, variables)
    exactly_equal = proof.equal
    how = _how_decided(numerically_equal, proof)
    if exactly_equal or (numerically_equal and exactly_equal is None):
        text = "correct"
        if steps:
            text += "\n" + _steps(result) + "\n" + how
        return Verdict(True, text, exactly_equal)
    if numerically_equal:  # SymPy found a difference that random points did not show
        diagnosis = (f"wrong: the claim agrees with ∂f/∂{wrt} at random points but not "
                     f"identically (SymPy: claim − ∂f/∂{wrt} = {_first_nonzero(proof.residue)} in "
                     "one entry, with symbolic entries)")
    else:
        diagnosis = _diagnosis(samples, result, wrt, claim_typed)
    return Verdict(False, diagnosis + "\n" + shown +
                   ("\n" + _steps(result) + "\n" + how if steps else ""), exactly_equal)


def _how_decided(numerically_equal: bool, proof) -> str:
    numbers = f"{'equal' if numerically_equal else 'different'} at 3 random points"
    if proof.equal is None:
        return f"how decided: {numbers}; not settled exactly (SymPy found no canonical form, " \
               "or the expression uses abs, sign or relu)"
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


def _samples(result, claim_typed, wrt, count: int = 3, adjust=None):
    from .numeric import dim_sizes, evaluate, find_data

    variables = result.typed.variables
    out = []
    for seed in range(count):
        rng = np.random.default_rng(1000 + seed)
        sizes = dim_sizes(variables, result.f, *result.gradients.values())
        # dimensions of the claim's own typing: map by variable shapes
        env = find_data(result.f, result.gradients, variables, sizes, rng)
        if env is None:
            return None
        if adjust is not None:
            env = adjust(env)
        g = evaluate(result.gradients[wrt], env, sizes)
        claim_sizes = _claim_sizes(claim_typed, env)
        c = evaluate(claim_typed.root, env, claim_sizes)
        if not np.all(np.isfinite(c)):
            return None
        out.append((g, c if c.shape == g.shape else c))
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


def _close(a, b, tol=1e-7) -> bool:
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
        return f"off by a constant factor: the claim is {k:.6g} × ∂f/∂{wrt}"
    return None


def _diagnosis(samples, result, wrt, claim_typed) -> str:
    g0, c0 = samples[0]
    simple = _relation(samples, wrt)
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
            sym = _samples(result, claim_typed, wrt, adjust=symmetrize)
            relation = _relation(sym, wrt) if sym else None
            if relation is not None:
                tail = "" if relation == "equal" else f"; even then it is {relation}"
                return f"right only when {name} is symmetric (∂f/∂{wrt} uses {name} and " \
                       f"{name}ᵀ){tail}"
    for name, x in others.items():
        if x.kind == "vector":
            def normalise(env, name=name):
                return {**env, name: np.abs(env[name]) / np.sum(np.abs(env[name]))}
            prob = _samples(result, claim_typed, wrt, adjust=normalise)
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
