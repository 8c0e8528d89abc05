"""Issue 15, emitted code: one factorization per matrix shared by f and the gradient, triangular
solves for the Cholesky factor, every must-work expression on every target (NumPy, JAX,
PyTorch, each checked by `codegen --verify`: f against the evaluator, gradients against
central differences of the emitted f), and the matrix functions' notes in `grad` output."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest

import matdiff
from matdiff.cli import main

MUST_WORK = [
    ("tr(expm(X))", "X", {}),
    ("tr(A*expm(X))", "X", {}),
    ("u'*expm(t*A)*v", "t", {"t": "scalar"}),
    ("norm2(expm(X)*v)^2", "X", {}),
    ("tr(logm(S))", "S", {"S": "spd"}),
    ("tr(A*logm(S))", "S", {"S": "spd"}),
    ("norm2(logm(S) - B)^2", "S", {"S": "spd"}),
    ("tr(sqrtm(S))", "S", {"S": "spd"}),
    ("norm2(sqrtm(S) - B)^2", "S", {"S": "spd"}),
    ("eigmax(S)", "S", {"S": "symmetric"}),
    ("eigmax(A'*A)", "A", {}),
    ("eigmax(S) - eigmin(S)", "S", {"S": "symmetric"}),
    ("sum(log(diag(chol(S))))", "S", {"S": "spd"}),
    ("norm2(chol(S)*z)^2", "S", {"S": "spd"}),
    ("tr(A*chol(S))", "S", {"S": "spd"}),
    ("nucnorm(X)", "X", {}),
    ("nucnorm(A*X - B)", "X", {}),
    ("specnorm(X)", "X", {}),
    ("tr(pinv(X)*A)", "X", {}),
    ("norm2(A*X - B)^2 + lam*nucnorm(X)", "X", {"lam": "scalar"}),
]


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


TARGETS = [
    "numpy",
    pytest.param("jax", marks=pytest.mark.skipif(not _installed("jax"), reason="needs jax")),
    pytest.param("torch", marks=pytest.mark.skipif(not _installed("torch"),
                                                   reason="needs torch")),
]


def _body(source: str, name: str = "f_and_grad") -> str:
    """The statements of one emitted function (up to the next top-level definition)."""
    start = source.index(f"\ndef {name}(")
    end = source.find("\ndef ", start + 1)
    return source[start:end if end > 0 else None]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("expr,wrt,types", MUST_WORK, ids=[c[0] for c in MUST_WORK])
def test_must_work_verifies_on_every_target(expr, wrt, types, target):
    report = matdiff.grad(expr, [wrt], types=types).verify(target=target)
    assert report.ok, report.text
    assert report.max_error < 1e-6


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("expr,wrt,types,kind", [
    ("norm2(logm(S) - B)^2", "S", {"S": "spd"}, "eigh"),
    ("tr(A*logm(S))", "S", {"S": "spd"}, "eigh"),
    ("norm2(sqrtm(S) - B)^2", "S", {"S": "spd"}, "eigh"),
    ("eigmax(S) - eigmin(S)", "S", {"S": "symmetric"}, "eigh"),
    ("eigmax(A'*A)", "A", {}, "eigh"),
    ("norm2(A*X - B)^2 + lam*nucnorm(X)", "X", {"lam": "scalar"}, "svd"),
    ("nucnorm(A*X - B)", "X", {}, "svd"),
    ("specnorm(X)", "X", {}, "svd"),
])
def test_one_factorization_shared_by_f_and_the_gradient(expr, wrt, types, kind, target):
    source = matdiff.grad(expr, [wrt], types=types).source(target)
    for name in ("f_and_grad", f"grad_{wrt}"):
        calls = re.findall(r"_factor\('([a-z ]+)'", _body(source, name))
        assert len(calls) == 1 and calls[0].endswith(kind), (name, calls)


def test_values_alone_when_no_term_needs_the_vectors():
    source = matdiff.grad("norm2(A*X - B)^2 + lam*nucnorm(X)", ["X"],
                          types={"lam": "scalar"}).numpy_source()
    assert "_factor('svdvals', X)" in _body(source, "f")
    source = matdiff.grad("eigmax(S)", ["S"], types={"S": "symmetric"}).numpy_source()
    assert "_factor('symmetric eigvalsh', S)" in _body(source, "f")
    assert "_factor('symmetric eigh', S)" in _body(source, "f_and_grad")


@pytest.mark.parametrize("target,solve", [("numpy", "sla.solve_triangular("),
                                          ("jax", "jsla.solve_triangular("),
                                          ("torch", "_tri_solve(")])
def test_cholesky_gradient_uses_triangular_solves(target, solve):
    source = matdiff.grad("norm2(chol(S)*z)^2", ["S"], types={"S": "spd"}).source(target)
    body = _body(source)
    assert solve in body
    assert "_lu(" not in body and "lu_solve" not in body and "inv(" not in body


def test_cholesky_factor_is_computed_once():
    source = matdiff.grad("tr(A*chol(S))", ["S"], types={"S": "spd"}).numpy_source()
    assert _body(source).count("sla.cholesky(") == 1


def test_sqrtm_of_a_general_matrix_shared_with_its_frechet_derivative():
    g = matdiff.grad("norm2(sqrtm(X) - B)^2", ["X"])
    body = _body(g.numpy_source())
    assert body.count("_sqrtm(") == 1 and "solve_sylvester" in body
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 4)) / 4 + 2 * np.eye(4)
    B = rng.standard_normal((4, 4))
    module = g.compile()
    value, grads = module.f_and_grad(X=X, B=B)
    v = rng.standard_normal((4, 4))
    fd = (module.f(X=X + 1e-6 * v, B=B) - module.f(X=X - 1e-6 * v, B=B)) / 2e-6
    assert abs(np.sum(grads["X"] * v) - fd) <= 1e-6 * max(1.0, abs(fd))


def test_emitted_numpy_matches_the_hand_written_bench_gradients():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        from matfun_problems import PROBLEMS
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(0)
    for p in PROBLEMS:
        data = p.gen(12, rng)
        module = matdiff.grad(p.expr, p.wrt, types=p.lets).compile()
        f0, g0 = module.f_and_grad(**data)
        f1, g1 = p.grad(**data)
        assert np.isclose(f0, f1), p.name
        for name in p.wrt:
            assert np.allclose(g0[name], g1[name], rtol=1e-7, atol=1e-9), (p.name, name)


def test_notes_in_grad_text_and_json(capsys):
    assert main(["grad", "tr(A*expm(X))", "--wrt", "X", "--plain"]) == 0
    text = capsys.readouterr().out
    assert "note: L_expm(X, E) is the Fréchet derivative of expm" in text
    assert text.index("note:") > text.index("∂f/∂X")
    assert main(["grad", "eigmax(S)", "--wrt", "S", "--let", "S:symmetric",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any("eigenvalue is simple" in n for n in data["notes"])
    assert main(["grad", "x'*A*x", "--wrt", "x", "--format", "json"]) == 0
    assert "notes" not in json.loads(capsys.readouterr().out)
