"""SPEC §2 from the outside: commands, formats, exit codes, and bad input without tracebacks."""

import io
import json
import subprocess
import sys

import pytest

from matdiff.cli import main


def run(*argv, stdin=None):
    out = io.StringIO()
    err = io.StringIO()
    old_err, old_in = sys.stderr, sys.stdin
    sys.stderr = err
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv), out=out)
    finally:
        sys.stderr, sys.stdin = old_err, old_in
    return code, out.getvalue(), err.getvalue()


def test_parse_shows_kinds_and_shapes():
    code, out, _ = run("parse", "tr(A*X'*B*X*C)", "--plain")
    assert code == 0
    assert "A         matrix  m×n" in out
    assert "X         matrix  p×n" in out
    assert "C         matrix  n×m" in out
    assert "trace" in out and ": scalar" in out


def test_grad_text_shows_differential_and_gradient():
    code, out, _ = run("grad", "tr(A*X*B)", "--wrt", "X")
    assert code == 0
    assert "∂f/∂X = AᵀBᵀ" in out
    assert "df = tr((AᵀBᵀ)ᵀ dX)" in out


def test_grad_vector_and_scalar_differentials():
    _, out, _ = run("grad", "x'*A*x", "--wrt", "x")
    assert "df = ((A + Aᵀ)x)ᵀ dx" in out
    _, out, _ = run("grad", "a^2*b", "--wrt", "a")
    assert "·da" in out


def test_grad_expression_beginning_with_minus_needs_no_separator():
    code, out, _ = run("grad", "-y'*log(softmax(a))", "--wrt", "a")
    assert code == 0
    assert "∂f/∂a = (1ᵀy)·softmax(a) − y" in out


def test_grad_reads_standard_input():
    code, out, _ = run("grad", "-", "--wrt", "X", stdin="tr(A*X*B)\n")
    assert code == 0 and "AᵀBᵀ" in out


def test_grad_json_follows_the_spec_and_round_trips():
    from tests.conftest import numerically_equal

    code, out, _ = run("grad", "tr(A*X*B)", "--wrt", "X", "--wrt", "A", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["expression"] == "tr(A*X*B)"
    assert data["variables"]["X"] == {"kind": "matrix", "shape": ["n", "p"]}
    assert set(data["gradients"]) == {"X", "A"}
    g = data["gradients"]["X"]
    assert set(g) >= {"gradient", "differential", "latex"}
    assert numerically_equal(f"sum({g['gradient']})", "sum(A'*B')")


def test_grad_latex_and_steps():
    code, out, _ = run("grad", "tr(A*X'*B*X*C)", "--wrt", "X", "--format", "latex")
    assert code == 0 and r"\frac{\partial f}{\partial X}" in out
    assert out.count("{") == out.count("}")
    code, out, _ = run("grad", "tr(A*X'*B*X*C)", "--wrt", "X", "--steps")
    assert code == 0
    assert "trick 12" in out and "d(XY) = dX·Y + X·dY" in out
    code, out, _ = run("grad", "tr(A*X'*B*X*C)", "--wrt", "X", "--steps", "--format", "latex")
    assert out.startswith(r"\begin{align*}") and out.count("{") == out.count("}")


def test_symmetric_convention_is_stated_in_steps():
    _, out, _ = run("grad", "x'*S*x", "--wrt", "S", "--let", "S:symmetric", "--steps")
    assert "(G₀ + G₀ᵀ)/2" in out and "2G₀ − diag(G₀)" in out
    # the read-off is G₀ (S unconstrained); only the symmetric part is called ∂f/∂S
    steps = out.split("\ndf = tr(")[0]
    assert "G₀ = xxᵀ" in steps and steps.count("∂f/∂S =") == 1, steps


def test_check_verdicts_and_exit_codes():
    assert run("check", "tr(A*X*B)", "--wrt", "X", "--claim", "A'*B'")[:2] == (0, "correct\n")
    code, out, _ = run("check", "tr(A*X*B)", "--wrt", "X", "--claim", "B*A")
    assert code == 1 and "transpose" in out
    code, out, _ = run("check", "tr(A*X*B)", "--wrt", "X", "--claim", "A*B+")
    assert code == 2


def test_check_claim_beginning_with_minus():
    code, out, _ = run("check", "log(det(inv(X)))", "--wrt", "X", "--claim", "-inv(X)'")
    assert (code, out) == (0, "correct\n")


BAD = [
    (["grad", "tr(A*X", "--wrt", "X"], "end of input"),
    (["grad", "tr(A*X)) ", "--wrt", "X"], "unexpected"),
    (["grad", "A*x", "--wrt", "x"], "scalar expression"),
    (["grad", "tr(A*X)", "--wrt", "Y"], "not a variable"),
    (["grad", "tr(A*X)", "--wrt", "x"], "did you mean 'X'"),
    (["grad", "x + 1", "--wrt", "x"], "cannot add a scalar"),  # a name `a` takes x's kind
    (["grad", "lg(x)", "--wrt", "x"], "inner dimensions"),
    (["grad", "trace(X)", "--wrt", "X"], "did you mean tr"),
    (["grad", "tr(X)", "--wrt", "X", "--let", "X:tensor"], "unknown kind"),
    (["grad", "tr(X)", "--wrt", "X", "--let", "X"], "NAME:KIND"),
    (["grad", "tr(X)"], "--wrt"),
    (["grad", "tr(X)", "--wrt", "X", "--format", "xml"], "invalid choice"),
    (["parse", "x @@ y"], "unexpected"),
    (["parse", "2 # 3"], "unexpected character"),
    (["parse", ""], "empty"),
    (["parse", "log"], "function"),
    (["parse", "det(x)"], "square"),
    (["parse", "x^2"], ".^"),
    (["parse", "X^0.5"], "integer"),
    (["parse", "A/B"], "scalars only"),
    (["check", "tr(X)", "--wrt", "X", "--claim", "eye +"], "end of input"),
    (["check", "tr(X)", "--wrt", "X", "--claim", "x + 1"], "no consistent shape"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_clear_message(argv, message):
    code, out, err = run(*argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out
    assert err.splitlines()[0].startswith(("error:", "usage:")) or "error" in err


def test_syntax_error_caret_points_at_the_column():
    _, _, err = run("parse", "tr(A*X) + * B")
    lines = err.splitlines()
    assert lines[1].strip() == "tr(A*X) + * B"
    assert lines[2].index("^") == lines[1].index("* B")


def test_deep_and_huge_inputs_fail_cleanly_or_finish():
    code, _, err = run("parse", "exp(" * 5000 + "x" + ")" * 5000)
    assert code == 2 and "nested too deeply" in err
    big = "+".join(["x'*A*x"] * 150_000)  # 1 MB: refused at once (bounded work, issue 10)
    code, out, err = run("grad", "-", "--wrt", "x", "--format", "json", stdin=big)
    assert code == 2 and "expression too large" in (err + out)
    big = "+".join(["x'*A*x"] * 4_000)
    code, out, _ = run("grad", "-", "--wrt", "x", "--format", "json", stdin=big)
    assert code == 0
    assert json.loads(out)["gradients"]["x"]["gradient"] == "4000*(A + A')*x"


def test_console_script_runs_as_module():
    proc = subprocess.run([sys.executable, "-m", "matdiff", "grad", "x'*A*x", "--wrt", "x"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "(A + Aᵀ)x" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "matdiff", "parse", "x +"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_help_texts():
    for argv in (["--help"], ["grad", "--help"], ["parse", "--help"], ["check", "--help"],
                 ["codegen", "--help"]):
        with pytest.raises(SystemExit) as info:
            run(*argv)
        assert info.value.code == 0


def test_repl_remembers_declarations_and_takes_commands():
    lines = "\n".join(["let S:spd", "x'*S*x wrt S", "grad \"x'*A*x\" --wrt x", "x'*A",
                       "tr(A*x) wrt x", "let Q:blob", "help", "quit", "x wrt x"]) + "\n"
    code, out, err = run("repl", stdin=lines)
    assert code == 0
    assert "S: spd" in out
    assert "∂f/∂S = xxᵀ" in out and "df = tr(xxᵀ dS)" in out
    assert "∂f/∂x = (A + Aᵀ)x" in out
    assert "matrix product" in out  # the bare expression was parsed
    assert "tr(…) needs a square matrix" in err or "tr" in err
    assert "unknown kind 'blob'" in err
    assert "EXPR wrt X" in out
    assert out.count("∂f/∂") == 2  # nothing after quit


@pytest.mark.parametrize("method", ["backprop", "jacobian"])
def test_every_method_reads_off_g0_for_a_symmetric_variable(method):
    # one "∂f/∂S =" line, the symmetric part; what is read off before it is G₀
    _, out, _ = run("grad", "tr(S*A)", "--wrt", "S", "--let", "S:symmetric", "--method",
                    method, "--plain")
    steps = out.split("\ndf = tr(")[0]
    assert "G₀ = " in steps and steps.count("∂f/∂S =") == 1, steps
    assert "∂f/∂S = 0.5(A + Aᵀ)" in steps and "(G₀ + G₀ᵀ)/2" in steps
