"""The command line and the Python API keep their promises (issue 10 "messages", issue 19
"options never silently dropped", reliability probe rows C5 C6 C8 U1–U5 U7 U8 K6):
no option is dropped, no traceback, honest I/O, JSON errors, a REPL that survives Ctrl-C."""

import io
import json
import os
import re
import subprocess
import sys
import warnings

import pytest

import matdiff
from matdiff.cli import main


def run(*argv, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    old_err, old_in = sys.stderr, sys.stdin
    sys.stderr = err
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv), out=out)
    finally:
        sys.stderr, sys.stdin = old_err, old_in
    return code, out.getvalue(), err.getvalue()


def subprocess_run(*argv, env=None, **kw):
    full_env = {**os.environ, **(env or {})}
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "matdiff", *argv], env=full_env, timeout=60,
                          **kw)


# ---------------------------------------------------------------- 1. version, help, -o FILE


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    code, out, _ = run("--version")
    assert code == 0
    assert out == f"matdiff {version('matdiff')}\n"
    assert re.fullmatch(r"matdiff \d+\.\d+\.\d+\S*\n", out)


def test_check_help_explains_wrt_and_claim(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    block = text[text.index("--wrt"):]
    assert "the variable the claim is a gradient for" in block
    assert "the claimed gradient" in block


def test_codegen_writes_the_module_to_a_file(tmp_path):
    target = tmp_path / "model.py"
    code, out, err = run("codegen", "x'*A*x", "--wrt", "x", "-o", str(target), "--verify")
    assert code == 0, err
    assert out == ""  # the module went to the file, not to stdout
    source = target.read_text(encoding="utf-8")
    namespace: dict = {}
    exec(compile(source, str(target), "exec"), namespace)
    import numpy as np

    A = np.array([[1.0, 2.0], [0.0, 3.0]])
    x = np.array([1.0, -1.0])
    assert np.allclose(namespace["grad_x"](x=x, A=A), (A + A.T) @ x)
    assert "verify: ok" in err


def test_codegen_output_file_error_is_exit_2(tmp_path):
    code, out, err = run("codegen", "x'*A*x", "--wrt", "x", "-o",
                         str(tmp_path / "no-such-dir" / "m.py"))
    assert code == 2
    assert "cannot write" in err and "no-such-dir" in err
    assert "internal error" not in err and "Traceback" not in err


# ---------------------------------------------------------------- 2. JSON errors


@pytest.mark.parametrize("argv,kind,span", [
    (["grad", "x'*A*x +", "--wrt", "x"], "syntax", [8, 9]),
    (["grad", "tr(A*x)", "--wrt", "x"], "shape", None),
    (["grad", "x'*A*x", "--wrt", "q"], "usage", None),
    (["jacobian", "A*x", "--wrt", "x", "--let", "x:blob"], "shape", None),
    (["hessian", "x'*A*x", "--wrt", "x", "--let", "x:vector", "--let", "x:matrix"],
     "usage", None),
    (["check", "x'*x", "--wrt", "x", "--claim", "2*x +"], "syntax", [5, 6]),
])
def test_json_errors_are_a_json_object_with_the_same_exit_code(argv, kind, span):
    text_code, text_out, text_err = run(*argv)
    code, out, _ = run(*argv, "--format", "json")
    assert text_code == code == 2
    assert text_out == ""
    error = json.loads(out)["error"]
    # "source" (the text the span points into) comes with a span
    assert set(error) == {"message", "kind", "span", "exit_code"} | (
        {"source"} if error["span"] is not None else set())
    assert error["kind"] == kind and error["exit_code"] == 2
    if span is None:
        assert error["span"] is None or isinstance(error["span"], list)
    else:
        assert error["span"] == span
        assert error["source"] == argv[argv.index("--claim") + 1 if "--claim" in argv else 1]
    assert error["message"] in text_err  # the same message as the text error


def test_json_error_spelled_with_equals_sign():
    code, out, _ = run("grad", "(x", "--wrt", "x", "--format=json")
    assert code == 2 and json.loads(out)["error"]["kind"] == "syntax"


def test_check_json_verdicts():
    code, out, _ = run("check", "x'*x", "--wrt", "x", "--claim", "2*x", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["correct"] is True and data["verdict"] == "correct"
    code, out, _ = run("check", "x'*x", "--wrt", "x", "--claim", "x", "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["correct"] is False and data["verdict"] != "correct"
    assert data["text"]


def test_grad_json_steps_are_not_dropped():
    code, out, _ = run("grad", "x'*x", "--wrt", "x", "--format", "json", "--steps")
    data = json.loads(out)
    assert code == 0
    assert isinstance(data["steps"], list) and data["steps"]


# ---------------------------------------------------------------- 3. no silently dropped options


REFUSED = [
    (["check", "x'*A*x", "--wrt", "x", "--claim", "2*A*x", "--claim", "(A+A')*x"],
     "--claim given 2 times"),
    (["check", "x'*A*x", "--wrt", "x", "--wrt", "A", "--claim", "x*x'"], "--wrt given 2 times"),
    (["codegen", "x'*A*x", "--wrt", "x", "--jacobian", "--hessian"],
     "--jacobian and --hessian do not go together"),
    (["grad", "x'*A*x", "--wrt", "x", "--let", "x:vector", "--let", "x:matrix"],
     "declares x twice with different kinds"),
    (["grad", "x'*A*x", "--wrt", "x", "--let", "x:vector,x:matrix"],
     "declares x twice with different kinds"),
    (["grad", "x'*A*x", "--along", "t", "--define", "x=t*v", "--define", "x=2*t*v"],
     "defines x twice"),
    (["grad", "x'*A*x", "--wrt", "x", "--define", "x=t*v"], "--define gives an inner function"),
    (["grad", "x'*A*x", "--wrt", "x", "--let", ":vector"], "names no variable"),
    (["grad", "x'*A*x", "--wrt", "x", "--let", "tr:scalar"], "'tr' is a function name"),
    (["grad", "x'*A*x", "--wrt", "x", "--let", "x:"], "gives no kind"),
    (["grad", "x'*A*x", "--along", "t", "--define", "x=t*v", "--steps"],
     "--steps does not go with --along"),
    (["grad", "x'*x", "--wtr", "x"], "did you mean --wrt"),
    # a prefix is not taken for the option: its value would be read as EXPR
    (["codegen", "x'*x", "--wrt", "x", "--out", "f.py"], "did you mean --output"),
    (["grad", "x'*x", "--wr", "x"], "did you mean --wrt"),
]


@pytest.mark.parametrize("argv,message", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_options_are_refused_rather_than_dropped(argv, message):
    code, out, err = run(*argv)
    assert code == 2
    assert message in err
    assert out == "" and "Traceback" not in err


def test_the_same_declaration_twice_is_fine_and_unused_ones_are_warned_about():
    code, out, err = run("parse", "x'*x", "--let", "x:vector", "--let", "x:vector")
    assert code == 0 and "warning" not in err
    code, out, err = run("parse", "x'*x", "--let", "q:vector")
    assert code == 0
    assert err.strip().splitlines() == ["warning: q is declared but not used (--let q:vector)"]
    assert "x" in out


def test_expression_beginning_with_double_minus():
    code, out, err = run("grad", "--x'*x", "--wrt", "x", "--no-check")
    assert code == 0, err
    assert "∂f/∂x = 2x" in out
    code, _, err = run("grad", "--x", "--wrt", "x")
    assert code == 2 and "EXPR may not begin with --" in err


# ---------------------------------------------------------------- 4./5. encodings and I/O


def test_output_is_utf8_whatever_the_locale():
    for argv in (["grad", "x'*A*x", "--wrt", "x", "--no-check"],
                 ["grad", "x'*A*x", "--wrt", "x", "--no-check", "--format", "json"]):
        proc = subprocess_run(*argv, env={"PYTHONIOENCODING": "cp1252"})
        assert proc.returncode == 0, proc.stderr
        text = proc.stdout.decode("utf-8")
        assert "(A + Aᵀ)x" in text
        assert b"UnicodeEncodeError" not in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_an_io_error_not_a_bug():
    with open("/dev/full", "w") as full:
        proc = subprocess_run("codegen", "x'*A*x", "--wrt", "x", stdout=full,
                              stderr=subprocess.PIPE)
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert err.strip() == "error: cannot write the output: No space left on device"


class _FailingOut(io.StringIO):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def flush(self):
        raise self.exc


def test_write_errors_and_broken_pipes(capsys):
    code = main(["parse", "x"], out=_FailingOut(OSError(28, "No space left on device")))
    err = capsys.readouterr().err
    assert code == 2 and "cannot write the output: No space left on device" in err
    assert "bug" not in err
    code = main(["parse", "x"], out=_FailingOut(BrokenPipeError(32, "Broken pipe")))
    assert code == 0 and capsys.readouterr().err == ""


def test_closed_standard_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", None)
    code = main(["grad", "-", "--wrt", "x"], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 2 and "standard input is closed" in err and "bug" not in err


def test_closed_standard_input_in_a_real_process():
    proc = subprocess_run("grad", "-", "--wrt", "x", preexec_fn=lambda: os.close(0))
    assert proc.returncode == 2
    assert b"standard input is closed" in proc.stderr


# ---------------------------------------------------------------- 6. no raw warnings


def test_numpy_warnings_never_reach_stderr(monkeypatch, capsys):
    import numpy as np

    def noisy(args, out):
        with np.errstate(all="warn"):
            np.log(np.array([-1.0, 0.0]))  # RuntimeWarning: invalid value / divide by zero
        warnings.warn("ill-conditioned", RuntimeWarning, stacklevel=2)
        out.write("done\n")
        return 0

    monkeypatch.setitem(__import__("matdiff.cli").cli._COMMAND_FUNCS, "parse", noisy)
    with warnings.catch_warnings(record=True) as caught:  # what would otherwise be shown
        warnings.simplefilter("always")
        code = main(["parse", "x"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out == "done\n"
    assert caught == [] and captured.err == ""


# ---------------------------------------------------------------- 7. --along


@pytest.mark.parametrize("argv,message", [
    (["--along", "A"], "A is a matrix; --along needs a scalar parameter"),
    (["--along", "x"], "x is a vector; --along needs a scalar parameter"),
    (["--along", "t", "--define", "x=u", "--define", "u=v", "--define", "v=x"],
     "definitions form a cycle: x → u → v → x"),
    (["--along", "t", "--let", "t:vector", "--define", "x=t"],
     "t is a vector; --along needs a scalar parameter"),
])
def test_along_errors_say_what_is_wrong(argv, message):
    code, out, err = run("grad", "x'*A*x", *argv)
    assert code == 2
    assert message in err


def test_along_with_a_scalar_parameter_still_works():
    code, out, err = run("grad", "x'*x", "--along", "t", "--define", "x=t*v")
    assert code == 0, err
    assert "df/dt = 2t·vᵀv" in out


# ---------------------------------------------------------------- 8. REPL


def _feed(lines):
    """An input function: each item is returned, or raised when it is an exception."""
    items = iter(lines)

    def read():
        try:
            item = next(items)
        except StopIteration:
            raise EOFError from None
        if isinstance(item, BaseException) or (isinstance(item, type)
                                                and issubclass(item, BaseException)):
            raise item
        return item
    return read


def test_repl_ctrl_c_clears_the_line_and_keeps_the_session(capsys):
    from matdiff.repl import repl

    out = io.StringIO()
    code = repl(main, stdin=io.StringIO(), out=out,
                input_fn=_feed(["let S:spd", KeyboardInterrupt, "x'*S*x wrt S --no-check"]))
    assert code == 0
    text = out.getvalue()
    assert "S spd" in text  # the declaration survived Ctrl-C
    assert "∂f/∂S = xxᵀ" in text


def test_repl_jacobian_hessian_and_flags_after_wrt(capsys):
    from matdiff.repl import repl

    out = io.StringIO()
    repl(main, stdin=io.StringIO(), out=out, input_fn=_feed([
        "jacobian A*x --wrt x", "hessian x'*A*x --wrt x", "tr(X'*A*X) wrt X --steps"]))
    text = out.getvalue()
    assert "J = ∂f/∂xᵀ = A" in text
    assert "H = ∂²f/∂x∂xᵀ = A + Aᵀ" in text
    assert "derivation:" in text and "∂f/∂X = (A + Aᵀ)X" in text
    assert capsys.readouterr().err == ""


def test_repl_refuses_stdin_and_names_missing_wrt(capsys):
    from matdiff.repl import repl

    out = io.StringIO()
    repl(main, stdin=io.StringIO(), out=out,
         input_fn=_feed(["grad - --wrt x", "- wrt x", "tr(A*X) wrt"]))
    err = capsys.readouterr().err
    assert err.count("'-' reads standard input, which the REPL uses: type the expression") == 2
    assert "name the variables after wrt" in err
    assert out.getvalue() == ""


def test_repl_help_and_bogus_options():
    code, out, _ = run("repl", "--help")
    assert code == 0 and out.startswith("usage: matdiff repl") and "wrt" in out
    code, out, err = run("repl", "--bogus")
    assert code == 2 and "--bogus" in err and out == ""


def test_repl_session_declarations_are_not_warned_about():
    code, out, err = run("repl", stdin="let S:spd\nx'*x wrt x --no-check\n")
    assert code == 0 and "∂f/∂x = 2x" in out
    assert "declared but not used" not in err


# ---------------------------------------------------------------- 9. Python API boundary


@pytest.mark.parametrize("call,fragment", [
    (lambda: matdiff.grad(None, "x"), "expr must be a str"),
    (lambda: matdiff.grad(b"x'*x", "x"), "decode"),
    (lambda: matdiff.parse(b"x"), "decode"),
    (lambda: matdiff.grad("x'*x", "x", types="x:vector"), "types must be a dict"),
    (lambda: matdiff.grad("x'*x", "x", types={1: "vector"}), "must be a variable name"),
    (lambda: matdiff.grad("x'*x", "x", types={"x": 3}), "kind of x must be a str"),
    (lambda: matdiff.grad("x'*x", b"x"), "wrt"),
    (lambda: matdiff.grad("x'*x", [b"x"]), "wrt"),
    (lambda: matdiff.grad("x'*x", []), "at least one"),
    (lambda: matdiff.check("x'*x", ["x"], "2*x"), "one variable name"),
    (lambda: matdiff.check("x'*x", "x", None), "claim must be a str"),
])
def test_api_type_errors_at_the_boundary(call, fragment):
    with pytest.raises(TypeError) as info:
        call()
    assert fragment in str(info.value)


def test_api_still_accepts_the_documented_forms():
    g = matdiff.grad("x'*S*x", ["x"], {"S": "spd"}, check=False)
    assert str(g.gradient("x")) == "2*S*x"


# ---------------------------------------------------------------- 10. Jupyter


def test_gradient_result_renders_line_by_line_and_reprs_in_unicode():
    g = matdiff.grad("tr(A*X*B)", ["X", "A"], check=False)
    latex = g._repr_latex_()
    assert latex.startswith("$$\\begin{aligned}") and latex.endswith("\\end{aligned}$$")
    body = latex[len("$$\\begin{aligned}"):-len("\\end{aligned}$$")]
    rows = [r for r in body.split("\\\\") if r.strip()]
    assert len(rows) == 4  # df and ∂f/∂· for each of the two variables
    assert all(r.count("&=") == 1 for r in rows)
    text = repr(g)
    assert "object at 0x" not in text
    assert "∂f/∂X = AᵀBᵀ" in text and "∂f/∂A = BᵀXᵀ" in text


def test_standard_input_that_is_not_utf8_is_an_input_error():
    proc = subprocess_run("grad", "-", "--wrt", "x", input=b"x'*x \xff\xfe")
    assert proc.returncode == 2
    assert b"standard input is not UTF-8 text" in proc.stderr


def test_an_oserror_that_is_not_about_the_output_is_still_a_bug(monkeypatch, capsys):
    def broken(args, out):
        open("/nonexistent/grammar.lark")  # e.g. a package file missing: not the user's fault

    monkeypatch.setitem(__import__("matdiff.cli").cli._COMMAND_FUNCS, "parse", broken)
    code = main(["parse", "x"], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 3 and "internal error" in err and "cannot write the output" not in err
