"""simplify is one fixed point: idempotent (simplify(simplify(x)) is simplify(x), the same
interned node) and value-preserving, on random well-typed expressions and on every derived
gradient and intermediate of them (the raw trace-form output is where the rules work hardest)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matdiff
from matdiff.cli import main
from matdiff.derive.gradient import derive
from matdiff.derive.simplify import simplify
from matdiff.derive.traceform import to_trace_form
from matdiff.language.typecheck import typecheck
from matdiff.oracles.numeric import evaluate, find_point

from .test_gradients import _exprs


def _close(a, b) -> bool:
    return np.allclose(a, b, rtol=1e-9, atol=1e-9 * max(1.0, float(np.max(np.abs(a)))))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(_exprs("scalar", 5), st.sampled_from(["a", "x", "X"]))
def test_simplify_is_idempotent_and_preserves_value(expr, wrt):
    typed = typecheck(expr)
    if wrt not in typed.variables:
        return
    result = derive(typed, [wrt], check=False)
    raw = to_trace_form(result.df)[wrt] if wrt in to_trace_form(result.df) else None
    nodes = [typed.root, result.gradients[wrt]] + ([raw] if raw is not None else [])
    found = find_point([typed.root, *result.gradients.values()], typed.variables,
                       np.random.default_rng(0))
    for node in nodes:
        once = simplify(node)
        assert simplify(once) is once, expr  # a fixed point, not "a few more rounds"
        if found.point is not None:
            env, sizes = found.point.env, found.point.sizes
            with np.errstate(all="ignore"):
                before, after = evaluate(node, env, sizes), evaluate(once, env, sizes)
            if np.all(np.isfinite(before)):
                assert _close(before, after), expr


def test_each_call_has_its_own_memo():
    # no memo survives a call: the same node simplified twice gives the same interned result,
    # and nothing module-global is left behind
    import matdiff.derive.simplify as S

    node = typecheck("tr(A*X*B*X')").root
    assert simplify(node) is simplify(node)
    assert not any(isinstance(v, list) and v and isinstance(v[0], dict) for v in vars(S).values())


@pytest.mark.parametrize("expr, printed", [
    ("(x'*A*x)*(x'*x)", "2(xᵀAx)·x + (xᵀx)·(A + Aᵀ)x"),
    ("(x'*y)*(x'*x)", "(xᵀx)·y + 2(xᵀy)·x"),
    ("(x'*A*x)*x'*x", "2(xᵀAx)·x + (xᵀx)·(A + Aᵀ)x"),
])
def test_a_product_of_scalar_forms_keeps_them_as_numbers(expr, printed):
    # (xᵀAx)(xᵀx) is a number times a number: its gradient is not (Axxᵀ + xxᵀA + …)x
    result = matdiff.grad(expr, "x")
    assert repr(result).endswith(f"∂f/∂x = {printed}>"), repr(result)
    assert matdiff.check(expr, "x", str(result.gradient("x"))).status == "correct"


def test_the_trace_of_a_power_of_an_inverse_transpose_is_a_negative_power():
    # tr((Mᵀ)ᵏ) = tr(Mᵏ), and (M⁻¹)³ is M⁻³: the README's Hessian of tr(inv(A + bI))
    result = matdiff.grad("tr(inv(X)^2)", "X")
    out = io.StringIO()
    assert main(["hessian", "tr(inv(A + b*eye))", "--wrt", "b", "--plain"], out=out) == 0
    assert "H = ∂²f/∂b∂bᵀ = 2tr((A + b·I)⁻³)" in out.getvalue(), out.getvalue()
    assert matdiff.check("tr(inv(X)^2)", "X", "-2*(X^-3)'").status == "correct"
    assert repr(result).endswith("∂f/∂X = −2(X⁻ᵀ)³>")


@pytest.mark.parametrize("expr, wrt, printed", [
    ("x'*y*y'*x", "x", "2(xᵀy)·y"),  # xᵀy and yᵀx are one number: the terms collect
    ("(z'*x)*(z'*A*x)", "z", "(zᵀAx)·x + (xᵀz)·Ax"),  # a column, not (rows)ᵀ
])
def test_scalar_forms_collect_and_columns_are_not_transposed_rows(expr, wrt, printed):
    result = matdiff.grad(expr, wrt)
    assert repr(result).endswith(f"∂f/∂{wrt} = {printed}>"), repr(result)
    assert "ᵀ)ᵀ" not in result.text()
