"""The emitted NumPy module's fast path (issue 18): the one-expression argument check must
accept exactly what the per-argument checks of _inputs accept, and the faster helpers (expit,
log1p(exp), the in-place Cholesky inverse, reductions as methods) must give the same numbers
as the plain formulas, without warnings, at every size."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import matdiff
from matdiff.codegen.module import numpy_module
from matdiff.derive.gradient import derive

RNG = np.random.default_rng(18)


def _compiled(expr, wrt, types=None):
    return matdiff.grad(expr, wrt, types).compile()


def _functions(mod, wrt):
    return [mod.f, mod.f_and_grad] + [getattr(mod, f"grad_{w}") for w in wrt]


@pytest.fixture(scope="module")
def traced():
    return _compiled("tr(A*X*B)", ["X"])


def test_keyword_only_parameters_where_python_can_spell_every_name(traced):
    source = matdiff.grad("tr(A*X*B)", "X").numpy_source()
    assert "def f_and_grad(*, A, X, B):" in source and "def f(*, A, X, B):" in source
    kept = matdiff.grad("lambda*x'*x", "x").numpy_source()
    assert "def f_and_grad(**vars):" in kept  # lambda cannot be a parameter


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix, on purpose
def test_inputs_the_fast_path_declines_are_converted_as_before(traced):
    a, x, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2))
    expected = float(np.trace(a @ x @ b))
    variants = [
        dict(A=a.tolist(), X=x, B=b),  # a list
        dict(A=a.astype(np.float32).astype(np.float64), X=x.astype(np.float32), B=b),
        dict(A=np.asmatrix(a), X=x, B=b),  # an ndarray subclass
        dict(A=np.asfortranarray(a), X=x[:, ::1], B=b.T.copy().T),
        dict(A=(a > 0), X=x, B=b),  # booleans are numbers
    ]
    for args in variants:
        want = float(np.trace(np.asarray(args["A"], float) @ np.asarray(args["X"], float) @ b))
        for fn in _functions(traced, ["X"]):
            out = fn(**args)
            value = out[0] if isinstance(out, tuple) else out
            if fn is traced.f or fn is traced.f_and_grad:
                assert value == pytest.approx(want, rel=1e-6), (fn.__name__, args)
    assert traced.f(A=a, X=x, B=b) == pytest.approx(expected)
    g = traced.f_and_grad(A=np.asmatrix(a), X=x, B=b)[1]["X"]
    assert type(g) is np.ndarray and np.allclose(g, a.T @ b.T)


@pytest.mark.parametrize("args, error, words", [
    (dict(A=np.ones(3), X=np.ones((3, 4)), B=np.ones((4, 2))), ValueError, "A must be a matrix"),
    (dict(A=np.ones((2, 3)), X=np.ones((5, 4)), B=np.ones((4, 2))), ValueError, "X is 5×4"),
    (dict(A=np.ones((2, 3)), X=np.ones((3, 4)), B=np.ones((4, 3))), ValueError, "B is 4×3"),
    (dict(A=np.ones((0, 3)), X=np.ones((3, 4)), B=np.ones((4, 0))), ValueError, "empty"),
    (dict(A=np.ones((2, 3)) + 0j, X=np.ones((3, 4)), B=np.ones((4, 2))), TypeError, "complex"),
    (dict(A=np.array([["a"] * 3] * 2), X=np.ones((3, 4)), B=np.ones((4, 2))), TypeError,
     "real numbers"),
    (dict(A=np.ones((2, 3)), X=np.ones((3, 4))), TypeError, "B"),
    (dict(A=np.ones((2, 3)), X=np.ones((3, 4)), B=np.ones((4, 2)), C=1.0), TypeError, "C"),
])
def test_every_function_names_the_bad_argument(traced, args, error, words):
    for fn in _functions(traced, ["X"]):
        with pytest.raises(error, match=words):
            fn(**args)


def test_scalars_of_every_numeric_type_are_accepted():
    mod = _compiled("lam*norm2(x)^2", ["x", "lam"], {"lam": "scalar"})
    x = np.array([1.0, 2.0])
    for lam in (2, 2.0, np.float64(2.0), np.int32(2), np.array(2.0)):
        value, grads = mod.f_and_grad(lam=lam, x=x)
        assert value == 10.0 and type(value) is float
        assert type(grads["lam"]) is float and grads["lam"] == 5.0
    with pytest.raises(TypeError, match="lam must be a real number"):
        mod.f(lam=np.ones(2), x=x)


@pytest.mark.parametrize("n", [5, 200])  # entry by entry, and the probe vector
def test_the_symmetry_check_runs_on_the_fast_path(n):
    # a factorizing module (its probe goes through SciPy's BLAS) and one that does not
    for expr in ("logdet(S) + tr(inv(S)*C)", "tr(S*C)"):
        mod = _compiled(expr, ["S"], {"S": "spd", "C": "symmetric"})
        q = RNG.standard_normal((n, n))
        s, c = q @ q.T + n * np.eye(n), q + q.T
        mod.f_and_grad(S=s, C=c)  # symmetric: accepted
        bad = c.copy()
        bad[1, 3] += 1.0
        for args in (dict(S=s, C=bad), dict(S=s.tolist(), C=bad.tolist())):
            with pytest.raises(ValueError, match="C must be a symmetric matrix"):
                mod.f_and_grad(**args)


@pytest.mark.parametrize("n", [3, 255, 256, 257, 600])
def test_the_cholesky_inverse_fills_both_triangles(n):
    mod = _compiled("log(det(X))", ["X"], {"X": "spd"})
    q = RNG.standard_normal((n, n))
    x = q @ q.T / n + np.eye(n)
    value, grads = mod.f_and_grad(X=x)
    assert value == pytest.approx(np.linalg.slogdet(x)[1], rel=1e-10)
    inv = np.linalg.inv(x)
    assert np.abs(grads["X"] - inv).max() <= 1e-10 * np.abs(inv).max()
    assert np.array_equal(grads["X"], grads["X"].T)


@pytest.mark.parametrize("size", [4, 699, 700, 5000])
def test_sigmoid_and_softplus_are_exact_and_quiet_at_every_size(size):
    mod = _compiled("sum(log(vector(1) + exp(-y .* (X*w))))", ["w"])
    z = np.linspace(-800.0, 800.0, size)
    z[: size // 2] = np.linspace(-800.0, 0.0, size // 2)  # far tails both ways
    x = np.ones((size, 1))
    y = -z  # then -y .* (X*w) = z for w = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grads = mod.f_and_grad(X=x, w=np.array([1.0]), y=y)
    softplus = np.logaddexp(0.0, z)
    assert value == pytest.approx(softplus.sum(), rel=1e-12)
    sigma = 0.5 * (1.0 + np.tanh(z / 2))  # σ(z), computed another way
    assert grads["w"][0] == pytest.approx(np.dot(-y, sigma), rel=1e-9)

    mlp = _compiled("sum(sigmoid(x))", ["x"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = mlp.f(x=z)
    assert value == pytest.approx(sigma.sum(), rel=1e-12)


def test_a_scalar_argument_of_sigmoid_and_softplus():
    mod = _compiled("sigmoid(a) + log(1 + exp(a))", ["a"], {"a": "scalar"})
    for a in (-800.0, -3.0, 0.0, 2.5, 800.0):
        value, grads = mod.f_and_grad(a=a)
        assert value == pytest.approx(0.5 * (1 + np.tanh(a / 2)) + np.logaddexp(0.0, a))


def test_the_two_strategies_for_constant_factors_share_one_scaling():
    expr = "norm2(W4*tanh(W3*tanh(W2*tanh(W1*X))) - Y)^2"
    source = numpy_module(derive(expr, ["W1", "W2", "W3", "W4"]))
    body = source.split("def f_and_grad(")[1]
    assert body.count("2.0 *") == 1, body  # 2·(W₄h₃ − Y) once, shared by all four


def test_softplus_and_sigmoid_of_one_argument_share_one_exponential():
    source = matdiff.grad("sum(log(vector(1) + exp(-y .* (X*w))))", "w").numpy_source()
    body = source.split("def f_and_grad(")[1]
    assert body.count("_softplus_sigmoid(") == 1 and "np.exp(" not in body, body
    assert "logaddexp" not in body


def test_a_difference_and_its_negative_are_one_subtraction():
    source = matdiff.grad("norm2(X - U*V')^2", ["U", "V"]).numpy_source()
    body = source.split("def f_and_grad(")[1].split("_inputs(")[-1]
    assert body.count(" - ") + body.count(" + ") == 1, body  # X − UVᵀ once, not UVᵀ − X too
    mod = matdiff.grad("norm2(X - U*V')^2", ["U", "V"]).compile()
    x, u, v = RNG.standard_normal((6, 4)), RNG.standard_normal((6, 2)), RNG.standard_normal((4, 2))
    value, grads = mod.f_and_grad(X=x, U=u, V=v)
    r = x - u @ v.T
    assert value == pytest.approx(np.sum(r * r))
    assert np.allclose(grads["U"], -2 * r @ v) and np.allclose(grads["V"], -2 * r.T @ u)


@pytest.mark.parametrize("expr, value", [
    ("(x - y + x)'*tanh(y - x)", lambda x, y: (2 * x - y) @ np.tanh(y - x)),
    ("(x + x - y)'*(y - x)", lambda x, y: (2 * x - y) @ (y - x)),
    ("sum(x + x - y)*sum(y - x)", lambda x, y: np.sum(2 * x - y) * np.sum(y - x)),
    ("(x - y)'*(y - x) + sum(x - y + x - y)", lambda x, y: -(x - y) @ (x - y) + 2 * np.sum(x - y)),
])
def test_a_repeated_term_is_not_a_negated_difference(expr, value):
    # x − y + x has the terms x, −y, x: its negative is not y − x (a reviewer's reproducer)
    mod = _compiled(expr, ["x"], {"y": "vector"})
    x, y = np.array([1.0, 2.0, -0.5]), np.array([0.0, 1.0, 0.25])
    got, grads = mod.f_and_grad(x=x, y=y)
    assert got == pytest.approx(value(x, y), rel=1e-12)
    h, fd = 1e-6, np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        fd[i] = (value(x + e, y) - value(x - e, y)) / (2 * h)
    assert np.allclose(grads["x"], fd, rtol=1e-6, atol=1e-8)


def test_a_kronecker_size_is_checked_against_its_factors():
    # X is n·q × m·p: read off X alone, those sizes used to go unchecked (a raw NumPy error)
    mod = _compiled("tr(kron(A,B)*X)", ["X"])
    a, b = np.ones((2, 3)), np.ones((4, 5))
    assert mod.f(A=a, B=b, X=np.ones((15, 8))) == 120.0
    for x in (np.ones((14, 8)), np.ones((15, 9)), np.ones((8, 15))):
        for fn in _functions(mod, ["X"]):
            with pytest.raises(ValueError, match=r"X must have shape \(n·q, m·p\) = \(15, 8\)"):
                fn(A=a, B=b, X=x)


def _cross_entropy(W, x, y):
    z = W @ x
    top = z.max()
    lse = top + np.log(np.exp(z - top).sum())
    return -y @ (z - lse), np.outer(y.sum() * np.exp(z - lse) - y, x)


def test_cross_entropy_forms_no_log_softmax_vector_and_sums_the_labels_once():
    source = matdiff.grad("-y'*log(softmax(W*x))", "W").numpy_source()
    body = source.split("def f_and_grad(")[1]
    # −yᵀlog softmax(z) = Σy·logsumexp(z) − yᵀz: no z − logsumexp(z), one Σy for f and ∇f
    assert body.count("y.sum()") == 1 and body.count("W @ x") == 1, body
    assert "y.dot(a1)" in body and "_log_softmax" not in body, body


@pytest.mark.parametrize("spread", [1.0, 50.0, 800.0])
def test_cross_entropy_is_exact_with_soft_labels_and_underflowing_softmax(spread):
    mod = _compiled("-y'*log(softmax(W*x))", ["W"])
    m, n = 7, 5
    W = RNG.standard_normal((m, n)) * spread
    x = RNG.standard_normal(n)
    y = RNG.random(m)
    y[::3] = 0.0  # labels 0 where softmax may underflow to 0: no 0·(−inf) anywhere
    want_f, want_g = _cross_entropy(W, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f, grad in ((mod.f(W=W, x=x, y=y), None), mod.f_and_grad(W=W, x=x, y=y)):
            assert np.isfinite(f)
            assert abs(f - want_f) <= 1e-12 * max(1.0, abs(want_f))
            if grad is not None:
                assert np.allclose(grad["W"], want_g, rtol=1e-12, atol=1e-14)
    # a positive multiple keeps its sign: a·yᵀlog softmax(Wx), with ∂/∂a
    value, grads = _compiled("a*(y'*log(softmax(W*x)))", ["W", "a"]).f_and_grad(
        a=2.5, W=W, x=x, y=y)
    assert abs(value - (-2.5 * want_f)) <= 1e-12 * max(1.0, abs(want_f))
    assert abs(grads["a"] + want_f) <= 1e-12 * max(1.0, abs(want_f))
    assert np.allclose(grads["W"], -2.5 * want_g, rtol=1e-12, atol=1e-13)
