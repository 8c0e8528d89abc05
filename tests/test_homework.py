"""Issue 13: homework as students write it — LaTeX input, course conventions, probability
vectors, better diagnoses, Jacobian/Hessian claims and batch grading."""

import json
from pathlib import Path

import numpy as np
import pytest

from matdiff.cli import main
from matdiff.derive.gradient import derive
from matdiff.errors import MatdiffError, ParseError
from matdiff.language.latex_syntax import KNOWN_NAMES
from matdiff.language.typecheck import typecheck
from matdiff.oracles.diagnose import check_claim, grade_batch
from matdiff.oracles.numeric import evaluate, find_point
from matdiff.printing.latex import to_latex

DATA = Path(__file__).parent / "data"


def _same_value(a_typed, b_typed, seed=0):
    """a and b (typed) have the same variables and the same value at a random point."""
    assert set(a_typed.variables) == set(b_typed.variables), (a_typed.variables,
                                                              b_typed.variables)
    rng = np.random.default_rng(seed)
    point = find_point([a_typed.root], a_typed.variables, rng).point
    assert point is not None
    env, sizes = point.env, point.sizes
    a = evaluate(a_typed.root, env, sizes)
    b_sizes = dict(sizes)
    for name, v in b_typed.variables.items():
        for d, n in zip(v.shape, env[name].shape):
            b_sizes.setdefault(d, n)
    b = evaluate(b_typed.root, env, b_sizes)
    assert a.shape == b.shape and np.allclose(a, b, rtol=1e-10, atol=1e-12), (a, b)


# ---------------------------------------------------------------- LaTeX spellings

SPELLINGS = [  # (LaTeX, the same expression in the plain language)
    (r"\mathbf{x}^\top A \mathbf{x}", "x'*A*x"),
    (r"\boldsymbol{\mu}^\top \boldsymbol{\mu}", "μ'*μ"),
    (r"\bm{x}^\top \bm{y}", "x'*y"),
    (r"\vec{x}^{T} \vec{y}", "x'*y"),
    (r"x^T A x", "x'*A*x"),
    (r"x^{\mathsf T} A x", "x'*A*x"),
    (r"x^{\mathsf{T}} A x", "x'*A*x"),
    (r"x^\intercal A x", "x'*A*x"),
    (r"\operatorname{tr}(X^{-1})", "tr(inv(X))"),
    (r"\operatorname{tr}(X^\top A X)", "tr(X'*A*X)"),
    (r"\mathrm{tr}(A X)", "tr(A*X)"),
    (r"\text{tr}(A X)", "tr(A*X)"),
    (r"\operatorname{Tr}(A X)", "tr(A*X)"),
    (r"\det X", "det(X)"),
    (r"\det(X^\top X)", "det(X'*X)"),
    (r"\log|X|", "logdet(X)"),
    (r"\log\det X", "logdet(X)"),
    (r"\log \det(X)", "logdet(X)"),
    (r"\ln(a)", "log(a)"),
    (r"\exp(a) + \log b", "exp(a) + log(b)"),
    (r"\|x\|", "norm2(x)"),
    (r"\|Ax-b\|_2^2", "norm2(A*x - b)^2"),
    (r"\|X\|_F^2", "norm2(X)^2"),
    (r"\|x\|_1", "norm1(x)"),
    (r"\left\| A x - b \right\|_2^2", "norm2(A*x - b)^2"),
    (r"\lVert x \rVert^2", "norm2(x)^2"),
    (r"\frac{1}{2} x^\top x", "1/2*x'*x"),
    (r"\tfrac12 x^\top x", "1/2*x'*x"),
    (r"\frac{x^\top A x}{x^\top x}", "(x'*A*x)/(x'*x)"),
    (r"A \cdot B", "A*B"),
    (r"x \odot y", "x.*y"),
    (r"x \circ y", "x.*y"),
    (r"\mathbf{1}^\top \sigma(W x)", "vector(1)'*σ(W*x)"),
    (r"\operatorname{softmax}(W\mathbf{x})", "softmax(W*x)"),
    (r"\left( A + B \right) x", "(A + B)*x"),
    (r"\bigl( A + B \bigr) x", "(A + B)*x"),
    (r"{(A + B)} x", "(A + B)*x"),
    (r"A \, x + B\;x", "A*x + B*x"),
    (r"\operatorname{tr}(\Sigma^{-1} S)", "tr(inv(Σ)*S)"),
    (r"\log\det\Sigma + \mu^\top \Sigma^{-1} \mu", "logdet(Σ) + μ'*inv(Σ)*μ"),
    (r"\operatorname{tr}(X^{-\top} A)", "tr(inv(X)'*A)"),
    (r"x^{\circ 2}", "x.^2"),
    (r"\sqrt{a} + \sqrt b", "sqrt(a) + sqrt(b)"),
    (r"e^{-x^\top x}", "exp(-x'*x)"),
    (r"W_1 x + W_{2} y", "W1*x + W2*y"),
    (r"|X^\top|", "det(X')"),
    (r"\left|x\right|", "abs(x)"),
    (r"$x^\top x$", "x'*x"),
    (r"-\frac{1}{2}\log\det\Sigma - \frac{1}{2}(\mathbf{x}-\boldsymbol{\mu})^\top \Sigma^{-1}"
     r"(\mathbf{x}-\boldsymbol{\mu})", "-1/2*logdet(Σ) - 1/2*(x-μ)'*inv(Σ)*(x-μ)"),
    (r"\operatorname{tr}(A X B)", "tr(A*X*B)"),
]


@pytest.mark.parametrize("latex,plain", SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_latex_spellings_read_as_the_plain_language(latex, plain):
    _same_value(typecheck(latex), typecheck(plain))


def test_plain_norm_conveniences():
    for text, plain in [("||x||^2", "norm2(x)^2"), ("||x||_2", "norm2(x)"),
                        ("||X||_F", "norm2(X)"), ("||x||_1 + ||y||", "norm1(x) + norm2(y)"),
                        ("‖A*x - b‖^2", "norm2(A*x - b)^2")]:
        _same_value(typecheck(text), typecheck(plain))
    with pytest.raises(ParseError, match="not supported"):
        typecheck("||x||_3")


@pytest.mark.parametrize("latex,column,word", [
    (r"\frac{1}{2}\|Ax - b\|_2^2 + \foo x", 28, r"\foo"),
    (r"\operatorname{tr}(X^\top A X", 28, None),
    (r"\|x + y", 0, None),
    (r"\operatorname{blah}(X)", 0, None),
    (r"x^\top A x = 3", 11, None),
])
def test_bad_latex_exits_2_with_a_caret_under_the_latex_column(latex, column, word, capsys):
    code = main(["grad", latex, "--wrt", "x", "--plain"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.splitlines()
    excerpt, caret = lines[-2], lines[-1]
    assert excerpt.strip() == latex
    offset = excerpt.index(latex)
    assert caret.index("^") - offset == column, err
    if word:
        assert word in lines[0]


def test_input_latex_flag_forces_latex_reading(capsys):
    # "Ax" is one name in the plain language, A times x in LaTeX
    assert main(["parse", "x'Ax", "--input", "latex", "--plain"]) == 0
    out = capsys.readouterr().out
    assert "A  matrix" in out and "Ax" not in out.split("variable  kind")[-1]


# ---------------------------------------------------------------- the LaTeX round trip

CASES = json.loads((DATA / "public_cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_latex_output_reads_back_to_the_same_gradient(case):
    types = case.get("let") or {}
    result = derive(case["expression"], list(case["gradients"]), types, check=False)
    names = frozenset(result.typed.variables)
    kinds = {n: v.attr[1] for n, v in result.typed.variables.items()}
    for g in result.gradients.values():
        text = to_latex(g)
        token = KNOWN_NAMES.set(names)
        try:
            back = typecheck(text, {**kinds, **types})
        finally:
            KNOWN_NAMES.reset(token)
        from matdiff.language.typecheck import Typed

        ours = Typed(g, "", {n: v for n, v in result.typed.variables.items()
                             if n in back.variables})
        _same_value(ours, back)
    # the expression itself, printed and read back
    token = KNOWN_NAMES.set(names)
    try:
        back = typecheck(to_latex(result.f), {**kinds, **types})
    finally:
        KNOWN_NAMES.reset(token)
    _same_value(result.typed, back)


# ---------------------------------------------------------------- conventions

def test_cookbook_claim_is_named_and_correct_when_declared():
    claim = "2*inv(S) - diag(diag(inv(S)))"
    v = check_claim("logdet(S)", "S", claim, {"S": "spd"})
    assert v.status == "wrong" and "Matrix Cookbook" in v.text and "--convention cookbook" \
        in v.text
    v = check_claim("logdet(S)", "S", claim, {"S": "spd"}, convention="cookbook")
    assert v.correct
    # the Cookbook convention does not make matdiff's own answer correct, nor a wrong one
    assert not check_claim("logdet(S)", "S", "inv(S)", {"S": "spd"},
                           convention="cookbook").correct
    assert not check_claim("logdet(S)", "S", "3*inv(S) - diag(diag(inv(S)))", {"S": "spd"},
                           convention="cookbook").correct


def test_cookbook_gaussian_from_the_command_line(capsys):
    args = ["check", "-1/2*logdet(Σ) - 1/2*(x-μ)'*inv(Σ)*(x-μ)", "--wrt", "Σ", "--let", "Σ:spd",
            "--claim", "inv(Σ)*(x-μ)*(x-μ)'*inv(Σ) - inv(Σ) - 1/2*diag(diag(inv(Σ)*(x-μ)*(x-μ)'"
            "*inv(Σ) - inv(Σ)))", "--plain"]
    assert main(args) == 1
    assert "Matrix Cookbook" in capsys.readouterr().out
    assert main(args + ["--convention", "cookbook"]) == 0
    assert capsys.readouterr().out.startswith("correct")


def test_numerator_layout_is_named_and_correct_when_declared(capsys):
    v = check_claim("norm2(A*x-y)^2", "x", "2*(A*x-y)'*A")
    assert v.status == "wrong" and "numerator-layout" in v.text and "--layout numerator" in v.text
    assert check_claim("norm2(A*x-y)^2", "x", "2*(A*x-y)'*A", layout="numerator").correct
    assert check_claim("tr(A*X*B)", "X", "B*A", layout="numerator").correct
    # the layout flag does not excuse a wrong claim, nor make the denominator answer right
    assert not check_claim("tr(A*X*B)", "X", "A'*B'", layout="numerator").correct
    assert main(["check", "tr(A*X*B)", "--wrt", "X", "--claim", "B*A", "--layout", "numerator",
                 "--plain"]) == 0
    capsys.readouterr()


def test_declared_symmetric_claim_with_the_same_symmetric_part_is_correct(capsys):
    v = check_claim("tr(A*S)", "S", "A'", {"S": "symmetric"})
    assert v.correct and "symmetric representative" in v.text
    # without the declaration it is only right for symmetric S
    v = check_claim("tr(A*X) + tr(X)", "X", "2*A' + eye - A", {})
    assert not v.correct and "right only for symmetric X" in v.text
    # a different symmetric part is still wrong
    assert not check_claim("tr(A*S)", "S", "2*A'", {"S": "symmetric"}).correct
    assert main(["check", "tr(A*S)", "--wrt", "S", "--let", "S:symmetric", "--claim", "A'",
                 "--plain"]) == 0
    capsys.readouterr()


def test_probability_vector_makes_the_textbook_softmax_answer_correct(capsys):
    expr, claim = "-y'*log(softmax(W*x))", "(softmax(W*x)-y)*x'"
    v = check_claim(expr, "W", claim)
    assert v.status == "wrong" and "1ᵀy = 1" in v.text and "--let y:probability" in v.text
    assert check_claim(expr, "W", claim, {"y": "probability"}).correct
    assert check_claim("-y'*log(softmax(a))", "a", "softmax(a) - y", {"y": "onehot"}).correct
    # still wrong: a sign slip under the assumption
    assert not check_claim(expr, "W", "(y-softmax(W*x))*x'", {"y": "probability"}).correct
    # grad drops the 1ᵀy factor
    assert main(["grad", expr, "--wrt", "W", "--let", "y:probability", "--plain"]) == 0
    out = capsys.readouterr().out
    assert "∂f/∂W = (softmax(Wx) − y)xᵀ" in out and "1ᵀy" not in out


# ---------------------------------------------------------------- diagnoses

def test_sign_error_with_the_probability_condition():
    v = check_claim("-y'*log(softmax(W*x))", "W", "(y-softmax(W*x))*x'")
    assert v.text.startswith("sign error") and "1ᵀy" in v.text


def test_missing_and_extra_terms_are_named():
    v = check_claim("tr(X'*A*X)", "X", "A*X")
    assert v.text.startswith("missing a term") and "AᵀX" in v.text.splitlines()[0]
    v = check_claim("x'*A*x + b'*x", "x", "(A+A')*x")
    assert v.text.startswith("missing a term") and "b" in v.text.splitlines()[0]
    v = check_claim("x'*A*x", "x", "(A+A')*x + x")
    assert v.text.startswith("an extra term") and "x" in v.text.splitlines()[0]


def test_difference_is_simplified():
    # forgetting to square the denominator: the 2x/(xᵀAx) parts cancel in the difference
    v = check_claim("x'*x/(x'*A*x)", "x",
                    "2*x/(x'*A*x) - (x'*x)*(A+A')*x/(x'*A*x)")
    first = v.text.splitlines()[0]
    assert "claim − ∂f/∂x" in first and "2(xᵀAx)⁻¹" not in first.split("=", 1)[1]


def test_steps_show_derivation_and_how_decided_for_every_verdict():
    for claim in ("B*A", "A'*B'", "2*A'*B'", "C"):
        try:
            v = check_claim("tr(A*X*B)", "X", claim, steps=True)
        except MatdiffError:
            continue
        lines = v.text.splitlines()
        assert any("trick 12" in ln for ln in lines), v.text
        assert lines[-1].startswith("how decided"), v.text


# ---------------------------------------------------------------- Jacobian and Hessian

def test_jacobian_claims():
    assert check_claim("W*x", "x", "W", target="jacobian").correct
    v = check_claim("W*x", "x", "W'", target="jacobian")
    assert not v.correct and "denominator-layout Jacobian" in v.text
    assert check_claim("sigmoid(W*x)", "x", "diag(sigmoid(W*x).*(vector(1)-sigmoid(W*x)))*W",
                       target="jacobian").correct
    assert not check_claim("sigmoid(W*x)", "x", "diag(sigmoid(W*x))*W",
                           target="jacobian").correct


def test_hessian_claims(capsys):
    assert check_claim("x'*A*x", "x", "A + A'", target="hessian").correct
    v = check_claim("x'*A*x", "x", "2*A", target="hessian")
    assert not v.correct and "not symmetrised" in v.text
    assert main(["check", "x'*A*x", "--wrt", "x", "--hessian", "--claim", "A+A'",
                 "--plain"]) == 0
    assert main(["check", "x'*A*x", "--wrt", "x", "--hessian", "--jacobian", "--claim", "A",
                 "--plain"]) == 2
    capsys.readouterr()


# ---------------------------------------------------------------- grading a class

def test_batch_csv_of_20_answers_with_bad_rows(capsys):
    rows = grade_batch(str(DATA / "homework_batch.csv"), prove="auto")
    assert len(rows) == 20
    by_id = {r.id: r for r in rows if r.id}
    assert by_id["s01"].verdict == "correct" and by_id["s04"].verdict == "wrong"
    assert by_id["s07"].verdict == "correct"  # LaTeX in a batch row
    assert by_id["s10"].verdict == "correct"  # y:probability from the let column
    assert by_id["s20"].verdict == "correct"  # declared symmetric
    errors = [r for r in rows if r.verdict == "error"]
    assert {r.line for r in errors} == {14, 15, 18, 19}
    assert all(r.text.startswith(f"line {r.line}:") for r in errors)
    assert main(["check", "--batch", str(DATA / "homework_batch.csv"), "--plain"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("20 answers:") and "4 error" in out
    assert main(["check", "--batch", str(DATA / "homework_batch.jsonl"), "--format",
                 "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["summary"]["rows"] == 5
    assert [r["verdict"] for r in payload["rows"]] == ["correct", "wrong", "correct", "error",
                                                       "error"]


def test_batch_file_that_cannot_be_read_is_exit_2(tmp_path, capsys):
    assert main(["check", "--batch", str(tmp_path / "missing.csv")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("name,answer\nx,y\n", encoding="utf-8")
    assert main(["check", "--batch", str(bad)]) == 2
    assert main(["check", "--batch", str(bad), "x'*x"]) == 2
    capsys.readouterr()
