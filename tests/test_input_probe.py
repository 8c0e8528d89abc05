"""Input a probe found read as something else than the user meant (session 5), and what
matdiff prints read back: words before a bracket (a product, with a note), e^(…) as a variable
e, ||X||_2 of a matrix (the spectral norm), options given twice, several lines of standard
input multiplied, the identity declared as a variable, an unknown derivation method in the
Python API, Unicode and LaTeX forms of matdiff's own output."""

from __future__ import annotations

import re

import pytest

import matdiff

from .test_cli import run  # the CLI run with captured streams and standard input


@pytest.mark.parametrize("expr, name", [
    ("sum(gelu(W*x))", "gelu"), ("sum(floor(x))", "floor"), ("sum(cumsum(x))", "cumsum"),
    ("sum(expp(x))", "expp"),
])
def test_a_word_before_a_bracket_is_a_product_and_says_so(expr, name):
    # SPEC §1: an identifier before ( multiplies the bracket; a word that looks like a
    # function the user may have meant gets a note, not a silent reading
    code, out, _ = run("grad", expr, "--wrt", "x", "--plain")
    assert code == 0
    assert f"note: {name}(…) is read as the variable {name} times the bracket" in out
    assert f"{name}*(…)" in out


@pytest.mark.parametrize("expr", ["sigma(x'*x)", "lambda(x'*x)", "(x - mu)'*Sigma(x - mu)",
                                  "a(x'*x)", "z'*W1(x + y)"])
def test_variables_before_a_bracket_multiply_it_without_a_note(expr):
    code, out, _ = run("grad", expr, "--wrt", "x", "--plain")
    assert code == 0 and "times the bracket" not in out


def test_a_close_function_name_is_suggested():
    code, out, _ = run("grad", "sum(expp(x))", "--wrt", "x", "--plain")
    assert code == 0 and "did you mean exp(…)" in out
    code, _, err = run("grad", "sum(sigmoidd(x))", "--wrt", "x")  # a vector times x
    assert code == 2 and "did you mean sigmoid(…)" in err


def test_e_to_a_power_is_refused_unless_e_is_declared():
    code, _, err = run("grad", "e^(x'*x)", "--wrt", "x")
    assert code == 2 and "write exp(…)" in err and "--let e:scalar" in err
    code, _, err = run("grad", "e^x'*x", "--wrt", "x")  # the exponent's own error comes first
    assert code == 2 and "the exponent x' must be a scalar" in err
    code, out, _ = run("grad", "e^(x'*x)", "--wrt", "x", "--let", "e:scalar", "--plain")
    assert code == 0 and "log(e)" in out


def test_the_inverse_transpose_written_as_a_power_gets_a_hint():
    code, _, err = run("check", "log(det(X))", "--wrt", "X", "--claim", "X^-T")
    assert code == 2 and "inv(X)'" in err


@pytest.mark.parametrize("expr, reader", [("||X||_2", "text"), (r"\|X\|_2", "latex")])
def test_the_2_norm_of_a_matrix_is_the_spectral_norm(expr, reader):
    code, out, err = run("grad", expr, "--wrt", "X", "--input", reader, "--plain")
    assert code == 0 and "spectral norm" in out + err and "‖X‖₂" in out
    assert "eigvecmax(XᵀX)" in out  # the gradient of σ₁, not X/‖X‖_F


def test_the_latex_of_the_spectral_norm_reads_back():
    latex = matdiff.grad("specnorm(W)", "W").latex().split("=")[-1].strip()
    assert r"\|W\right\|_2" in latex
    verdict = matdiff.check("specnorm(W)", "W", latex)
    assert verdict.status == "correct", (latex, verdict.text)


@pytest.mark.parametrize("expr, reader", [
    ("||x||_2^2", "text"), ("||X||_F^2", "text"), (r"\|x\|_2^2", "latex"),
    (r"\|X\|_F^2", "latex"),
])
def test_the_euclidean_and_frobenius_norms_still_read(expr, reader):
    wrt = "x" if "x" in expr else "X"
    code, out, _ = run("grad", expr, "--wrt", wrt, "--input", reader, "--plain")
    assert code == 0 and f"= 2{wrt}" in out


def test_a_bare_latex_norm_of_a_matrix_says_how_it_was_read():
    code, out, err = run("grad", r"\|X\|", "--wrt", "X", "--input", "latex", "--plain")
    assert code == 0 and "Frobenius" in out + err


@pytest.mark.parametrize("argv", [
    ["check", "tr(A*X)", "--wrt", "X", "--claim", "A", "--layout", "numerator",
     "--layout", "denominator"],
    ["codegen", "x'*x", "--wrt", "x", "--target", "numpy", "--target", "jax"],
    ["grad", "x'*x", "--wrt", "x", "--format", "text", "--format", "json"],
])
def test_an_option_given_twice_is_refused(argv):
    code, out, err = run(*argv)  # (with json asked for, the error is also JSON on stdout)
    assert code == 2 and "given twice" in err and "Traceback" not in out + err


def test_lines_of_standard_input_without_an_operator_between_are_refused():
    code, _, err = run("grad", "-", "--wrt", "x", stdin="x'*A*x\nx'*x\n")
    assert code == 2 and "more than one expression" in err and "line 2" in err
    assert "x'*A*x x'*x\n        ^" in err  # the caret under the line break
    code, out, _ = run("grad", "-", "--wrt", "X", "--plain", stdin="tr(A\nX)")
    assert code == 0 and "f = tr(AX)" in out  # inside brackets a break continues the line
    for text in ("x'*A*x +\nx'*x\n", "x'*A*x\n - x'*x\n"):
        code, out, _ = run("grad", "-", "--wrt", "x", "--plain", stdin=text)
        assert code == 0 and "xᵀx" in out


def test_the_identity_cannot_be_declared_a_variable():
    code, _, err = run("grad", "x'*I*x", "--wrt", "x", "--let", "I:spd")
    assert code == 2 and "identity" in err


def test_the_api_names_an_unknown_method_and_a_method_implies_steps():
    with pytest.raises(matdiff.MatdiffError, match="trace, backprop or jacobian"):
        matdiff.grad("x'*A*x", "x", steps=True, method="forward")
    result = matdiff.grad("x'*A*x", "x", method="backprop")
    assert result.method == "backprop" and result.steps is not None


@pytest.mark.parametrize("expr, wrt, claim", [
    ("log(det(X))", "X", "X⁻ᵀ"),  # as grad prints it
    ("x'*A*x - x'*x", "x", "(A + Aᵀ)x − 2x"),  # the minus sign U+2212
    ("x'*A*x", "x", "(A + A′)*x"), ("x'*x", "x", "2×x"), ("norm2(x)^2", "x", "2⋅x"),
    ("norm2(x)^4", "x", "4‖x‖²x"), ("tr(X*X)", "X", "2X’"),
])
def test_what_matdiff_prints_and_notes_contain_reads_back(expr, wrt, claim):
    assert matdiff.check(expr, wrt, claim).status == "correct", claim


@pytest.mark.parametrize("expr, wrt", [
    ("mean(x)", "x"), ("mean(X)", "X"), ("sum(X)", "X"), ("sum(inv(X))", "X"),
    ("sum(softmax(W, 1))", "W"),
])
def test_gradients_with_ones_read_back_in_text_and_latex(expr, wrt):
    result = matdiff.grad(expr, wrt)
    latex = result.latex().split("=")[-1].strip()
    text = result.source().split(f"∂f/∂{wrt} = ")[1].split(" (")[0].splitlines()[0]
    for claim in (latex, text):
        assert matdiff.check(expr, wrt, claim).status == "correct", claim


def test_a_vector_of_ones_over_a_size_is_not_printed_as_a_number():
    code, out, _ = run("grad", "mean(x)", "--wrt", "x", "--plain")
    assert code == 0 and "∂f/∂x = (1/size(x, 1))·1" in out


@pytest.mark.parametrize("expr, wrt", [
    ("sum(pinv(W))", "W"), ("tr(pinv(X)*A)", "X"), ("x'*W'*W*(x.^2)", "W"),
    ("specnorm(W)", "W"), ("nucnorm(W) - specnorm(W)", "W"),
])
def test_latex_with_superscripts_on_superscripts_reads_back(expr, wrt):
    latex = matdiff.grad(expr, wrt).latex().split("=")[-1].strip()
    assert not re.search(r"\^\{[^{}]*\}\^", latex), latex  # no x^{a}^{b}
    assert matdiff.check(expr, wrt, latex).status == "correct", latex


@pytest.mark.parametrize("expr", [
    "log(1 + exp(-y*w'*x))", r"\log(1 + \exp(-y\,\mathbf{w}^\top\mathbf{x}))",
])
def test_a_label_that_is_a_vector_only_by_default_gets_the_declaration_hint(expr):
    code, _, err = run("grad", expr, "--wrt", "w")
    assert code == 2 and "--let y:scalar" in err and "--let x:" not in err
    code, out, _ = run("grad", expr, "--wrt", "w", "--let", "y:scalar", "--plain")
    assert code == 0


def test_the_repl_runs_every_command_but_the_ones_that_never_return():
    from matdiff.repl import to_argv

    assert to_argv('differential "X^2" --wrt X')[:2] == ["differential", "X^2"]
    assert to_argv('graph "tr(A*X)" --wrt X')[0] == "graph"
    for word in ("serve", "repl"):
        with pytest.raises(matdiff.MatdiffError, match="from the shell"):
            to_argv(word)


def test_a_json_error_names_the_text_its_span_points_into():
    for expr, claim, source in (("x'*x", "2*(x", "2*(x"), ("x'*(x", "2*x", "x'*(x")):
        code, out, _ = run("check", expr, "--wrt", "x", "--claim", claim, "--format", "json")
        error = __import__("json").loads(out)["error"]
        assert code == 2 and error["source"] == source and error["span"] is not None


@pytest.mark.parametrize("expr, words", [
    ("dot(x,y)", "'dot' is not a matdiff function; write x'*y"),
    ("inner(x, y)", "'inner' is not a matdiff function; write x'*y"),
    ("X(1,1)", "reads as indexing"), ("g(a, b)", "'g' is not a matdiff function"),
])
def test_a_comma_in_a_call_of_no_function_says_what_to_write(expr, words):
    code, _, err = run("parse", expr)
    assert code == 2 and words in err and "unexpected ','" not in err


@pytest.mark.parametrize("option", [["--no-check"], ["--method", "backprop"]])
def test_options_along_ignores_are_refused(option):
    code, out, err = run("grad", "x'*A*x", "--along", "t", "--define", "x=exp(t)*v", *option)
    assert code == 2 and out == "" and f"{option[0]} does not go with --along" in err


def test_matlab_left_division_gets_a_hint():
    code, _, err = run("grad", r"norm2(A\b)^2", "--wrt", "b")
    assert code == 2 and "inv(A)*b" in err


@pytest.mark.parametrize("expr, wrt, claim", [
    ("tr(inv(X'*X))", "X", "−2X (XᵀX)⁻²"), ("tr(inv(X)^2)", "X", "−2(X⁻ᵀ)³"),
    ("norm2(x)^2", "x", "2x"),
])
def test_negative_superscript_powers_read_back(expr, wrt, claim):
    assert matdiff.check(expr, wrt, claim).status == "correct"


def test_norm_subscripts_read_back():
    code, out, _ = run("parse", "‖X‖₂ + ‖x‖₁", "--plain")
    assert code == 0 and "spectral norm" in out and "1-norm" in out


def test_the_hessian_of_a_vector_expression_points_to_the_jacobian():
    code, _, err = run("hessian", "A*x", "--wrt", "x")
    assert code == 2 and "a Hessian needs a scalar expression" in err
    assert "matdiff jacobian" in err
