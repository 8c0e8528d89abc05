"""codegen --target jax|torch (issue 16): the same functions and docstrings as the NumPy
module, the same numbers on the public cases, --verify per target (--hessian and --jacobian
too), argument checks, a clear exit 2 for a missing framework or an operator a target cannot
lower; PyTorch on tensors (MatdiffF checked with gradcheck, float32, no host reads in
f_and_grad). The JAX-only tests (jit, vmap, custom_vjp, sharding) are test_backends_jax.py.
Tests of a framework skip, with the reason, when it is not installed; CI installs both and
sets MATDIFF_REQUIRE_FRAMEWORKS, so that nothing skips there."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from matdiff.codegen import CannotLower, module_source, numpy_module
from matdiff.codegen.verify import MissingFramework, import_source, require, verify_module
from matdiff.derive.gradient import derive
from matdiff.errors import MatdiffError
from matdiff.ops import OPERATORS
from matdiff.oracles.numeric import find_point, to_public
from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"


def _have(package: str) -> bool:
    if os.environ.get("MATDIFF_REQUIRE_FRAMEWORKS"):  # CI installs both: run, never skip
        return True
    try:
        __import__(package)
    except ImportError:
        return False
    return True


needs_jax = pytest.mark.skipif(not _have("jax"), reason='JAX is not installed '
                               '(pip install "matdiff[jax]")')
needs_torch = pytest.mark.skipif(not _have("torch"), reason='PyTorch is not installed '
                                 '(pip install "matdiff[torch]")')
TARGETS = [pytest.param("jax", marks=needs_jax), pytest.param("torch", marks=needs_torch)]


@pytest.fixture
def x64():
    """jax_enable_x64 for one test (and back)."""
    import jax

    with jax.enable_x64(True):
        yield jax


def _point(d, seed=3):
    search = find_point([d.f, *d.gradients.values()], d.typed.variables,
                        np.random.default_rng(seed))
    assert search.point is not None
    return {n: to_public(search.point.env[n], v.shape) for n, v in d.typed.variables.items()}


def _to(target, args, dtype="float64"):
    if target == "jax":
        import jax.numpy as jnp

        return {k: v if isinstance(v, float) else jnp.asarray(v, dtype=dtype)
                for k, v in args.items()}
    import torch

    return {k: v if isinstance(v, float) else torch.as_tensor(v, dtype=getattr(torch, dtype))
            for k, v in args.items()}


def _np(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def _rel(a, b) -> float:
    a, b = _np(a), _np(b)
    return float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b))))


# ---------------------------------------------------------------- emitting (no framework)


def test_numpy_target_is_the_numpy_module():
    d = derive("logdet(S) + tr(inv(S)*C)", ["S"], {"S": "spd"})
    assert module_source(d, [], "numpy") == numpy_module(d)
    code, out, _ = run("codegen", "x'*A*x", "--wrt", "x", "--plain")
    code2, out2, _ = run("codegen", "x'*A*x", "--wrt", "x", "--plain", "--target", "numpy")
    assert (code, out) == (code2, out2) and "import numpy as np" in out


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_every_target_has_the_same_functions_and_docstrings(target):
    """Emitting needs no framework; names, keyword arguments and docstrings match NumPy's."""
    d = derive("norm2(A*x - y)^2 + lambda*norm2(x)^2", ["x", "lambda"])
    numpy_src, src = numpy_module(d), module_source(d, [], target)

    def functions(text):
        return re.findall(r'^def (f|grad_\w+|f_and_grad)\(\*\*vars\):\n    """(.*?)"""', text,
                          re.S | re.M)
    assert functions(src) == functions(numpy_src)
    assert [n for n, _ in functions(src)] == ["f", "grad_x", "grad_lambda", "f_and_grad"]
    assert f"import {target}" in src and "scipy" not in src
    assert ("def f_custom(**vars)" in src) == (target == "jax")
    assert ("class MatdiffF(torch.autograd.Function)" in src) == (target == "torch")
    compile(src, "<emitted>", "exec")


def test_unknown_target_is_a_usage_error():
    code, _, err = run("codegen", "x'*x", "--wrt", "x", "--target", "tensorflow")
    assert code == 2 and "--target" in err and "Traceback" not in err


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_an_operator_a_target_cannot_lower_exits_2_naming_it(target, monkeypatch):
    monkeypatch.delitem(OPERATORS["logsumexp"].lower, target)
    with pytest.raises(CannotLower, match="'logsumexp'"):
        module_source(derive("logsumexp(x)", ["x"]), [], target)
    code, out, err = run("codegen", "logsumexp(A*x)", "--wrt", "x", "--target", target)
    assert code == 2 and out == "" and "cannot lower 'logsumexp'" in err
    assert "Traceback" not in err
    # element-wise functions are named by their function
    monkeypatch.setitem(OPERATORS["fn"].lower, target, lambda ctx, n, a: None)
    code, _, err = run("codegen", "sum(tanh(x))", "--wrt", "x", "--target", target)
    assert code == 2 and "cannot lower 'tanh'" in err


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_verify_without_the_framework_exits_2_naming_the_package(target, monkeypatch):
    monkeypatch.setitem(sys.modules, target, None)  # import fails as if not installed
    with pytest.raises(MissingFramework):
        require(target)
    code, out, err = run("codegen", "x'*A*x", "--wrt", "x", "--target", target, "--verify")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert f"needs the package '{target}'" in err and f"matdiff[{target}]" in err
    # emitting alone needs no framework
    code, out, _ = run("codegen", "x'*A*x", "--wrt", "x", "--target", target, "--plain")
    assert code == 0 and f"import {target}" in out


def test_variable_names_that_are_the_frameworks_names_do_not_break_a_module():
    expr = "norm2(jnp*torch - jsla)^2 + lambda*norm2(torch)^2 + sum(MatdiffF*f_custom) + " \
        "np'*ctx"
    d = derive(expr, ["torch", "lambda", "f_custom", "ctx"],
               {"jnp": "matrix", "MatdiffF": "matrix"})
    for target in ("jax", "torch"):
        src = module_source(d, [], target)
        assert "def f_and_grad(**vars)" in src
        if _have(target):
            report = verify_module(d, src)
            assert report.ok, report.text


# ---------------------------------------------------------------- numbers, every target

CASES = json.loads((DATA / "public_cases.json").read_text(encoding="utf-8"))
CORPUS = json.loads((DATA / "corpus.json").read_text(encoding="utf-8"))


def _numbers_agree(target, expr, wrt, let):
    d = derive(expr, wrt, let)
    try:
        numpy_src = numpy_module(d)
    except MatdiffError:  # no module for any target (a size no variable fixes)
        with pytest.raises(MatdiffError):
            module_source(d, [], target)
        return
    args = _point(d)
    with np.errstate(all="ignore"):
        value, grads = import_source(numpy_src).f_and_grad(**args)
    mod = import_source(module_source(d, [], target))
    if target == "jax":
        import jax

        out_value, out_grads = jax.jit(mod.f_and_grad)(**_to(target, args))
    else:
        out_value, out_grads = mod.f_and_grad(**_to(target, args))
    assert _rel(out_value, value) < 1e-9, (expr, target)
    for w in wrt:
        assert _np(out_grads[w]).shape == np.shape(grads[w])
        assert _rel(out_grads[w], grads[w]) < 1e-9, (expr, w, target)


@pytest.mark.parametrize("target", TARGETS)
def test_public_cases_and_corpus_agree_with_the_numpy_module(target, request):
    if target == "jax":
        request.getfixturevalue("x64")
    rows = [(c["expression"], list(c["gradients"]), c["let"]) for c in CASES]
    # (each JAX row compiles under jit: the whole corpus, 141 rows with the kron/vec cases,
    # was checked once for both targets; here every 3rd row for PyTorch, none for JAX)
    if target == "torch":
        rows += [(r["expression"], [r["wrt"]], r["let"]) for r in CORPUS[::3]]
    rows += [("sum(blockdot(G, B).^2) + sum(blocksum(G, A))", ["G", "B"], {}),
             ("norm2(kron(A,B)*vec(X) - vec(Y))^2", ["X"], {}),
             ("sum(unvec(u, A).^3)", ["u"], {}), ("det(X)", ["X"], {}),
             ("log(det(X)) + u'*inv(X)*v", ["X"], {}), ("tr(A*B*C*D)", ["B"], {}),
             ("sum(erf(x)) + sum(relu(x)) + sum(softplus(x))", ["x"], {})]
    for expr, wrt, let in rows:
        _numbers_agree(target, expr, wrt, let)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("expr, wrt, let", [
    ("logdet(S) + tr(inv(S)*C)", ["S"], {"S": "spd"}),
    ("-y'*log(softmax(W2*sigmoid(W1*x)))", ["W1", "W2"], {}),
    ("u'*inv(X)*v + lambda*norm2(u)^2", ["X", "lambda"], {}),
])
def test_verify_per_target_in_float64(target, expr, wrt, let):
    d = derive(expr, wrt, let)
    report = verify_module(d, module_source(d, [], target))
    assert report.ok and report.max_error < 1e-6, report.text
    assert ("jax.jit" in report.text) == (target == "jax")
    assert ("MatdiffF" in report.text) == (target == "torch")


@pytest.mark.parametrize("target", TARGETS)
def test_cli_hessian_and_jacobian_verify_for_every_target(target, tmp_path):
    out_file = tmp_path / "m.py"
    code, _, err = run("codegen", "x'*A*x + sum(exp(x))", "--wrt", "x", "--hessian",
                       "--target", target, "--verify", "-o", str(out_file))
    assert code == 0, err
    assert "hessian x" in err and "verify: ok" in err
    assert "def hvp_x(" in out_file.read_text()
    code, _, err = run("codegen", "tanh(W*x)", "--wrt", "x", "--jacobian", "--target", target,
                       "--verify", "-o", str(out_file))
    assert code == 0 and "jacobian x" in err and "verify: ok" in err, err


@pytest.mark.parametrize("target", TARGETS)
def test_argument_checks(target):
    mod = import_source(module_source(derive("tr(A*X*B)", ["X"]), [], target))
    a, x, b = np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 2))
    assert abs(float(mod.f(A=a, X=x, B=b)) - 24.0) < 1e-6  # NumPy arrays are converted
    with pytest.raises(TypeError, match="missing .*argument.*B"):
        mod.f(A=a, X=x)
    with pytest.raises(ValueError, match=r"X is 5×4"):
        mod.f(A=a, X=np.ones((5, 4)), B=b)
    with pytest.raises(TypeError, match="complex"):
        mod.f(A=a, X=x + 1j, B=b)
    with pytest.raises(ValueError, match="empty"):
        mod.f(A=np.ones((0, 3)), X=x, B=np.ones((4, 0)))


# ---------------------------------------------------------------- PyTorch


@needs_torch
@pytest.mark.parametrize("expr, wrt, let", [
    ("-y'*log(softmax(W2*sigmoid(W1*x + b1)))", ["W1", "b1", "W2"], {}),
    ("u'*inv(X)*v + lambda*norm2(u)^2", ["X", "u", "lambda"], {}),
    ("logdet(S) + tr(inv(S)*C)", ["S"], {"S": "spd"}),
])
def test_torch_autograd_function_passes_gradcheck(expr, wrt, let):
    import torch

    d = derive(expr, wrt, let)
    mod = import_source(module_source(d, [], "torch"))
    args = _point(d)
    names = list(d.typed.variables)
    spd = [n for n in names if let.get(n) == "spd"]

    def inputs():
        return [torch.as_tensor(args[n], dtype=torch.float64).requires_grad_(n in wrt)
                for n in names]

    def fn(*tensors):  # an spd argument perturbed symmetrically (its checks refuse others)
        tensors = [(t + t.T) / 2 if n in spd else t for n, t in zip(names, tensors)]
        return mod.MatdiffF.apply(*tensors)
    assert torch.autograd.gradcheck(fn, tuple(inputs()), eps=1e-6, atol=1e-5)
    # the backward is matdiff's gradient, and so is the autograd of a model around it
    leaves = inputs()
    (2.0 * mod.MatdiffF.apply(*leaves)).backward()
    value, grads = mod.f_and_grad(**{n: t.detach() for n, t in zip(names, leaves)})
    for n, leaf in zip(names, leaves):
        if n in wrt:
            assert _rel(leaf.grad, 2.0 * grads[n]) < 1e-12
    # a non-derived argument that requires grad is refused, not given a zero gradient
    if "x" in names or "v" in names:
        other = "x" if "x" in names else "v"
        leaves = inputs()
        leaves[names.index(other)].requires_grad_(True)
        with pytest.raises(RuntimeError, match="only with respect to"):
            mod.MatdiffF.apply(*leaves)


@needs_torch
def test_torch_float32_and_factorizations():
    import torch

    d = derive("logdet(S) + tr(inv(S)*C) + u'*inv(X)*v", ["S", "X"], {"S": "spd"})
    src = module_source(d, [], "torch")
    assert "torch.linalg.cholesky_ex" in src and "torch.cholesky_solve" in src
    assert "torch.linalg.lu_factor_ex" in src and "torch.linalg.lu_solve" in src
    assert "torch.linalg.inv" not in src
    mod = import_source(src)
    args = _point(d)
    _, ref = import_source(numpy_module(d)).f_and_grad(**args)
    value, grads = mod.f_and_grad(**_to("torch", args, "float32"))
    assert value.dtype == torch.float32 and grads["X"].dtype == torch.float32
    assert _rel(grads["X"], ref["X"]) < 1e-3 and _rel(grads["S"], ref["S"]) < 1e-3
    with pytest.raises(torch.linalg.LinAlgError):  # on the CPU, as NumPy's module does
        mod.f(**{**_to("torch", args), "X": torch.zeros(args["X"].shape, dtype=torch.float64)})


@needs_torch
def test_torch_f_and_grad_reads_nothing_back_from_the_device():
    """No .item(), float(), int(), bool(), .cpu(), .numpy() or .tolist() of a tensor inside
    f_and_grad; the helpers that read back (symmetry, factorization status) do so only when
    the tensor is on the CPU."""
    d = derive("logdet(S) + tr(inv(S)*C) + lambda*sum(sigmoid(X*u)) + u'*inv(X)*v",
               ["S", "X", "u", "lambda"], {"S": "spd"})
    src = module_source(d, [], "torch")
    body = src.split("def f_and_grad(**vars):")[1].split("\n\n\n")[0]
    assert "return " in body and "class MatdiffF" not in body
    for word in (r"\.item\(", r"\bfloat\(", r"\bint\(", r"\bbool\(", r"\.cpu\(",
                 r"\.numpy\(", r"\.tolist\(", r"\bif t\d", r"\bwhile\b"):
        assert not re.search(word, body), word
    mod = import_source(src)
    for helper in ("_symmetric", "_check_info"):
        text = getattr(mod, helper).__code__.co_consts
        assert any("cpu" == c for c in text), helper
