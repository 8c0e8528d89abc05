"""`matdiff differential EXPR --wrt X`: dF of a matrix-, vector- or scalar-valued F as a linear
map in dX (F = X³ → dF = dX X² + X dX X + X² dX, F = expm(X) → L_expm(X, dX)), with its
Kronecker form vec(dF) = J vec(dX) where one exists, checked as a directional derivative
against central finite differences; and `check --claim-differential`, which decides whether a
claimed dF is that map and diagnoses a missing or extra term, a wrong order of factors, a
sign, a factor or a transpose."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..errors import DerivationError, InternalError, ShapeError
from ..ir import expr as E
from ..language.typecheck import Typed, typecheck
from .differential import Differentiator
from .gradient import settled


@dataclass
class DifferentialResult:
    typed: Typed
    wrt: str
    function: E.Node  # F
    differential: E.Node  # dF, linear in the dvar dX
    vec: E.Node | None = None  # J with vec(dF) = J vec(dX), when there is one
    vec_reason: str = ""  # why there is none
    notes: list[str] = field(default_factory=list)
    checked: bool = False
    max_error: float = float("nan")
    check_reason: str = ""


def _check_wrt(typed: Typed, wrt: str) -> E.Node:
    if wrt not in typed.variables:
        from .gradient import unknown_variable_message

        raise DerivationError(unknown_variable_message(wrt, typed), None, typed.source)
    return typed.variables[wrt]


def unmarked(node: E.Node) -> E.Node:
    """The differential without its d(·) markers (rebuilt through the builders)."""
    done: dict[E.Node, E.Node] = {}
    for n in E.postorder(node):
        if n.op == "dnode":
            done[n] = done[n.args[0]]
        elif n.args:
            done[n] = E.rebuild(n, (done[a] for a in n.args))
        else:
            done[n] = n
    return done[node]


def differential_map(source: str | Typed, wrt: str, types=None,
                     check: bool = True) -> DifferentialResult:
    from ..ops.matrix_functions import notes_for
    from .jacobian import NoMatrixForm, vec_jacobian

    typed = typecheck(source, types) if isinstance(source, str) else source
    _check_wrt(typed, wrt)
    f = typed.root
    df = settled(unmarked(Differentiator({wrt})(f)))
    out = DifferentialResult(typed, wrt, f, df)
    try:
        out.vec = vec_jacobian(typed, wrt, check=False).result
    except NoMatrixForm as e:
        out.vec_reason = e.message
    except DerivationError as e:
        out.vec_reason = e.message
    out.notes = notes_for(f, df)
    if check:
        _self_check(out)
    return out


def direction_var(typed: Typed, wrt: str) -> E.Node:
    from .jacobian import direction_name

    v = typed.variables[wrt]
    kind = v.attr[1] if v.attr[1] != "spd" else "symmetric"
    return E.var(direction_name(typed.variables), kind, v.shape)


def applied(df: E.Node, wrt: str, direction: E.Node) -> E.Node:
    """dF with dX replaced by the direction V: the directional derivative as an expression."""
    return E.substitute(df, {E.dvar(wrt, direction.shape): direction})


def _self_check(out: DifferentialResult, seed: int = 1515) -> None:
    from ..oracles.numeric import (
        best_directional_error,
        evaluate,
        find_point,
        random_direction,
        worst_of,
    )
    from .gradient import undefined_error

    variables = out.typed.variables
    direction = direction_var(out.typed, out.wrt)
    along = applied(out.differential, out.wrt, direction)
    rng = np.random.default_rng(seed)
    search = find_point([out.function, along], {**variables, direction.attr[0]: direction},
                        rng)
    if search.point is None:
        if not search.value_defined:
            raise undefined_error(out.typed, search)
        out.checked, out.check_reason = False, search.message()
        return
    env, sizes = search.point.env, search.point.sizes
    x = env[out.wrt]
    worst = 0.0
    with np.errstate(all="ignore"):
        scale = 1.0 + float(np.max(np.abs(search.point.values[out.function])))
        for _ in range(3):
            v = random_direction(variables[out.wrt].attr[1], x.shape, rng)
            analytic = evaluate(along, {**env, direction.attr[0]: v}, sizes)
            worst = worst_of(worst, best_directional_error(out.function, env, sizes, out.wrt,
                                                           v, analytic, scale))
    if not worst <= 1e-5:
        raise InternalError(f"the numerical self-check rejected the derived differential "
                            f"(relative error {worst:.2g}); this is a bug, please report it")
    out.checked, out.max_error = True, worst


# ---------------------------------------------------------------- output


def _check_line(out: DifferentialResult) -> str:
    if out.checked:
        return ("(checked as a directional derivative against central finite differences: "
                f"max relative error {out.max_error:.1e})")
    if out.check_reason:
        return f"(NOT checked: {out.check_reason}; treat this result with care)"
    return "(not checked)"


def _names(out: DifferentialResult) -> tuple[str, str]:
    from ..printing.unicode import UnicodePrinter

    pv = UnicodePrinter().var_name(out.wrt)
    return ("dF" if not out.function.is_scalar else "df"), pv


def differential_text(results: list[DifferentialResult]) -> str:
    from ..printing.unicode import UnicodePrinter

    p = UnicodePrinter()
    lines = [f"F = {p.doc(results[0].function)}",
             "variables: " + ", ".join(
                 f"{n} {v.attr[1]}" + ("" if v.is_scalar else " " + "×".join(
                     E.shape_dims(v.shape))) for n, v in results[0].typed.variables.items()),
             ""]
    notes: list[str] = []
    for out in results:
        d, pv = _names(out)
        lines.append(f"{d} = {p.doc(out.differential)}")
        if out.vec is not None and not out.function.is_scalar:
            lines.append(f"vec({d}) = ({p.doc(out.vec)}) vec(d{pv})")
        elif not out.function.is_scalar:
            lines.append(f"(no Kronecker form printed: {out.vec_reason})")
        lines.append(_check_line(out))
        notes += [n for n in out.notes if n not in notes]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def differential_latex(results: list[DifferentialResult]) -> str:
    from ..printing.latex import LatexPrinter

    p = LatexPrinter()
    lines = []
    for out in results:
        d = r"\mathrm{d}F" if not out.function.is_scalar else r"\mathrm{d}f"
        lines.append(f"{d} = {p.doc(out.differential)}")
        if out.vec is not None and not out.function.is_scalar:
            lines.append(rf"\operatorname{{vec}}({d}) = {p.doc(out.vec)}\,"
                         rf"\operatorname{{vec}}(\mathrm{{d}}{p.var_name(out.wrt)})")
    return "\n".join(lines)


def differential_json(results: list[DifferentialResult]) -> dict:
    from ..printing.latex import LatexPrinter
    from ..printing.text import to_text
    from ..printing.unicode import UnicodePrinter

    lp, up = LatexPrinter(), UnicodePrinter()
    out = {"expression": results[0].typed.source,
           "variables": {n: {"kind": v.attr[1], "shape": E.shape_dims(v.shape)}
                         for n, v in results[0].typed.variables.items()},
           "differentials": {}}
    for r in results:
        entry = {"differential": to_text(r.differential), "unicode": up.doc(r.differential),
                 "latex": lp.doc(r.differential), "shape": E.shape_dims(r.function.shape),
                 "vec": to_text(r.vec) if r.vec is not None else None,
                 "notes": r.notes, "checked": r.checked}
        if r.checked:
            entry["max_relative_error"] = r.max_error
        else:
            entry["reason"] = r.check_reason or r.vec_reason
        out["differentials"][r.wrt] = entry
    return out


# ---------------------------------------------------------------- check --claim-differential


@dataclass
class DifferentialVerdict:
    status: str  # correct | wrong
    text: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"


def read_claim(typed: Typed, wrt: str, claim: str, types=None) -> E.Node:
    """The claimed dF as an IR node in dX (the dvar): `dX` in the claim is the differential of
    X, with X's kind; the claim's dimensions are tied to the expression's by the variables
    they share."""
    v = typed.variables[wrt]
    dname = "d" + wrt
    if dname in typed.variables:
        raise DerivationError(f"the expression has a variable {dname}, so d{wrt} cannot name "
                              "the differential in the claim")
    declared = dict(types or {})
    declared.update({n: x.attr[1] for n, x in typed.variables.items()})
    declared[dname] = v.attr[1] if v.attr[1] != "spd" else "symmetric"
    claimed = typecheck(claim, declared)
    dims: dict[E.Dim, E.Dim] = {}
    for name, c in claimed.variables.items():
        target = v if name == dname else typed.variables.get(name)
        if target is None:
            raise DerivationError(f"the claim uses {name}, which is not a variable of the "
                                  f"expression (write the differential as {dname})")
        for a, b in zip(c.shape, target.shape):
            if dims.setdefault(a, b) is not b:
                raise ShapeError(f"the claim does not fit the shapes of the expression: its "
                                 f"products need {name} to have another shape than "
                                 f"{E.shape_text(target.shape)}")
    mapping: dict[E.Node, E.Node] = {}
    for n in E.walk(claimed.root):
        if n.op == "var":
            mapping[n] = E.dvar(wrt, v.shape) if n.attr[0] == dname else \
                typed.variables[n.attr[0]]
        elif n.op in ("eye", "ones", "zero"):
            shape = tuple(dims.get(d, d) for d in n.shape)
            mapping[n] = E.eye(shape[0]) if n.op == "eye" else \
                E.ones(shape) if n.op == "ones" else E.zero(shape)
    node = E.substitute(claimed.root, mapping)
    if node.shape != typed.root.shape:
        raise ShapeError(f"the claim is {E.shape_text(node.shape)}, but dF has the shape of F, "
                         f"{E.shape_text(typed.root.shape)}")
    return node


def _terms(n: E.Node) -> list[E.Node]:
    return list(n.args) if n.op == "add" else [n]


def check_differential(source: str, wrt: list[str] | str, claim: list[str] | str,
                       types=None) -> DifferentialVerdict:
    from ..oracles.numeric import evaluate, find_point, random_direction
    from ..printing.unicode import UnicodePrinter

    wrt = _one(wrt, "--wrt")
    claim = _one(claim, "--claim-differential")
    result = differential_map(source, wrt, types, check=True)
    typed = result.typed
    true = result.differential
    claimed = read_claim(typed, wrt, claim, types)
    p = UnicodePrinter()
    d, pv = _names(result)
    truth = f"matdiff: {d} = {p.doc(true)}"
    direction = direction_var(typed, wrt)
    rng = np.random.default_rng(77)
    variables = {**typed.variables, direction.attr[0]: direction}
    true_v = applied(true, wrt, direction)
    claim_v = applied(claimed, wrt, direction)
    points = []
    for _ in range(4):
        search = find_point([typed.root, true_v, claim_v], variables, rng)
        if search.point is None:
            search = find_point([typed.root, true_v], variables, rng)
            if search.point is None:
                return DifferentialVerdict("wrong", f"cannot check the claim: "
                                           f"{search.message()}\n{truth}")
        env = dict(search.point.env)
        env[direction.attr[0]] = random_direction(typed.variables[wrt].attr[1],
                                                  env[wrt].shape, rng)
        points.append((env, search.point.sizes))

    def value(node):
        with np.errstate(all="ignore"):
            return [evaluate(applied(node, wrt, direction), env, s) for env, s in points]

    def same(a, b, tol=1e-8):
        for x, y in zip(a, b):
            if x.shape != y.shape or not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
                return False
            if np.max(np.abs(x - y)) > tol * max(1.0, np.max(np.abs(x)), np.max(np.abs(y))):
                return False
        return True

    t, c = value(true), value(claimed)
    if same(t, c):
        return DifferentialVerdict("correct", "correct")
    # linear in dX?
    doubled = [evaluate(claim_v, {**env, direction.attr[0]: 2 * env[direction.attr[0]]}, s)
               for env, s in points]
    if not same(doubled, [2 * x for x in c]):
        return DifferentialVerdict("wrong", f"wrong: the claim is not linear in d{pv} (a "
                                   f"differential is a linear map of d{pv})\n{truth}")
    diagnosis = _diagnose(true, claimed, t, c, value, same, p, (direction, _terms(true_v)))
    return DifferentialVerdict("wrong", f"wrong: {diagnosis}\n{truth}")


def _commuted(terms, direction, to_end: bool):
    """dF with d(X) moved to one end of every product: what dF would be if matrices
    commuted (dX X + X dX → 2X dX); None where a term has no such product."""
    out = []
    for term in terms:
        coef, product = (term.args[0], term.args[1]) if term.op == "scale" else \
            (E.const(1), term)
        factors = list(product.args) if product.op == "matmul" else [product]
        if factors.count(direction) != 1:
            return None
        rest = [f for f in factors if f is not direction]
        order = rest + [direction] if to_end else [direction] + rest
        if not _chains(order):
            return None
        out.append(E.scale(coef, E.matmul(*order)))
    return E.add(*out) if out else None


def _diagnose(true, claimed, t, c, value, same, p, applied_terms=None) -> str:
    true_terms, claim_terms = _terms(true), _terms(claimed)
    if same(t, [-x for x in c]):
        return "wrong sign"
    ratios = [float(np.sum(x * y) / np.sum(y * y)) for x, y in zip(c, t)
              if np.sum(y * y) > 0]
    if ratios and all(abs(r - ratios[0]) <= 1e-8 * max(1.0, abs(ratios[0])) for r in ratios) \
            and same(c, [ratios[0] * x for x in t]):
        return f"off by a factor {ratios[0]:.6g}"
    if all(x.shape == x.T.shape for x in t) and same(c, [x.T for x in t]):
        return "off by a transpose (this is dFᵀ)"
    for term in true_terms:  # missing one term of dF
        if len(true_terms) > 1 and same([x + y for x, y in zip(c, value(term))], t):
            return f"missing a term: {p.doc(term)}"
    for term in claim_terms:  # one term too many
        if len(claim_terms) > 1 and same([x - y for x, y in zip(c, value(term))], t):
            return f"an extra term: {p.doc(term)}"
    for i, term in enumerate(claim_terms):  # a product with its factors in the wrong order
        coef, product = (term.args[0], term.args[1]) if term.op == "scale" else \
            (E.const(1), term)
        if product.op == "matmul" and len(product.args) <= 5:
            for perm in itertools.permutations(product.args):
                if not _chains(perm):
                    continue
                other = E.scale(coef, E.matmul(*perm))
                if other is term or other.shape != term.shape:
                    continue
                fixed = E.add(*claim_terms[:i], other, *claim_terms[i + 1:])
                if same(value(fixed), t):
                    return (f"wrong order of factors: {p.doc(term)} should be "
                            f"{p.doc(settled(other))} (matrix products do not commute)")
    for to_end in ((True, False) if applied_terms is not None else ()):
        direction, terms = applied_terms
        commuted = _commuted(terms, direction, to_end)
        if commuted is not None and same(c, value(commuted)) and not same(value(commuted), t):
            return ("the claim treats matrices as if they commuted: it is dF with the "
                    f"differential moved to the {'right' if to_end else 'left'} of every "
                    "product, but each term keeps its order (d(X²) = dX X + X dX, not 2X dX)")
    return "the claim differs from dF"


def _chains(factors) -> bool:
    return all(a.shape[1] is b.shape[0] for a, b in zip(factors, factors[1:]))


def _one(values, option: str) -> str:
    if isinstance(values, str):
        return values
    values = list(dict.fromkeys(values))
    if len(values) != 1:
        raise DerivationError(f"check --claim-differential needs exactly one {option}")
    return values[0]

