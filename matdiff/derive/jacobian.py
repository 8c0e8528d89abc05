"""Beyond gradients: Jacobians of vector-valued expressions, Hessians of scalar ones, and
Hessian-vector products for matrix variables.

Jacobian (numerator layout, J is m×n for f: ℝⁿ → ℝᵐ): take the differential df, which is
linear in dx, and *lift* it — one rule per linear operator, in the table LIFT — to the matrix
J with df = J dx: A·dx → A, s ⊙ dx → diag(s), c·v with c = sᵀdx → v sᵀ, and so on.
Hessian of a scalar f of a vector x: the Jacobian of the gradient. For a matrix X the Hessian
is a 4th-order tensor with no matrix form; matdiff gives the linear map H[V] = d(∇f)[dX = V],
the Hessian applied to a direction V (d²f = tr(Vᵀ H[V]))."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DerivationError, InternalError
from ..ir import expr as E
from ..language.typecheck import Typed, typecheck
from .differential import Differentiator
from .gradient import derive, settled


class NoMatrixForm(DerivationError):
    """The derivative is a tensor of order > 2: it has no matrix (Jacobian) form."""


def lift(linear: E.Node, name: str) -> E.Node:
    """J with linear = J·d(name), for a column-vector (or scalar) linear map of d(name)."""
    plain = _unmarked(linear)
    dvars = [n for n in E.walk(plain) if n.op == "dvar" and n.attr == name]
    if dvars and dvars[0].is_scalar:
        # a scalar variable: linear = J·db with db a number, so J is linear at db = 1 — this
        # holds for every linear operator (tr, det's tr(X⁻¹dX), inverses, …), tensor or not
        return E.substitute(plain, {dvars[0]: E.const(1)})
    return _Lifted(name)[plain]


class _Lifted(dict):
    """Lifted forms on demand (top-down, memoised): a rule asks only for the children it can
    use, so a row such as dxᵀ is lifted only inside the product that makes it a scalar.
    A scalar-valued part with no rule of its own (tr(P·dx·qᵀ), sum(M ⊙ dL), …) is a linear
    form gᵀdx: the trace tricks (the gradient's own peeling) give its row gᵀ."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def __missing__(self, n: E.Node) -> E.Node:
        rule = LIFT.get(n.op)
        try:
            if rule is None:
                raise NoMatrixForm(f"the derivative has no matrix form here ({n.op} of a "
                                   "differential); it is a higher-order tensor")
            value = rule(n, self)
        except NoMatrixForm:
            if not n.is_scalar:
                raise
            value = self._linear_form(n)
        self[n] = value
        return value

    def _linear_form(self, n: E.Node) -> E.Node:
        """The row r with n = r·dx for a scalar n linear in dx (a column dx)."""
        from .traceform import to_trace_form

        grads = to_trace_form(n)
        dvars = [d for d in E.walk(n) if d.op == "dvar" and d.attr == self.name]
        if not dvars:
            raise NoMatrixForm(f"no d{self.name} in a linear part")
        g = grads.get(self.name, E.zero(dvars[0].shape))
        return E.transpose(g)


def _linear_args(n: E.Node):
    return [a for a in n.args if E.has_differential(a)]


def _lift_dvar(n, done):
    rows = n.shape[0]
    if n.shape[1] is not E.ONE:
        raise NoMatrixForm(f"d{n.attr} is a matrix: the derivative with respect to a matrix "
                           "has no matrix form (it is a higher-order tensor)")
    return E.eye(rows) if rows is not E.ONE else E.const(1)


def _lift_add(n, done):
    return E.add(*[done[a] for a in n.args if E.has_differential(a)])


def _lift_scale(n, done):
    c, x = n.args
    if E.has_differential(x):
        return E.scale(c, done[x])
    # the scalar factor carries dx: c = r·dx with r a row, so c·v = (v r)·dx
    return E.matmul(x, done[c]) if not x.is_scalar else E.scale(x, done[c])


def _lift_matmul(n, done):
    """P·dl·Q and P·dlᵀ·Q for a column-valued (or scalar) product."""
    f = n.args
    (i,) = [k for k, a in enumerate(f) if E.has_differential(a)]
    if n.shape[1] is not E.ONE:
        return _no_form(n)
    before, lin, after = f[:i], f[i], f[i + 1:]
    P = E.matmul(*before) if before else None
    Q = E.matmul(*after) if after else None
    if lin.op == "diag_embed" and Q is not None:
        # diag(dl)·q = diag(q)·dl for a column q
        inner = E.matmul(E.diag_embed(Q), done[lin.args[0]])
        return E.matmul(P, inner) if P is not None else inner
    if lin.shape[1] is E.ONE:  # a column dl: Q, if any, is a scalar (1×1)
        out = done[lin] if P is None else E.matmul(P, done[lin])
        return out if Q is None else E.scale(Q, out)
    if lin.op == "add":  # (M₁ + M₂)·q with M linear in dx: distribute, then lift each
        return done[E.add(*[E.matmul(*before, t, *after) for t in lin.args])]
    if lin.op == "scale" and not lin.is_scalar and E.has_differential(lin.args[1]):
        return done[E.scale(lin.args[0], E.matmul(*before, lin.args[1], *after))]
    if lin.op == "transpose" and lin.shape[0] is E.ONE and Q is not None:
        # P·(dlᵀQ) = P·Qᵀ·dl, Q a column
        row = E.matmul(E.transpose(Q), done[lin.args[0]])
        return row if P is None else E.matmul(P, row)
    if lin.op == "transpose":  # P·Mᵀ·Q with M a linear matrix: push the transpose into M
        pushed = _push_transpose(lin.args[0])
        if pushed is not None:
            return done[E.matmul(*before, pushed, *after)]
    return _no_form(n)


def _lift_transpose(n, done):
    x = n.args[0]
    if n.is_scalar:
        return done[x]
    # a row's transpose: push the transpose one level down and lift that
    pushed = _push_transpose(x)
    if pushed is None:
        return _no_form(n)
    return done[pushed]


def _push_transpose(x: E.Node) -> E.Node | None:
    if x.op == "matmul":
        return E.matmul(*[E.transpose(f) for f in reversed(x.args)])
    if x.op == "add":
        return E.add(*[E.transpose(t) for t in x.args])
    if x.op == "scale":
        return E.scale(x.args[0], E.transpose(x.args[1]))
    if x.op == "dnode":
        return _push_transpose(x.args[0])
    if x.op == "hadamard":
        return E.hadamard(*[E.transpose(t) for t in x.args])
    return None


def _lift_hadamard(n, done):
    if n.shape[1] is not E.ONE:
        return _no_form(n)
    (lin,) = _linear_args(n)
    others = [a for a in n.args if a is not lin]
    return E.matmul(E.diag_embed(E.hadamard(*others)), done[lin])


def _lift_hdiv(n, done):
    if n.shape[1] is not E.ONE:
        return _no_form(n)
    a, b = n.args
    return E.matmul(E.diag_embed(E.hdiv(E.ones(b.shape), b)), done[a])


def _lift_sum(n, done):
    x = n.args[0]
    if x.shape[1] is not E.ONE:
        return _no_form(n)
    return E.matmul(E.transpose(E.ones(x.shape)), done[x])


def _lift_diag_extract(n, done):
    """diag(L) for a square L linear in dx, one rule per form of L."""
    x = n.args[0]
    op = x.op
    if op == "diag_embed":
        return done[x.args[0]]
    if op == "transpose":  # diag(Mᵀ) = diag(M)
        return done[E.diag_extract(x.args[0])]
    if op == "add":
        return E.add(*[done[E.diag_extract(t)] for t in x.args if E.has_differential(t)])
    if op == "scale":
        c, m = x.args
        if E.has_differential(m):
            return E.scale(c, done[E.diag_extract(m)])
        return E.matmul(E.diag_extract(m), done[c])  # diag(c·M) = diag(M)·c, c = r·dx
    if op == "hadamard":  # diag(S ⊙ L) = diag(S) ⊙ diag(L)
        return done[E.hadamard(*[E.diag_extract(a) for a in x.args])]
    if op == "matmul":
        return _lift_diag_of_product(n, x.args, done)
    return _no_form(n)


def _lift_diag_of_product(n, f, done):
    """diag(P·L·Q): diag(P·diag(dl)·Q) = (P ⊙ Qᵀ)·dl, diag(P·dl·r) = diag(rᵀ)·P·dl for a
    column dl and a row r, diag(c·dlᵀ·Q) = diag(c)·Qᵀ·dl for a column c."""
    (i,) = [k for k, a in enumerate(f) if E.has_differential(a)]
    before, lin, after = f[:i], f[i], f[i + 1:]
    P = E.matmul(*before) if before else None
    Q = E.matmul(*after) if after else None
    if lin.op == "diag_embed":
        if P is None and Q is None:
            return done[lin.args[0]]
        if P is None:
            mix = E.diag_embed(E.diag_extract(Q))
        elif Q is None:
            mix = E.diag_embed(E.diag_extract(P))
        else:
            mix = E.hadamard(P, E.transpose(Q))
        return E.matmul(mix, done[lin.args[0]])
    if lin.shape[1] is E.ONE and Q is not None and Q.shape[0] is E.ONE:
        column = done[lin] if P is None else E.matmul(P, done[lin])
        return E.matmul(E.diag_embed(E.transpose(Q)), column)
    if lin.shape[0] is E.ONE and P is not None and P.shape[1] is E.ONE:
        dl = lin.args[0] if lin.op == "transpose" else _push_transpose(lin)
        if dl is None:
            return _no_form(n)
        column = done[dl] if Q is None else E.matmul(E.transpose(Q), done[dl])
        return E.matmul(E.diag_embed(P), column)
    if lin.op == "add":
        return done[E.diag_extract(E.add(*[E.matmul(*before, t, *after) for t in lin.args]))]
    if lin.op == "scale" and E.has_differential(lin.args[1]):
        return done[E.diag_extract(E.scale(lin.args[0], E.matmul(*before, lin.args[1], *after)))]
    if lin.op == "transpose":
        pushed = _push_transpose(lin.args[0])
        if pushed is not None:
            return done[E.diag_extract(E.matmul(*before, pushed, *after))]
    return _no_form(n)


def _no_form(n):
    raise NoMatrixForm(f"matdiff cannot yet put the derivative through a {n.kind}-valued "
                       f"{n.op} part in matrix form (it passes through a higher-order tensor "
                       "that matdiff does not contract yet); this is a current limitation, not "
                       "a property of the function")


LIFT = {
    "dvar": _lift_dvar, "dnode": lambda n, done: done[n.args[0]], "add": _lift_add,
    "scale": _lift_scale, "matmul": _lift_matmul, "transpose": _lift_transpose,
    "hadamard": _lift_hadamard, "hdiv": _lift_hdiv, "sum": _lift_sum,
    "diag_extract": _lift_diag_extract,
}


# ---------------------------------------------------------------- vec forms


class _VecLifted(dict):
    """K with vec(L) = K·vec(dX), one rule per linear operator (vec is column-major):
    vec(P·L·Q) = (Qᵀ ⊗ P)·vec L, vec(Lᵀ) = K(r,c)·vec L, vec(S ⊙ L) = diag(vec S)·vec L."""

    def __missing__(self, n: E.Node) -> E.Node:
        op = n.op
        if op == "dvar":
            value = E.eye(E.vec(n).shape[0]) if not n.is_scalar else E.const(1)
        elif op == "add":
            value = E.add(*[self[a] for a in n.args if E.has_differential(a)])
        elif op == "scale" and E.has_differential(n.args[1]):
            value = E.scale(n.args[0], self[n.args[1]])
        elif op == "matmul":
            f = n.args
            (i,) = [k for k, a in enumerate(f) if E.has_differential(a)]
            lin = f[i]
            left = E.matmul(*f[:i]) if i > 0 else E.eye(lin.shape[0])
            right = E.transpose(E.matmul(*f[i + 1:])) if i < len(f) - 1 else E.eye(
                lin.shape[1])
            value = E.matmul(E.kron(right, left), self[lin])
        elif op == "transpose":
            x = n.args[0]
            value = E.matmul(E.commutation(x.shape[0], x.shape[1]), self[x]) \
                if x.shape[0] is not E.ONE and x.shape[1] is not E.ONE else self[x]
        elif op == "hadamard":
            lin = [a for a in n.args if E.has_differential(a)][0]
            others = E.hadamard(*[a for a in n.args if a is not lin])
            value = E.matmul(E.diag_embed(E.vec(others)), self[lin])
        else:
            raise NoMatrixForm(f"no vec form for {n.op} of a differential")
        self[n] = value
        return value


def vec_jacobian(source: str | Typed, wrt: str, types=None, check: bool = True):
    """J with vec(df) = J·vec(dX): the Kronecker form of a matrix-valued derivative."""
    typed = typecheck(source, types) if isinstance(source, str) else source
    v = _check_wrt(typed, wrt)
    f = typed.root
    df = _unmarked(Differentiator({wrt})(f))
    J = settled(_VecLifted()[df]) if E.has_differential(df) else E.zero(
        (E.vec(f).shape[0], E.vec(v).shape[0]))
    out = LinearMapResult(typed, wrt, f, J, "vec")
    if check:
        _self_check(out)
    return out


# ---------------------------------------------------------------- public operations


@dataclass
class LinearMapResult:
    typed: Typed
    wrt: str
    function: E.Node  # the expression differentiated (f, or ∇f for a Hessian)
    result: E.Node  # J, H, or H[V]
    kind: str  # "jacobian" | "hessian" | "hvp" | "vec"
    direction: E.Node | None = None  # V for an HVP
    note: str = ""  # e.g. a row-valued f reported through its transpose
    checked: bool = False
    max_error: float = float("nan")
    check_reason: str = ""  # why no check was possible (checked False)


def _check_wrt(typed: Typed, wrt: str) -> E.Node:
    if wrt not in typed.variables:
        from .gradient import unknown_variable_message

        raise DerivationError(unknown_variable_message(wrt, typed), None, typed.source)
    return typed.variables[wrt]


def jacobian(source: str | Typed, wrt: str, types=None, check: bool = True) -> LinearMapResult:
    typed = typecheck(source, types) if isinstance(source, str) else source
    v = _check_wrt(typed, wrt)
    f = typed.root
    note = ""
    if f.shape[0] is E.ONE and f.shape[1] is not E.ONE:
        # a row vector such as xᵀA: its Jacobian is that of the column fᵀ
        f = E.transpose(f)
        note = ("the expression is a row vector; the Jacobian is given for its transpose, "
                "the column vector fᵀ")
        typed = Typed(f, typed.source, typed.variables)
    if f.shape[1] is not E.ONE:
        raise NoMatrixForm(f"the expression is {E.shape_text(f.shape)}: a Jacobian in matrix "
                           "form needs a scalar or column-vector expression", None, typed.source,
                           hint="--vec gives the Kronecker form vec(df) = J vec(dX)")
    if v.shape[1] is not E.ONE:
        raise NoMatrixForm(f"{wrt} is a matrix: the derivative of a vector with respect to a "
                           "matrix is a 3rd-order tensor with no matrix form", None, typed.source,
                           hint="--vec gives the Kronecker form vec(df) = J vec(dX)")
    df = Differentiator({wrt})(f)
    J = settled(lift(df, wrt)) if E.has_differential(df) else E.zero((f.shape[0],
                                                                              v.shape[0]))
    out = LinearMapResult(typed, wrt, f, J, "jacobian", note=note)
    if check:
        _self_check(out)
    return out


def hessian(source: str | Typed, wrt: str, types=None, check: bool = True) -> LinearMapResult:
    """H = ∂²f/∂x∂xᵀ for a vector (or scalar) x; the map V ↦ H[V] for a matrix X."""
    typed = typecheck(source, types) if isinstance(source, str) else source
    if not typed.root.is_scalar:
        raise DerivationError(
            f"a Hessian needs a scalar expression, but this one is "
            f"{E.shape_text(typed.root.shape)}", (0, len(typed.source)), typed.source,
            hint="for a vector-valued expression, `matdiff jacobian` gives J (and "
                 "`matdiff differential` dF); reduce with sum(…), tr(…) or a norm for a Hessian")
    grad = derive(typed, [wrt], types, check=check)
    typed = grad.typed
    v = typed.variables[wrt]
    g = grad.gradients[wrt]
    if v.shape[1] is E.ONE:
        dg = Differentiator({wrt})(g)
        H = settled(lift(dg, wrt)) if E.has_differential(dg) else E.zero(
            (v.shape[0], v.shape[0]))
        out = LinearMapResult(typed, wrt, g, H, "hessian")
    else:
        name = direction_name(typed.variables)
        direction = E.var(name, v.attr[1] if v.attr[1] != "spd" else "symmetric", v.shape)
        dg = Differentiator({wrt})(g)
        hv = E.substitute(_unmarked(dg), {E.dvar(wrt, v.shape): direction})
        hv = settled(hv)
        out = LinearMapResult(typed, wrt, g, hv, "hvp", direction)
    if check:
        _self_check(out)
    return out


def direction_name(taken) -> str:
    """A name for the direction V of H[V] that no variable of the expression uses: V, V_dir,
    dir_V, then V1, V2, … (there is always a free one)."""
    from ..printing.unicode import UnicodePrinter

    shown = UnicodePrinter().var_name
    printed = {shown(n) for n in taken}  # V1 prints as V₁: never clash with a variable V₁

    def free(name: str) -> bool:
        return name not in taken and shown(name) not in printed

    for name in ("V", "V_dir", "dir_V"):
        if free(name):
            return name
    k = 1
    while not free(f"V{k}"):
        k += 1
    return f"V{k}"


def _unmarked(node: E.Node) -> E.Node:
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


def _self_check(out: LinearMapResult, seed: int = 4242) -> None:
    """J·v, H·v, H[V] or J·vec(V) against central differences of f (or ∇f) along v, at a
    point where every operation is defined (a NaN comparison fails; no such point means
    "not checked", or bad input when f itself is undefined everywhere)."""
    import numpy as np

    from ..oracles.numeric import best_directional_error, find_point, random_direction, worst_of
    from .gradient import undefined_error

    variables = out.typed.variables
    rng = np.random.default_rng(seed)
    # H[V] has the direction V among its variables: it is drawn later, per direction
    roots = [out.function] if out.kind == "hvp" else [out.function, out.result]
    search = find_point(roots, variables, rng)
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
        for _ in range(2):
            direction = random_direction(variables[out.wrt].attr[1], x.shape, rng)
            analytic = _applied(out, env, sizes, direction)
            shaped = (lambda fd: fd.reshape(-1, 1, order="F")) if out.kind == "vec" else \
                (lambda fd: fd)
            worst = worst_of(worst, best_directional_error(
                out.function, env, sizes, out.wrt, direction, analytic, scale, shaped))
    if not worst <= 1e-5:
        raise InternalError(f"the numerical self-check rejected the derived {out.kind} "
                            f"(relative error {worst:.2g}); this is a bug, please report it")
    out.checked, out.max_error = True, worst


def _applied(out: LinearMapResult, env, sizes, direction):
    """The derived linear map applied to a direction: H[V], J·v, or J·vec(V)."""
    from ..oracles.numeric import evaluate

    if out.direction is not None:
        return evaluate(out.result, {**env, out.direction.attr[0]: direction}, sizes)
    J = evaluate(out.result, env, sizes)
    return J @ (direction.reshape(-1, 1, order="F") if out.kind == "vec" else direction)


# ---------------------------------------------------------------- code generation


@dataclass
class _Program:
    """What codegen needs when there is no gradient to emit (a vector-valued f)."""

    typed: Typed
    f: E.Node
    wrt: list
    gradients: dict


def extras_for(results: list[LinearMapResult]):
    from ..codegen import Extra, function_name

    out = []
    for r in results:
        if r.kind == "jacobian":
            out.append(Extra(function_name("jac_", r.wrt), f"J = ∂f/∂{r.wrt}ᵀ (numerator "
                             "layout)", r.result))
        elif r.kind == "hessian":
            out.append(Extra(function_name("hess_", r.wrt), f"H = ∂²f/∂{r.wrt}∂{r.wrt}ᵀ",
                             r.result))
            # the same product as a map, so every variable has hvp_NAME
            v = r.typed.variables[r.wrt]
            name = direction_name(r.typed.variables)
            direction = E.var(name, v.attr[1], v.shape)
            out.append(Extra(function_name("hvp_", r.wrt), f"H·V for ∂²f/∂{r.wrt}∂{r.wrt}ᵀ",
                             E.matmul(r.result, direction) if not v.is_scalar else
                             E.scale(direction, r.result), direction))
        else:
            out.append(Extra(function_name("hvp_", r.wrt), f"H[V]: the Hessian of f with "
                             f"respect to {r.wrt} applied to V", r.result, r.direction))
    return out


def jacobian_module(source: str, wrt: list[str], types=None) -> tuple[str, list]:
    results = [jacobian(source, w, types) for w in dict.fromkeys(wrt)]
    from ..codegen import numpy_module

    program = _Program(results[0].typed, results[0].typed.root, [], {})
    return numpy_module(program, extras_for(results)), results


def hessian_extras(source: str, wrt: list[str], types=None) -> list:
    # a variable named twice (--wrt x --wrt x) gets one hess_x and one hvp_x
    return extras_for([hessian(source, w, types) for w in dict.fromkeys(wrt)])


def verify_extras(results: list[LinearMapResult], source: str, seed: int = 11):
    """jac_/hess_/hvp_ functions of an emitted module against central differences of the
    emitted f (Jacobian) or of the reference gradient (Hessian)."""
    import numpy as np

    from ..codegen import function_name
    from ..codegen.verify import VerifyReport, load_module
    from ..oracles.numeric import (
        evaluate,
        find_point,
        from_public,
        random_direction,
        to_public,
        worst_of,
    )

    mod = load_module(source)
    lines, worst = [], 0.0
    rng = np.random.default_rng(seed)
    for r in results:
        variables = r.typed.variables
        search = find_point([r.function] if r.kind == "hvp" else [r.function, r.result],
                            variables, rng)
        if search.point is None:
            lines.append(f"{r.kind} {r.wrt}: could not verify: {search.message()}")
            worst = float("nan")
            continue
        env, sizes = search.point.env, search.point.sizes
        args = {n: to_public(env[n], v.shape) for n, v in variables.items()}
        v = variables[r.wrt]
        direction = random_direction(v.attr[1], env[r.wrt].shape, rng)
        if r.kind == "jacobian":
            emitted = from_public(getattr(mod, function_name("jac_", r.wrt))(**args),
                                  (r.result.shape[0], r.result.shape[1])) @ direction
            def value(e, r=r, v=v, args=args):
                return from_public(mod.f(**{**args, r.wrt: to_public(e, v.shape)}),
                                   r.function.shape)
        else:
            fn = getattr(mod, function_name("hvp_", r.wrt))
            emitted = from_public(fn(to_public(direction, v.shape), **args), v.shape)
            def value(e, r=r, env=env, sizes=sizes):
                return evaluate(r.function, {**env, r.wrt: e}, sizes)
        eps = 1e-5
        x0 = env[r.wrt]
        fd = (value(x0 + eps * direction) - value(x0 - eps * direction)) / (2 * eps)
        with np.errstate(all="ignore"):
            err = float(np.max(np.abs(fd - emitted))) / max(1e-6, float(np.max(np.abs(fd))))
        lines.append(f"{r.kind} {r.wrt}: max relative error vs finite differences {err:.1e}")
        worst = worst_of(worst, err)
    ok = worst < 1e-5
    lines.append(f"verify: {'ok' if ok else 'FAILED'} (max relative error {worst:.1e})")
    return VerifyReport(ok, "\n".join(lines), worst)
