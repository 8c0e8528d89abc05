"""Wrong verdicts a probe found in `check` (session 5): a SymPy disproof that was ignored, a
claim with no real value where the gradient has one, probability vectors compared at data
that does not sum to 1, and matrix-function claims that crashed the 50-digit comparison."""

from __future__ import annotations

import pytest

import matdiff
from matdiff.cli import main


def test_a_sympy_disproof_makes_the_claim_wrong():
    # 1 + e⁻³⁰⁰ is 1 to 90 digits; only the exact step sees the difference
    verdict = matdiff.check("a^2", "a", "2*a*(1+exp(-300))")
    assert verdict.status == "wrong" and not verdict.correct and verdict.exact is False
    assert "not identically" in verdict.text and "exp(-300)" in verdict.text
    assert matdiff.check("a^2", "a", "2*a").status == "correct"


def test_a_disproof_from_the_command_line_exits_1(capsys):
    code = main(["check", "tr(A*X*B)", "--wrt", "X", "--claim", "A'*B'*(1+exp(-200))",
                 "--steps", "--plain"])
    assert code == 1 and capsys.readouterr().out.startswith("wrong")


@pytest.mark.parametrize("expr, wrt, claim", [
    ("a^2", "a", "2*exp(log(a))"),  # exp(log(a)) = a only for a > 0
    ("x'*x", "x", "2*exp(log(x))"),
    ("x'*x", "x", "2*sqrt(x).*sqrt(x)"),
])
def test_a_claim_without_a_real_value_where_the_gradient_has_one_is_wrong(expr, wrt, claim):
    verdict = matdiff.check(expr, wrt, claim)
    assert verdict.status == "wrong", verdict.text
    assert "no value at points where" in verdict.text and "e.g. at" in verdict.text


@pytest.mark.parametrize("expr, wrt, claim", [
    ("-y'*log(softmax(a))", "a", "sum(y)*softmax(a)-y"),  # matdiff's undeclared answer
    ("-y'*log(softmax(a))", "a", "softmax(a)-y"),
    ("x'*y", "x", "y/sum(y)"),
])
def test_claims_right_when_the_labels_sum_to_one_are_correct(expr, wrt, claim):
    verdict = matdiff.check(expr, wrt, claim, {"y": "probability"})
    assert verdict.status == "correct", verdict.text


@pytest.mark.parametrize("claim", ["1.0001*y", "y + vector(0.001)", "2*y"])
def test_a_probability_vector_does_not_excuse_a_wrong_claim(claim):
    verdict = matdiff.check("x'*y", "x", claim, {"y": "probability"})
    assert verdict.status == "wrong", verdict.text


@pytest.mark.parametrize("expr, right, wrong", [
    ("tr(expm(X))", "expm(X)'", "expm(X)"),
    ("tr(sqrtm(X))", "0.5*inv(sqrtm(X))'", "0.5*inv(sqrtm(X))' + 0.001*X"),
    ("tr(A*expm(X))", None, "A'"),
])
def test_matrix_function_claims_are_compared_not_crashed(expr, right, wrong):
    types = {"X": "spd"} if "sqrtm" in expr else None
    if right is not None:
        assert matdiff.check(expr, "X", right, types).status == "correct"
    assert matdiff.check(expr, "X", wrong, types).status == "wrong"


@pytest.mark.parametrize("expr, wrt, claim", [
    ("x'*A*x", "x", "(A+A')*x"), ("tr(A*X)", "X", "A'"), ("log(det(X))", "X", "inv(X)'"),
])
def test_a_denominator_answer_under_numerator_layout_is_called_so(expr, wrt, claim):
    text = matdiff.check(expr, wrt, claim, layout="numerator").text
    assert "this is the denominator-layout answer" in text, text
    assert "declare it with --layout numerator" not in text, text


def test_a_scalar_claim_is_not_called_a_row_vector():
    text = matdiff.check("exp(a*x'*x)", "x", "exp(a*x'*x)").text
    assert text.startswith("wrong shape: the claim is scalar") and "row vector" not in text


def test_the_api_takes_the_layout_and_the_convention():
    assert matdiff.check("tr(A*X)", "X", "A", layout="numerator").status == "correct"
    assert matdiff.check("tr(A*X)", "X", "A").status == "wrong"
    assert matdiff.check("x'*S*x", "S", "2*x*x' - diag(diag(x*x'))", {"S": "symmetric"},
                         convention="cookbook").status == "correct"


def test_a_relu_claim_is_compared_on_both_sides_of_its_kink():
    # matdiff's sign(relu(x)) never goes negative: the kink to straddle is x's
    verdict = matdiff.check("sum(relu(x))", "x", "relu(sign(x))")
    assert verdict.status == "unproved" and "on both sides of every kink" in verdict.text
    assert "not on both sides" not in verdict.text
    assert matdiff.check("sum(relu(x))", "x", "relu(sign(x - vector(0.01)))").status == "wrong"


@pytest.mark.parametrize("expr, wrt, claim, words", [
    ("norm2(A*x-y)^2", "x", "2*A*(A*x-y)", "a transpose is missing: A stands where Aᵀ"),
    ("tr(A*X*B)", "X", "A*B'", "a transpose is missing: A stands where Aᵀ"),
    ("x'*A*y", "x", "A'*y", "one transpose too many: Aᵀ stands where A"),
])
def test_a_missing_or_extra_transpose_is_named(expr, wrt, claim, words):
    verdict = matdiff.check(expr, wrt, claim)
    assert verdict.status == "wrong" and verdict.text.startswith(words), verdict.text


@pytest.mark.parametrize("expr, claim", [
    ("norm1(A*x - y)", "A'*sign(A*x - 1.001*y)"),
    ("sum(abs(A*x - y))", "A'*sign(A*x - y + vector(0.001))"),
])
def test_the_probability_diagnosis_is_confirmed_before_it_is_said(expr, claim):
    verdict = matdiff.check(expr, "x", claim)
    assert verdict.status == "wrong" and "1ᵀy" not in verdict.text, verdict.text


def test_the_probability_diagnosis_still_names_the_missing_label_sum():
    text = matdiff.check("-y'*log(softmax(a))", "a", "softmax(a)-y").text
    assert text.startswith("right only when 1ᵀy = 1")


def test_each_occurrence_is_only_said_where_the_variable_occurs_twice():
    once = matdiff.check("x'*S*x", "S", "2*x*x'", {"S": "symmetric"}, convention="cookbook")
    assert once.text.startswith("missing a term") and "each occurrence" not in once.text
    twice = matdiff.check("tr(X'*A*X)", "X", "A*X").text
    assert "each occurrence of X in f contributes a term" in twice


@pytest.mark.parametrize("expr, claim", [
    ("a^2", "2*a + exp(-1e5*a^2)"), ("a^2", "2*a*tanh(1e6*a^2)"),
    ("x'*x", "2*x + exp(-1e6*x'*x)*x"),
])
def test_a_claim_wrong_only_near_zero_is_wrong(expr, claim):
    wrt = "a" if expr.startswith("a") else "x"
    assert matdiff.check(expr, wrt, claim).status == "wrong"


@pytest.mark.parametrize("expr, claim, side", [
    ("X^2", "2*X*dX", "right"), ("X^3", "3*X^2*dX", "right"),
    ("inv(X)", "-inv(X)^2*dX", "right"), ("X^2", "2*dX*X", "left"),
])
def test_a_differential_that_commutes_matrices_is_named(expr, claim, side, capsys):
    code = main(["check", expr, "--wrt", "X", "--claim-differential", claim, "--plain"])
    out = capsys.readouterr().out
    assert code == 1 and "as if they commuted" in out and f"to the {side}" in out, out


@pytest.mark.parametrize("expr, wrt, claim, words", [
    ("(x'*y)^2", "x", "(x'*y)*y", "missing factor 2"), ("a^4", "a", "2*a^3", "missing factor 2"),
    ("sum(x.^6)", "x", "3*x.^5", "missing factor 2"),
    ("(x'*y)^2", "x", "3*(x'*y)*y", "off by a constant factor: the claim is 3/2"),
    ("x'*y*y'*x", "x", "y*y'*x", "missing factor 2"),
])
def test_a_constant_factor_is_named_for_gradients_of_high_degree(expr, wrt, claim, words):
    # the points at entry scale 10⁻³ make such gradients ~10⁻⁹: no ratio can be read there
    assert matdiff.check(expr, wrt, claim).text.startswith(words)


@pytest.mark.parametrize("latex, kind", [
    (r"(1 - b \mathbf{w}^\top \mathbf{x})^{+}", "scalar"),
    (r"\operatorname{sum}((\mathbf{z})^{+})", "vector"),
])
def test_a_latex_plus_superscript_of_a_non_matrix_is_refused(latex, kind, capsys):
    wrt = "w" if "w" in latex else "z"
    assert main(["grad", latex, "--wrt", wrt]) == 2
    err = capsys.readouterr().err
    assert f"^{{+}} of a {kind}" in err and "relu(…)" in err


@pytest.mark.parametrize("expr, claim", [
    ("log(x'*A*x)", "(A+A')*x"), ("exp(a*x'*x)", "2*a*x"), ("(x'*x)^2", "2*x"),
])
def test_a_missing_scalar_factor_of_the_chain_rule_is_named(expr, claim):
    text = matdiff.check(expr, "x", claim).text
    assert text.startswith("a scalar factor is missing or extra"), text


def test_a_constant_factor_is_still_called_constant():
    assert matdiff.check("x'*x", "x", "x").text.startswith("missing factor 2")
