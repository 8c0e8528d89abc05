"""Jacobians, Hessians and Hessian-vector products: textbook forms pinned, every result
compared here with central differences of f (Jacobian) or of the gradient (Hessian)."""

import numpy as np
import pytest

from matdiff.codegen import numpy_module
from matdiff.derive.gradient import derive
from matdiff.derive.jacobian import (
    hessian,
    hessian_extras,
    jacobian,
    jacobian_module,
    verify_extras,
)
from matdiff.errors import DerivationError
from matdiff.oracles.numeric import dim_sizes, evaluate, find_data, random_direction
from matdiff.printing.unicode import to_unicode

from .test_cli import run


def fd_error(result):
    """max |J v − (f(x+εv) − f(x−εv))/2ε| relative, or the same for H v / H[V] with ∇f."""
    variables = result.typed.variables
    sizes = dim_sizes(variables, result.function, result.result)
    rng = np.random.default_rng(3)
    env = find_data(result.function, {}, variables, sizes, rng)
    kind = variables[result.wrt].attr[1]
    worst = 0.0
    for _ in range(3):
        v = random_direction(kind, env[result.wrt].shape, rng)
        if result.direction is not None:
            analytic = evaluate(result.result, {**env, result.direction.attr[0]: v}, sizes)
        else:
            analytic = evaluate(result.result, env, sizes) @ v
        best = np.inf
        for eps in (1e-4, 1e-5, 1e-6):
            plus = {**env, result.wrt: env[result.wrt] + eps * v}
            minus = {**env, result.wrt: env[result.wrt] - eps * v}
            fd = (evaluate(result.function, plus, sizes) -
                  evaluate(result.function, minus, sizes)) / (2 * eps)
            best = min(best, float(np.max(np.abs(fd - analytic))) /
                       max(1e-6, float(np.max(np.abs(fd)))))
        worst = max(worst, best)
    return worst


JACOBIAN_FORMS = [
    ("sigmoid(W*x+b)", "x", {"b": "vector"}, "diag(σ'(Wx + b)) W"),
    ("A*exp(x)", "x", {}, "A diag(exp(x))"),
    ("softmax(x)", "x", {}, "diag(softmax(x)) − softmax(x) softmax(x)ᵀ"),
    ("(x'*A)'", "x", {}, "Aᵀ"),
    ("x.*y", "x", {}, "diag(y)"),
    ("a*x", "a", {}, "x"),
    ("A*x - y", "x", {}, "A"),
]


@pytest.mark.parametrize("expr,wrt,types,form", JACOBIAN_FORMS, ids=[j[0] for j in JACOBIAN_FORMS])
def test_jacobian_textbook_forms(expr, wrt, types, form):
    result = jacobian(expr, wrt, types)
    assert to_unicode(result.result) == form
    assert fd_error(result) < 1e-6


JACOBIANS = [
    ("x*(x'*x)", "x", {}), ("A*x/norm2(x)", "x", {}), ("tanh(A*x)", "x", {}),
    ("exp(x) ./ sum(exp(x))", "x", {}), ("diag(x)*A*x", "x", {}), ("sigmoid(W*x+b)", "b",
                                                                    {"b": "vector"}),
    ("log(softmax(A*x))", "x", {}), ("x.^3 - 2*x", "x", {}), ("inv(A)*x", "x", {}),
    ("(x'*A*x)*y", "x", {}),
]


@pytest.mark.parametrize("expr,wrt,types", JACOBIANS, ids=[j[0] for j in JACOBIANS])
def test_jacobians_match_finite_differences(expr, wrt, types):
    assert fd_error(jacobian(expr, wrt, types)) < 1e-6


HESSIAN_FORMS = [
    ("x'*A*x", "x", {}, "A + Aᵀ"),
    ("norm2(A*x-y)^2", "x", {}, "2AᵀA"),
    ("sum(log(exp(-y.*(X*w)) + vector(1)))", "w", {}, "Xᵀ diag(y ⊙ σ'(−y ⊙ (Xw)) ⊙ y) X"),
    ("log(det(X))", "X", {}, "−X⁻ᵀVᵀX⁻ᵀ"),
    ("a^3*b", "a", {}, "6a·b"),
    ("norm2(X)^2", "X", {}, "2V"),
]


@pytest.mark.parametrize("expr,wrt,types,form", HESSIAN_FORMS, ids=[h[0] for h in HESSIAN_FORMS])
def test_hessian_textbook_forms(expr, wrt, types, form):
    result = hessian(expr, wrt, types)
    assert to_unicode(result.result) == form
    assert fd_error(result) < 1e-6


HESSIANS = [
    ("logsumexp(x)", "x", {}), ("x'*x*(x'*A*x)", "x", {}), ("sum(exp(A*x))", "x", {}),
    ("norm2(x)", "x", {}), ("tr(X*A*X')", "X", {}), ("x'*inv(S)*x", "S", {"S": "spd"}),
    ("logdet(S) + tr(inv(S)*C)", "S", {"S": "spd"}), ("tr(inv(X))", "X", {}),
    ("-y'*log(softmax(W*x))", "W", {}), ("sum(tanh(W*x))", "x", {}),
    ("sum(sigmoid(A*x))", "x", {}), ("x'*S*x", "S", {"S": "symmetric"}),
]


@pytest.mark.parametrize("expr,wrt,types", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_hessians_match_finite_differences(expr, wrt, types):
    assert fd_error(hessian(expr, wrt, types)) < 1e-6


def test_no_matrix_form_is_said_plainly():
    with pytest.raises(DerivationError, match="matrix form"):
        jacobian("A*X*B", "X")
    with pytest.raises(DerivationError, match="3rd-order tensor"):
        jacobian("X*x", "X")


def test_emitted_jacobian_and_hessian_functions_verify():
    source, results = jacobian_module("sigmoid(W*x+b)", ["x", "b"], {"b": "vector"})
    assert "def jac_x(*, W, x, b)" in source and "def jac_b(*, W, x, b)" in source
    assert verify_extras(results, source).ok
    expr = "norm2(A*x-y)^2 + tr(X*X')"
    derivation = derive(expr, ["x", "X"])
    source = numpy_module(derivation, hessian_extras(expr, ["x", "X"]))
    assert "def hess_x(*, A, x, y, X)" in source and "def hvp_x(V, *, A, x, y, X)" in source
    assert "def hvp_X(V, *, A, x, y, X)" in source
    assert verify_extras([hessian(expr, "x"), hessian(expr, "X")], source).ok


def test_cli_jacobian_and_hessian():
    code, out, _ = run("jacobian", "sigmoid(W*x+b)", "--wrt", "x", "--let", "b:vector")
    assert code == 0 and "J = ∂f/∂xᵀ = diag(σ'(Wx + b)) W" in out and "numerator layout" in out
    code, out, _ = run("hessian", "log(det(X))", "--wrt", "X")
    assert code == 0 and "H[V] = −X⁻ᵀVᵀX⁻ᵀ" in out
    code, out, _ = run("hessian", "x'*A*x", "--wrt", "x", "--format", "json")
    import json

    data = json.loads(out)
    assert data["hessian"]["x"]["hessian"] == "A + A'"
    code, out, _ = run("jacobian", "A*X*B", "--wrt", "X")
    assert code == 2
    code, out, err = run("codegen", "A*exp(x)", "--wrt", "x", "--jacobian", "--verify")
    assert code == 0 and "verify: ok" in err


ALONG = [
    ("norm2(x)^2", "t", ["x=A*u", "u=exp(t)*v"], "2exp(t)²·vᵀAᵀAv"),
    ("sigmoid(w'*x)", "t", ["x=t*v+y"], None),
    ("x'*B*x", "t", ["x=sin(t)*u + cos(t)*y"], None),
    ("softmax(x)", "t", ["x=t*v"], None),
]


@pytest.mark.parametrize("expr,t,defs,form", ALONG, ids=[a[0] for a in ALONG])
def test_total_derivative_along_a_path(expr, t, defs, form):
    from matdiff.derive.chain_rule import along, parse_definitions
    from matdiff.oracles.numeric import dim_sizes, evaluate, random_env

    result = along(expr, t, parse_definitions(defs))
    assert result.checked
    if form is not None:
        assert to_unicode(result.total) == form
    # independent check: central differences of the substituted f along t
    variables = result.typed.variables
    sizes = dim_sizes(variables, result.typed.root, result.total)
    env = random_env(variables, sizes, np.random.default_rng(5), "signed")
    eps = 1e-5
    plus = {**env, t: env[t] + eps}
    minus = {**env, t: env[t] - eps}
    fd = (evaluate(result.typed.root, plus, sizes) - evaluate(result.typed.root, minus, sizes)) \
        / (2 * eps)
    assert np.allclose(evaluate(result.total, env, sizes), fd, rtol=1e-6, atol=1e-8)


def test_cli_along():
    code, out, _ = run("grad", "norm2(x)^2", "--along", "t", "--define", "x=A*u",
                       "--define", "u=exp(t)*v")
    assert code == 0
    assert "chain rule: df/dt = (∂f/∂xᵀ)(∂x/∂uᵀ)(∂u/∂t)" in out
    assert "= (2xᵀ)(A)(exp(t)·v)" in out
    assert run("grad", "x'*x", "--along", "t", "--define", "x=y")[0] == 2
    assert run("grad", "x'*x", "--along", "t", "--define", "x")[0] == 2
    assert run("grad", "x'*x")[0] == 2


VEC_FORMS = [
    ("A*X*B", "X", "Bᵀ ⊗ A"),
    ("X'", "X", "K(m,n)"),
    ("X.*Y", "X", "diag(vec(Y))"),
    ("X*x", "X", "xᵀ ⊗ I"),
    ("X*X", "X", "Xᵀ ⊗ I + I ⊗ X"),
    ("inv(X)", "X", "−X⁻ᵀ ⊗ X⁻¹"),
]


@pytest.mark.parametrize("expr,wrt,form", VEC_FORMS, ids=[v[0] for v in VEC_FORMS])
def test_vec_kronecker_forms(expr, wrt, form):
    from matdiff.derive.jacobian import vec_jacobian

    result = vec_jacobian(expr, wrt)
    assert to_unicode(result.result) == form
    # independent check: vec((f(X+εV) − f(X−εV))/2ε) against J·vec(V)
    variables = result.typed.variables
    sizes = dim_sizes(variables, result.function, result.result)
    rng = np.random.default_rng(8)
    env = find_data(result.function, {}, variables, sizes, rng)
    V = rng.standard_normal(env[wrt].shape)
    eps = 1e-5
    fd = (evaluate(result.function, {**env, wrt: env[wrt] + eps * V}, sizes) -
          evaluate(result.function, {**env, wrt: env[wrt] - eps * V}, sizes)) / (2 * eps)
    J = evaluate(result.result, env, sizes)
    assert np.allclose(J @ V.reshape(-1, 1, order="F"), fd.reshape(-1, 1, order="F"),
                       rtol=1e-6, atol=1e-8)


def test_row_vector_expression_is_reported_through_its_transpose():
    code, out, _ = run("jacobian", "x'*A", "--wrt", "x")
    assert code == 0 and "J = ∂f/∂xᵀ = Aᵀ" in out and "row vector" in out


def test_cli_vec_form():
    code, out, _ = run("jacobian", "A*X*B", "--wrt", "X", "--vec")
    assert code == 0 and "J = ∂vec(f)/∂vec(X)ᵀ = Bᵀ ⊗ A" in out
    code, _, err = run("jacobian", "A*X*B", "--wrt", "X")
    assert code == 2 and "--vec" in err
