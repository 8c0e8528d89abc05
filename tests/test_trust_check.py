"""The self-check and `check` cannot pass vacuously (issues 10 and 19): the check runs where
every operation is defined, a NaN comparison is never a pass, and `correct` means proved or
equal at many points in high precision."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matdiff
from matdiff.derive.gradient import derive
from matdiff.errors import MatdiffError
from matdiff.oracles import numeric
from matdiff.oracles.diagnose import check_claim


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "matdiff", *args, "--plain"],
                          capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- the self-check


@pytest.mark.parametrize("expr, wrt, types", [
    ("tr(inv(X'*X))", "X", {}),
    ("tr(inv(X'*C*X)*A)", "X", {}),  # Matrix Cookbook (125)
    ("tr(inv(X'*C*X)*X'*B*X)", "X", {}),  # (126)
    ("log(det(X'*X))", "X", {}),
    ("-sum(log(y - A*x))", "x", {}),  # a log barrier: no random point has y > Ax
    ("tr(X^40)", "X", {}),  # overflows or underflows at most points
    ("sum(sqrt(x - vector(2)))", "x", {}),
])
def test_self_check_finds_a_point_in_the_domain(expr, wrt, types):
    result = derive(expr, [wrt], types)
    assert result.checked, result.check_reason
    assert 0 <= result.max_error < 1e-5


def test_the_check_point_makes_x_transpose_x_invertible():
    from matdiff.oracles.numeric import find_point

    result = derive("tr(inv(X'*X))", ["X"], check=False)
    found = find_point([result.f, *result.gradients.values()], result.typed.variables,
                       np.random.default_rng(0))
    x = found.point.env["X"]
    assert x.shape[0] >= x.shape[1]
    assert np.linalg.cond(x.T @ x) < 1e8


def test_nan_comparisons_fail(monkeypatch):
    # every finite difference NaN: the old max(0.0, nan) folded this into a perfect 0.0
    assert numeric.worst_of(0.0, float("nan")) != numeric.worst_of(0.0, float("nan"))
    monkeypatch.setattr(numeric, "finite_difference", lambda *a, **k: float("nan"))
    result = derive("x'*A*x", ["x"], check=False)
    outcome = numeric.check_gradients(result.f, result.gradients, result.typed.variables)
    assert not outcome.ok
    assert all(not c.ok for c in outcome.checks)


def test_nan_comparison_is_not_reported_as_checked(monkeypatch):
    monkeypatch.setattr(numeric, "finite_difference", lambda *a, **k: float("nan"))
    with pytest.raises(matdiff.errors.InternalError):
        derive("x'*A*x", ["x"])


def test_undefined_everywhere_is_bad_input():
    for expr, wrt in [("tr(inv(x*x'))", "x"), ("a/0", "a"), ("log(a-a)", "a"),
                      ("logdet(x*x')", "x"), ("tr(inv(0*X))", "X")]:
        with pytest.raises(MatdiffError, match="undefined .no finite value. at every point tried"):
            derive(expr, [wrt])
    proc = _run("grad", "tr(inv(x*x'))", "--wrt", "x")
    assert proc.returncode == 2 and "undefined" in proc.stderr and "bug" not in proc.stderr


def test_gradient_undefined_everywhere_is_not_checked():
    # det(xxᵀ) ≡ 0 for n ≥ 2, but the formula det(a)·a⁻¹x needs an inverse that never exists
    result = derive("det(x*x')", ["x"])
    assert not result.checked
    assert "singular" in result.check_reason
    proc = _run("grad", "det(x*x')", "--wrt", "x")
    assert proc.returncode == 0
    assert "NOT checked" in proc.stdout and "max relative error" not in proc.stdout
    proc = _run("grad", "det(x*x')", "--wrt", "x", "--format", "json")
    data = json.loads(proc.stdout)
    assert data["checked"] is False and "singular" in data["reason"]


def test_no_numpy_warnings_on_stderr():
    for args in (["grad", "log(det(X'*X))", "--wrt", "X"],
                 ["grad", "det(x*x')", "--wrt", "x"],
                 ["check", "exp(a)", "--wrt", "a", "--claim", "exp(a)*1.0000001"]):
        proc = _run(*args)
        assert proc.stderr == "", (args, proc.stderr)


def test_verify_never_passes_on_nan():
    from matdiff.codegen.verify import verify_module

    result = derive("x'*A*x", ["x"])
    source = result_source = matdiff.grad("x'*A*x", "x").numpy_source()
    broken = source.replace("def grad_x(*, x, A):", "def grad_x(*, x, A):\n    return "
                            "np.full(x.shape, np.nan)\n\n\ndef _unused(*, x, A):", 1)
    assert broken != result_source
    report = verify_module(result, broken)
    assert not report.ok


# ---------------------------------------------------------------- check: wrong claims


@pytest.mark.parametrize("expr, wrt, claim", [
    ("x'*x", "x", "2*x + relu(x.*x - vector(4))"),
    ("a^2", "a", "2*a + relu(a - 5)"),
    ("x'*A*x", "x", "(A+A')*x + relu(norm2(x) - 100)*x"),
    ("sum(abs(x))", "x", "sign(x) + relu(abs(x) - vector(2))"),
    ("exp(a)", "a", "exp(a)*1.0000001"),
    ("exp(a)", "a", "exp(a+0.0000001)"),
    ("-y'*log(softmax(W*x))", "W", "1.0000001*(sum(y)*softmax(W*x) - y)*x'"),
    ("sum(sigmoid(W*x))", "W", "1.0000001*(sigmoid(W*x).*(vector(1)-sigmoid(W*x)))*x'"),
    ("tr(A*X)", "X", "1.0000001*A'"),
    # differences far below 50 digits: exact constants widen the high-precision comparison
    ("tr(X*X')", "X", "2*X + 1e-45*X"),
    ("tr(X*X')", "X", "2*X + 1e-300*X"),
    ("tr(X*X')", "X", "2*X + 1e-30*X*1e-30"),
    ("tr(X*X')", "X", "(1+1e-100)*(2*X)"),
])
def test_wrong_claims_are_wrong(expr, wrt, claim):
    verdict = check_claim(expr, wrt, claim)
    assert verdict.status == "wrong" and not verdict.correct, verdict.text
    assert not verdict.text.startswith("correct")


def test_constant_factor_is_printed_with_its_digits():
    verdict = check_claim("x'*A*x", "x", "1.000001*(A+A')*x")
    assert "1.000001 × ∂f/∂x" in verdict.text
    verdict = check_claim("x'*A*x", "x", "(A+A')*x/3")
    assert "1/3 × ∂f/∂x" in verdict.text


def test_piecewise_agreement_is_not_called_correct():
    verdict = check_claim("sum(abs(x))", "x", "x./abs(x)")
    assert verdict.status == "unproved" and not verdict.correct and verdict.agrees
    assert verdict.text.startswith("agrees with ∂f/∂x at")
    assert "both sides of every kink" in verdict.text and "not proved" in verdict.text


def test_same_formula_is_proved():
    verdict = check_claim("sum(abs(x))", "x", "sign(x)")
    assert verdict.correct and verdict.exact is True


@pytest.mark.parametrize("expr, claim", [
    ("1e-200*tr(X*X')", "2e-200*X"),  # tiny exact constants widen the digits, not the verdict
    ("tr(X*X')", "(1+1e-100)*(2*X) - 2e-100*X"),
])
def test_right_claims_with_extreme_constants_are_correct(expr, claim):
    verdict = check_claim(expr, "X", claim)
    assert verdict.correct, verdict.text


def test_exact_step_has_a_time_budget():
    import time

    start = time.process_time()
    verdict = check_claim("tr(X^20)", "X", "20*(X')^19")
    assert verdict.correct
    assert time.process_time() - start < 5


def test_undefined_claim_domain_is_bad_input():
    with pytest.raises(MatdiffError):
        check_claim("tr(inv(x*x'))", "x", "0*x")


# ---------------------------------------------------------------- property tests

# (expression, variable, its gradient, a variable-shaped piecewise term zero on [−1, 1])
BASES = [
    ("x'*A*x", "x", "(A+A')*x", "relu(abs(x) - vector(1))"),
    ("tr(X'*A*X)", "X", "(A+A')*X", "relu(abs(X) - matrix(1))"),
    ("norm2(A*x - y)^2", "x", "2*A'*(A*x - y)", "relu(abs(x) - vector(1))"),
    ("sum(exp(x))", "x", "exp(x)", "relu(abs(x) - vector(1))"),
    ("log(det(X))", "X", "inv(X)'", "relu(abs(X) - matrix(1))"),
    ("a*log(a)", "a", "log(a) + 1", "relu(abs(a) - 1)"),
    ("-y'*log(softmax(W*x))", "W", "(sum(y)*softmax(W*x) - y)*x'",
     "relu(abs(W) - matrix(1))"),
    ("sum(relu(x))", "x", "sign(relu(x))", "relu(abs(x) - vector(1))"),
]


@settings(max_examples=14, deadline=None, suppress_health_check=list(HealthCheck))
@given(base=st.sampled_from(BASES), how=st.sampled_from(["scale", "outside", "kink"]),
       exponent=st.integers(min_value=6, max_value=9), sign=st.sampled_from([1, -1]))
def test_perturbed_claims_are_never_correct(base, how, exponent, sign):
    expr, wrt, gradient, beyond_one = base
    if how == "scale":
        claim = f"(1 + {sign}*1e-{exponent})*({gradient})"
    elif how == "outside":  # zero wherever the old sampling looked (|entries| ≤ 1)
        claim = f"{gradient} + {sign}*{beyond_one}"
    else:  # a kink moved: a relu switched on a little early
        inner = beyond_one.split('(', 1)[1].rsplit(')', 1)[0]
        half = "vector(0.5)" if "vector" in beyond_one else \
            "matrix(0.5)" if "matrix" in beyond_one else "0.5"
        claim = f"{gradient} + relu({inner} + {half})"
    verdict = check_claim(expr, wrt, claim)
    assert verdict.status == "wrong", (claim, verdict.text)


REWRITES = [
    lambda g: f"(({g})')'",
    lambda g: f"2*({g})/2",
    lambda g: f"({g}) + 0*({g})",
    lambda g: f"0.5*({g}) + ({g})/2",
    lambda g: f"3*({g}) - 2*({g})",
]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(base=st.sampled_from([b for b in BASES if "relu" not in b[0]]),
       rewrite=st.sampled_from(REWRITES))
def test_right_claims_written_differently_are_never_wrong(base, rewrite):
    expr, wrt, gradient, _ = base
    verdict = check_claim(expr, wrt, rewrite(gradient))
    assert verdict.status == "correct", (rewrite(gradient), verdict.text)


@pytest.mark.parametrize("expr, wrt, claim", [
    ("x'*A*x", "x", "(x'*(A+A'))'"),
    ("tr(X'*A*X)", "X", "A*X + A'*X"),
    ("norm2(A*x-y)^2", "x", "2*A'*A*x - 2*A'*y"),
    ("sum(sigmoid(x))", "x", "exp(-x)./(vector(1)+exp(-x)).^2"),
    ("sum(tanh(x))", "x", "4*exp(2*x)./(exp(2*x)+vector(1)).^2"),
    ("log(det(X'*X))", "X", "X*inv(X'*X) + X*inv(X'*X)'"),
    ("tr(inv(X))", "X", "-inv(X*X)'"),
])
def test_textbook_claims_are_correct(expr, wrt, claim):
    verdict = check_claim(expr, wrt, claim)
    assert verdict.correct, verdict.text


# ---------------------------------------------------------------- output of the trust fixes


def test_kinds_from_context_are_said_on_the_variables_line_and_in_json():
    proc = _run("grad", "norm2(A*x-b)^2", "--wrt", "x")
    assert "b vector m (from context)" in proc.stdout
    data = json.loads(_run("grad", "norm2(A*x-b)^2", "--wrt", "x", "--format", "json").stdout)
    assert data["variables"]["b"] == {"kind": "vector", "shape": ["m"], "from_context": True}
    assert "from_context" not in data["variables"]["A"]


def test_differential_drops_double_transposes():
    assert "df = tr(A dX)" in _run("grad", "tr(A*X)", "--wrt", "X").stdout
    assert "df = tr(S dX)" in _run("grad", "tr(S*X)", "--wrt", "X", "--let", "S:spd").stdout
    data = json.loads(_run("grad", "tr(A*X)", "--wrt", "X", "--format", "json").stdout)
    assert data["gradients"]["X"]["differential"] == "df = tr(A dX)"
    assert data["checked"] is True and data["max_relative_error"] < 1e-8


def test_json_steps_are_before_after_rule():
    data = json.loads(_run("grad", "tr(A*X*B)", "--wrt", "X", "--format", "json",
                           "--steps").stdout)
    assert data["steps"] and all(set(s) == {"before", "after", "rule"} for s in data["steps"])
    assert any(s["rule"].startswith("trick 12") for s in data["steps"])


@pytest.mark.parametrize("expr, wrt, claim", [
    ("relu(a)", "a", "1"),  # relu's negative side must be sampled
    ("sum(relu(A*x))", "x", "A'*vector(1)"),  # the forgotten mask
    ("sum(relu(x))", "x", "vector(1) + 0*x"),
    ("sum(abs(x))", "x", "sign(x - 0.01*vector(1))"),  # a kink moved by 0.01
    ("sum(relu(x))", "x", "sign(relu(x - 0.001*vector(1)))"),
    ("a^2", "a", "2*a + relu(a - 1000)"),  # a kink far out
])
def test_piecewise_claims_wrong_between_or_beyond_kinks(expr, wrt, claim):
    verdict = check_claim(expr, wrt, claim)
    assert verdict.status == "wrong", verdict.text


def test_a_wrong_term_far_out_is_not_called_a_constant_factor():
    verdict = check_claim("a^2", "a", "2*a + relu(a - 100)")
    assert verdict.status == "wrong" and "constant factor" not in verdict.text


def test_power_of_a_negative_base_is_undefined():
    with pytest.raises(MatdiffError, match="undefined"):
        derive("(-1)^a", ["a"])


def test_self_check_samples_relu_on_both_sides():
    from matdiff.oracles.numeric import find_point

    result = derive("sum(relu(x))", ["x"], check=False)
    rng = np.random.default_rng(0)
    signs = set()
    for _ in range(6):
        found = find_point([result.f, *result.gradients.values()], result.typed.variables, rng)
        signs |= set(np.sign(found.point.env["x"]).ravel())
    assert signs == {-1.0, 1.0}


def test_unproved_has_its_own_exit_code_and_undefined_formula_is_exit_2():
    proc = _run("check", "sum(abs(x))", "--wrt", "x", "--claim", "x./abs(x)")
    assert proc.returncode == 4 and proc.stdout.startswith("agrees")
    proc = _run("check", "det(x*x')", "--wrt", "x", "--claim", "0*x")
    assert proc.returncode == 2 and "cannot check the claim" in proc.stderr


def test_claim_errors_keep_their_hint():
    with pytest.raises(MatdiffError) as info:
        check_claim("sum(sigmoid(x))", "x", "sigmoid(x).*(1 - sigmoid(x))")
    assert "vector(1)" in info.value.render()


def test_an_option_of_another_command_is_named_as_such():
    proc = _run("hessian", "x'*A*x", "--wrt", "x", "--steps")
    assert proc.returncode == 2
    assert "--steps is not an option of 'matdiff hessian'" in proc.stderr
    assert "did you mean --steps" not in proc.stderr  # the old, self-contradicting hint
    proc = _run("grad", "x'*x", "--wrt", "x", "--stpes")
    assert proc.returncode == 2 and "did you mean --steps?" in proc.stderr


def test_an_unsubscripted_matrix_norm_says_how_it_was_read():
    proc = _run("grad", "||X||^2", "--wrt", "X")
    assert proc.returncode == 0 and "read as the Frobenius norm" in proc.stdout
    assert "Frobenius" not in _run("grad", "||X||_F^2", "--wrt", "X").stdout
    assert "Frobenius" not in _run("grad", "||x||^2", "--wrt", "x").stdout  # a vector: no doubt
