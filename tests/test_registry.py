"""The operator registry is complete: every operator has every facet the stages need, every
function of the language differentiates correctly on every shape it accepts, and the three
evaluators (float64, SymPy, mpmath) agree on every operator."""

from __future__ import annotations

import numpy as np
import pytest

from matdiff.derive.gradient import derive
from matdiff.errors import MatdiffError
from matdiff.ir import expr as E
from matdiff.ops import CALLS, ELEMENTWISE, OPERATORS, REQUIRED, rule
from matdiff.printing.latex import LatexPrinter
from matdiff.printing.text import TextPrinter
from matdiff.printing.unicode import UnicodePrinter

# operators that only appear inside a differential, never in an expression
MARKERS = {"dnode"}
# operators printed by each notation's own grammar (infix, postfix, leaves)
STRUCTURAL = {"add", "scale", "matmul", "hadamard", "hdiv", "pow", "epow", "matpow",
              "transpose", "const", "zero", "ones", "eye"}


@pytest.mark.parametrize("name", sorted(set(OPERATORS) - MARKERS))
def test_every_operator_has_every_facet(name):
    op = OPERATORS[name]
    assert op.label
    for facet in REQUIRED:
        if name == "commutation" and facet == "d":
            continue  # a constant of the vec forms, never differentiated
        assert rule(name, facet) is not None
    if name not in STRUCTURAL:
        for notation in ("text", "unicode", "latex"):
            assert getattr(op.spelling, notation) is not None, (name, notation)
    for printer in (TextPrinter, UnicodePrinter, LatexPrinter):
        assert hasattr(printer, "p_" + name) or getattr(op.spelling, printer.notation)


def test_linear_operators_have_peel_rules():
    # an operator that can hold a differential linearly in a trace form needs a transpose rule
    linear = {"add", "scale", "matmul", "hadamard", "hdiv", "transpose", "tr", "sum",
              "diag_embed", "diag_extract", "dnode"}
    for name in linear:
        assert OPERATORS[name].peel is not None, name


def test_missing_facet_names_operator_and_facet():
    from matdiff.ops import MissingRule

    with pytest.raises(MissingRule, match="no peel rule for 'inv'"):
        rule("inv", "peel")


# every function of the language, on every kind of argument; wrapped to a scalar
ARGUMENTS = {"scalar": "a", "vector": "x", "matrix": "X"}
WRAP = {"scalar": "{}", "vector": "sum({})", "matrix": "sum({})", "square": "sum({})"}


def _calls():
    for name in sorted(CALLS):
        for kind, arg in ARGUMENTS.items():
            if name in ("vector", "matrix") and kind != "scalar":
                continue  # vector(c)/matrix(c) take a scalar c
            yield name, kind, arg


@pytest.mark.parametrize("name,kind,arg", list(_calls()))
def test_every_function_differentiates_on_every_shape_it_accepts(name, kind, arg):
    inner = f"{name}({arg})" if CALLS[name].arity == 1 else f"{name}({arg}, Y)"
    if name in ("vector", "matrix"):
        inner = f"{name}({arg})'*y" if name == "vector" else f"tr({name}({arg})*Y)"
    text = f"sum({inner})" if name not in ("vector", "matrix") else inner
    try:
        result = derive(text, [arg])
    except MatdiffError as e:
        # refused shapes are refused as bad input (e.g. tr of a vector), never a crash
        assert "shape" in e.message or "square" in e.message or "needs" in e.message \
            or "column" in e.message or "undefined" in e.message, e.message
        return
    # derive's self-check compared the gradient with central differences at a point where
    # every operation is defined; a kinked function may only be "not checked" at its kink
    assert result.checked, (text, result.check_reason)
    assert result.max_error < 1e-5


@pytest.mark.parametrize("name", sorted(n for n, e in ELEMENTWISE.items()))
def test_elementwise_rows_agree_in_three_arithmetics(name):
    import mpmath
    import sympy

    entry = ELEMENTWISE[name]
    domain = {"positive": (0.2, 2.0), "unit": (-0.9, 0.9)}.get(entry.domain, (-2.0, 2.0))
    xs = np.linspace(*domain, 7) + 0.0123  # off the kinks at 0
    if entry.evaluate is None:  # derived (σ′): through its definition
        return
    for x in xs:
        value = float(np.asarray(entry.evaluate(np.array([[x]])))[0, 0])
        with mpmath.workdps(30):
            precise = float(entry.mpmath(mpmath, mpmath.mpf(x)))
        exact = float(entry.sympy(sympy, sympy.Float(x, 30)))
        assert abs(value - precise) <= 1e-12 * max(1.0, abs(precise)), (name, x)
        assert abs(exact - precise) <= 1e-12 * max(1.0, abs(precise)), (name, x)


@pytest.mark.parametrize("name", sorted(n for n, e in ELEMENTWISE.items()
                                        if e.derivative is not None))
def test_elementwise_derivative_matches_finite_differences(name):
    from matdiff.oracles.numeric import evaluate

    entry = ELEMENTWISE[name]
    x = E.var("x", "vector", (E.Dim("n"), E.ONE))
    f = E.fn(name, x)
    fprime = entry.derivative(x)
    domain = {"positive": (0.3, 2.0), "unit": (-0.8, 0.8)}.get(entry.domain, (-2.0, 2.0))
    points = np.linspace(*domain, 9).reshape(-1, 1) + 0.0123
    sizes = {x.shape[0]: len(points)}
    h = 1e-6
    fd = (evaluate(f, {"x": points + h}, sizes) - evaluate(f, {"x": points - h}, sizes)) / (2 * h)
    analytic = evaluate(fprime, {"x": points}, sizes) * np.ones_like(points)
    assert np.allclose(fd, analytic, rtol=1e-6, atol=1e-8), name


def test_every_operator_evaluates_alike_in_float64_and_mpmath():
    """One expression per operator, evaluated by numeric (float64) and precise (mpmath)."""
    from matdiff.language.typecheck import typecheck
    from matdiff.oracles import precise
    from matdiff.oracles.numeric import evaluate, find_point

    texts = ["x'*A*x + 2*a", "tr(inv(S))", "logdet(S) + det(S)", "norm1(x) + norm2(X)",
             "logsumexp(x) + y'*softmax(x)", "sum(diag(X)) + sum(diag(x))", "tr(S^3)",
             "a^3 + sum(x.^3) + sum(x./(x.*x + vector(1)))", "sum(erf(x) + sigmoid(x))",
             "sum(relu(x) + abs(x) + sign(x) + softplus(x))", "tr(X'*eye*X) + sum(matrix(a))"]
    for text in texts:
        typed = typecheck(text, {"S": "spd"})
        found = find_point([typed.root], typed.variables, np.random.default_rng(0))
        env, sizes = found.point.env, found.point.sizes
        a = evaluate(typed.root, env, sizes)[0, 0]
        b = float(precise.evaluate(typed.root, env, sizes)[0, 0])
        assert abs(a - b) <= 1e-10 * max(1.0, abs(b)), text
