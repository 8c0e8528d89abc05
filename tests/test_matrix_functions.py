"""Issue 15: matrix functions, spectral functions, factorizations and dF of matrix-valued F.

Every must-work expression is derived (matdiff's own self-check runs), then its gradient is
compared here, independently, with central differences of SciPy/NumPy code written by hand,
and with the closed forms from the literature where there is one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from matdiff.cli import main
from matdiff.derive.differential_map import check_differential, differential_map
from matdiff.derive.gradient import derive
from matdiff.errors import MatdiffError
from matdiff.oracles.numeric import evaluate

RNG = np.random.default_rng(15)


def _spd(n):
    b = RNG.standard_normal((n, n))
    return b @ b.T / n + np.eye(n)


def _sym_dir(n):
    v = RNG.standard_normal((n, n))
    return (v + v.T) / 2


def _grad_value(result, name, env):
    """The derived gradient evaluated with matdiff's float64 evaluator at env (2-D arrays)."""
    sizes = {}
    for v in result.typed.variables.values():
        for d, k in zip(v.shape, env[v.attr[0]].shape):
            sizes[d] = k
    return evaluate(result.gradients[name], env, sizes)


def _fd(f, env, name, v, eps=1e-6):
    plus, minus = dict(env), dict(env)
    plus[name] = env[name] + eps * v
    minus[name] = env[name] - eps * v
    return (f(**plus) - f(**minus)) / (2 * eps)


def _agrees(expr, types, wrt, env, f, closed=None, symmetric=False):
    result = derive(expr, [wrt], types)
    assert result.checked and result.max_error < 1e-6, (expr, result.check_reason)
    g = _grad_value(result, wrt, env)
    for _ in range(2):
        v = _sym_dir(env[wrt].shape[0]) if symmetric else RNG.standard_normal(env[wrt].shape)
        fd = _fd(f, env, wrt, v)
        assert abs(np.sum(g * v) - fd) <= 1e-6 * max(1.0, abs(fd)), (expr, np.sum(g * v), fd)
    if closed is not None:
        assert np.allclose(g, closed, rtol=1e-7, atol=1e-9), expr
    return result


# ---------------------------------------------------------------- expm


def test_trace_of_expm_is_expm_transposed():
    X = RNG.standard_normal((4, 4))
    r = _agrees("tr(expm(X))", None, "X", {"X": X}, lambda X: np.trace(sla.expm(X)),
                closed=sla.expm(X).T)
    assert str(r.gradients["X"]) == "expm(X)'"


def test_trace_a_expm():
    X, A = RNG.standard_normal((4, 4)), RNG.standard_normal((4, 4))
    r = _agrees("tr(A*expm(X))", None, "X", {"X": X, "A": A},
                lambda X, A: np.trace(A @ sla.expm(X)))
    assert "L_expm" in str(r.gradients["X"])


def test_expm_along_t():
    A = RNG.standard_normal((4, 4))
    u, v = RNG.standard_normal((4, 1)), RNG.standard_normal((4, 1))
    env = {"t": np.full((1, 1), 0.7), "A": A, "u": u, "v": v}
    _agrees("u'*expm(t*A)*v", {"t": "scalar"}, "t", env,
            lambda t, A, u, v: (u.T @ sla.expm(t * A) @ v),
            closed=u.T @ A @ sla.expm(0.7 * A) @ v)


def test_norm_of_expm_times_v():
    X, v = RNG.standard_normal((4, 4)) / 2, RNG.standard_normal((4, 1))
    _agrees("norm2(expm(X)*v)^2", None, "X", {"X": X, "v": v},
            lambda X, v: np.sum((sla.expm(X) @ v) ** 2))


# ---------------------------------------------------------------- logm, sqrtm (spd)


def test_trace_logm_is_logdet():
    S = _spd(4)
    _agrees("tr(logm(S))", {"S": "spd"}, "S", {"S": S},
            lambda S: np.trace(sla.logm(S)).real, closed=np.linalg.inv(S), symmetric=True)
    assert np.isclose(np.trace(sla.logm(S)).real, np.linalg.slogdet(S)[1])


def test_trace_a_logm():
    S, A = _spd(4), RNG.standard_normal((4, 4))
    _agrees("tr(A*logm(S))", {"S": "spd"}, "S", {"S": S, "A": A},
            lambda S, A: np.trace(A @ sla.logm((S + S.T) / 2)).real, symmetric=True)


def test_log_euclidean_distance():
    S, B = _spd(4), RNG.standard_normal((4, 4))
    _agrees("norm2(logm(S) - B)^2", {"S": "spd"}, "S", {"S": S, "B": B},
            lambda S, B: np.sum((sla.logm((S + S.T) / 2).real - B) ** 2), symmetric=True)


def test_trace_sqrtm_closed_form():
    S = _spd(4)
    root = sla.sqrtm(S).real
    _agrees("tr(sqrtm(S))", {"S": "spd"}, "S", {"S": S},
            lambda S: np.trace(sla.sqrtm((S + S.T) / 2)).real,
            closed=np.linalg.inv(root) / 2, symmetric=True)


def test_sqrtm_distance():
    S, B = _spd(4), RNG.standard_normal((4, 4))
    _agrees("norm2(sqrtm(S) - B)^2", {"S": "spd"}, "S", {"S": S, "B": B},
            lambda S, B: np.sum((sla.sqrtm((S + S.T) / 2).real - B) ** 2), symmetric=True)


# ---------------------------------------------------------------- eigenvalues


def test_eigmax_is_u_u_transposed():
    S = _spd(5)
    w, U = np.linalg.eigh(S)
    _agrees("eigmax(S)", {"S": "symmetric"}, "S", {"S": S},
            lambda S: np.linalg.eigvalsh(S)[-1], closed=np.outer(U[:, -1], U[:, -1]),
            symmetric=True)


def test_eigmax_of_gram_matrix():
    A = RNG.standard_normal((5, 3))
    _, V = np.linalg.eigh(A.T @ A)
    _agrees("eigmax(A'*A)", None, "A", {"A": A}, lambda A: np.linalg.eigvalsh(A.T @ A)[-1],
            closed=2 * A @ np.outer(V[:, -1], V[:, -1]))


def test_eigenvalue_spread():
    S = _spd(5)
    _agrees("eigmax(S) - eigmin(S)", {"S": "symmetric"}, "S", {"S": S},
            lambda S: np.ptp(np.linalg.eigvalsh(S)), symmetric=True)


# ---------------------------------------------------------------- Cholesky


def test_logdet_through_cholesky():
    S = _spd(4)
    _agrees("sum(log(diag(chol(S))))", {"S": "spd"}, "S", {"S": S},
            lambda S: np.sum(np.log(np.diag(np.linalg.cholesky(S)))),
            closed=np.linalg.inv(S) / 2, symmetric=True)
    assert np.isclose(np.sum(np.log(np.diag(np.linalg.cholesky(S)))),
                      np.linalg.slogdet(S)[1] / 2)


def test_cholesky_quadratic_and_trace():
    S, z, A = _spd(4), RNG.standard_normal((4, 1)), RNG.standard_normal((4, 4))
    _agrees("norm2(chol(S)*z)^2", {"S": "spd"}, "S", {"S": S, "z": z},
            lambda S, z: np.sum((np.linalg.cholesky(S) @ z) ** 2), symmetric=True)
    _agrees("tr(A*chol(S))", {"S": "spd"}, "S", {"S": S, "A": A},
            lambda S, A: np.trace(A @ np.linalg.cholesky(S)), symmetric=True)


# ---------------------------------------------------------------- norms, pinv


def test_nuclear_norm():
    X = RNG.standard_normal((5, 3))
    U, _, Vt = np.linalg.svd(X, full_matrices=False)
    _agrees("nucnorm(X)", None, "X", {"X": X},
            lambda X: np.sum(np.linalg.svd(X, compute_uv=False)), closed=U @ Vt)


def test_nuclear_norm_regression():
    A, X, B = (RNG.standard_normal((4, 4)) for _ in range(3))
    _agrees("nucnorm(A*X - B)", None, "X", {"A": A, "X": X, "B": B},
            lambda A, X, B: np.sum(np.linalg.svd(A @ X - B, compute_uv=False)))


def test_spectral_norm():
    X = RNG.standard_normal((5, 3))
    U, _, Vt = np.linalg.svd(X)
    _agrees("specnorm(X)", None, "X", {"X": X}, lambda X: np.linalg.norm(X, 2),
            closed=np.outer(U[:, 0], Vt[0]) * np.sign(U[:, 0] @ X @ Vt[0]))


def test_pinv_of_tall_matrix():
    X, A = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 3))
    P = np.linalg.pinv(X)
    # full column rank: d tr(X⁺A) = −tr(X⁺dX X⁺A) + tr(X⁺X⁺ᵀdXᵀ(I − XX⁺)A)
    closed = -(P @ A @ P).T + (np.eye(5) - X @ P) @ A @ P @ P.T
    _agrees("tr(pinv(X)*A)", None, "X", {"X": X, "A": A},
            lambda X, A: np.trace(np.linalg.pinv(X) @ A), closed=closed)


# ---------------------------------------------------------------- dF of matrix-valued F


@pytest.mark.parametrize("expr,printed", [
    ("X^3", "dX*X^2 + X*dX*X + X^2*dX"),
    ("inv(X)", "-inv(X)*dX*inv(X)"),
    ("A*X*B", "A*dX*B"),
    ("X'*X", "dX'*X + X'*dX"),
    ("expm(X)", "L_expm(X, dX)"),
    ("X.*X", None),
])
def test_differential_of_matrix_valued_expressions(expr, printed):
    out = differential_map(expr, "X")
    assert out.checked and out.max_error < 1e-6
    if printed is not None:
        from matdiff.printing.text import to_text

        assert to_text(out.differential).replace(" ", "") == printed.replace(" ", "")


def test_differential_vec_forms_and_notes(capsys):
    assert main(["differential", "A*X*B", "--wrt", "X", "--plain"]) == 0
    text = capsys.readouterr().out
    assert "dF = A dX B" in text and "vec(dF) = (Bᵀ ⊗ A) vec(dX)" in text
    assert main(["differential", "expm(X)", "--wrt", "X", "--plain"]) == 0
    text = capsys.readouterr().out
    assert "L_expm(X, dX)" in text and "note: L_expm(X, E) is the Fréchet derivative" in text


@pytest.mark.parametrize("claim,verdict", [
    ("dX*X*X + X*dX*X + X*X*dX", "correct"),
    ("dX*X^2 + X^2*dX", "missing a term: X dX X"),
    ("X*dX*X + X*X*dX + X*dX*X", "wrong order of factors"),
    ("-(dX*X*X + X*dX*X + X*X*dX)", "wrong sign"),
    ("X*X*X", "not linear in dX"),
])
def test_claimed_differentials(claim, verdict):
    v = check_differential("X^3", "X", claim)
    assert verdict in v.text, v.text
    assert v.correct == (verdict == "correct")


def test_claimed_differential_cli_exit_codes(capsys):
    assert main(["check", "inv(X)", "--wrt", "X", "--claim-differential",
                 "-inv(X)*dX*inv(X)"]) == 0
    assert main(["check", "inv(X)", "--wrt", "X", "--claim-differential",
                 "-inv(X)*inv(X)*dX"]) == 1
    assert "wrong order of factors" in capsys.readouterr().out
    assert main(["check", "X'*X", "--wrt", "X", "--claim-differential", "X'*dX"]) == 1
    assert "missing a term: dXᵀ X" in capsys.readouterr().out


# ---------------------------------------------------------------- domains and refusals


def test_domains_are_respected_by_the_self_check():
    # chol of a general (non-symmetric) matrix has no value anywhere: bad input, said plainly
    with pytest.raises(MatdiffError):
        derive("sum(chol(X))", ["X"])
    # logm of a general square matrix: checked at data with no eigenvalue on (−∞, 0]
    r = derive("tr(A*logm(X))", ["X"])
    assert r.checked


def test_second_frechet_derivative_is_refused_plainly():
    with pytest.raises(MatdiffError, match="second Fréchet derivative"):
        derive("sum(L_expm(X, Y))", ["X"])


def test_gradients_read_back():
    from matdiff.language.typecheck import typecheck
    from matdiff.printing.text import to_text

    for expr, types, wrt in [("tr(A*expm(X))", None, "X"), ("eigmax(S)", {"S": "symmetric"},
                                                            "S"),
                             ("tr(A*chol(S))", {"S": "spd"}, "S"), ("nucnorm(X)", None, "X")]:
        r = derive(expr, [wrt], types)
        text = to_text(r.gradients[wrt])
        again = typecheck(text, {**(types or {}), **{n: v.attr[1] for n, v in
                                                     r.typed.variables.items()}})
        assert again.root is not None, text


def test_emitted_numpy_uses_the_eigendecomposition():
    from matdiff import grad

    g = grad("norm2(logm(S) - B)^2", "S", types={"S": "spd"})
    source = g.numpy_source()
    assert "_factor(" in source and "eigh" in source
    module = g.compile()
    S, B = _spd(5), RNG.standard_normal((5, 5))
    value, grads = module.f_and_grad(S=S, B=B)
    assert np.isclose(value, np.sum((sla.logm(S).real - B) ** 2))
    v = _sym_dir(5)
    fd = (module.f(S=S + 1e-6 * v, B=B) - module.f(S=S - 1e-6 * v, B=B)) / 2e-6
    assert abs(np.sum(grads["S"] * v) - fd) <= 1e-6 * max(1.0, abs(fd))


def test_a_factorization_of_a_general_matrix_says_how_to_declare_it(capsys):
    # chol needs spd: a matrix sampled general never qualifies, and the error names the fix
    assert main(["grad", "tr(chol(X))", "--wrt", "X", "--plain"]) == 2
    err = capsys.readouterr().err
    assert "X is not symmetric (declare it: --let X:symmetric, or X:spd" in err
    assert len(err.strip().splitlines()) == 3 and "Traceback" not in err  # message, source, caret
    assert main(["grad", "tr(chol(X))", "--wrt", "X", "--let", "X:spd", "--plain"]) == 0
