"""Issue 14: batches and axes. The axis forms sum/mean/softmax/logsumexp(X, d) and size(X, d);
the must-work list (batched softmax regression, a 2-layer MLP with biases, single-head
attention, layer norm, row-wise softmax) against finite differences, hand-written NumPy and,
where installed, JAX and PyTorch autodiff; stability of the emitted code at logits ±1000; the
hand-written log-sum-exp forms; messages; check and --steps."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import matdiff
from matdiff.derive.gradient import derive
from matdiff.errors import MatdiffError
from matdiff.ir import expr as E
from matdiff.language.typecheck import typecheck
from matdiff.printing.text import to_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import batch_problems  # noqa: E402

SOFTMAX_REG = "-sum(Y .* log(softmax(W*X + b*vector(1)', 1)))"
MLP = "-sum(Y .* log(softmax(W2*σ(W1*X + b1*vector(1)') + b2*vector(1)', 1)))"
ATTENTION = "norm2(Wv*X*softmax((Wk*X)'*(Wq*X)/c, 1) - Y)^2"
LAYER_NORM = ("norm2(g .* ((x - mean(x)*vector(1)) ./ sqrt(mean((x - mean(x)*vector(1)).^2) "
              "+ eps)) + b - y)^2")
ROW_SOFTMAX = "sum(log(softmax(A, 2)) .* T)"

MUST_WORK = [
    (SOFTMAX_REG, ["W", "b"], {"b": "vector"}),
    (MLP, ["W1", "b1", "W2", "b2"], {"b1": "vector", "b2": "vector"}),
    (ATTENTION, ["Wq", "Wk", "Wv"], {}),
    (LAYER_NORM, ["x", "g", "b"], {"g": "vector", "b": "vector"}),
    (ROW_SOFTMAX, ["A"], {}),
    ("-sum(Y.*Z) + sum(log(vector(1)'*exp(Z)))", ["Z"], {}),
    ("sum(mean(X, 1)) + y'*mean(X, 2) + mean(X)^2 + mean(x)*logsumexp(X)", ["X", "x"], {}),
    ("sum(logsumexp(Z, 1)) + sum(logsumexp(Z, 2)) + sum(sum(Z, 1)) + x'*sum(Z, 2)",
     ["Z", "x"], {}),
]


def _sizes_env(typed, seed=0, sizes=None):
    rng = np.random.default_rng(seed)
    dims = {}
    counts = iter(sizes or (3, 5, 4, 6, 2, 7))
    env = {}
    for name, v in typed.variables.items():
        shape = []
        for d in v.shape:
            if d is E.ONE:
                continue
            if d not in dims:
                dims[d] = next(counts)
            shape.append(dims[d])
        env[name] = float(rng.uniform(0.5, 1.5)) if not shape else rng.standard_normal(shape)
    return env


def _fd(module, env, name, eps=1e-6):
    x = env[name]
    if isinstance(x, float):
        plus, minus = dict(env, **{name: x + eps}), dict(env, **{name: x - eps})
        return (module.f(**plus) - module.f(**minus)) / (2 * eps)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (module.f(**dict(env, **{name: xp})) - module.f(**dict(env, **{name: xm}))) / (
            2 * eps)
    return g


@pytest.mark.parametrize("text,wrt,lets", MUST_WORK, ids=[m[0][:40] for m in MUST_WORK])
def test_must_work_self_check_and_emitted_code_against_finite_differences(text, wrt, lets):
    result = derive(text, wrt, lets)
    assert result.checked and result.max_error < 1e-6, result.check_reason
    module = matdiff.grad(text, wrt, types=lets).compile()
    env = _sizes_env(result.typed)
    if "eps" in env:
        env["eps"] = 0.1
    f, grads = module.f_and_grad(**env)
    assert np.isfinite(f)
    for name in wrt:
        fd = _fd(module, env, name)
        assert np.allclose(grads[name], fd, rtol=1e-5, atol=1e-6), name


@pytest.mark.parametrize("p", batch_problems.PROBLEMS, ids=lambda p: p.name)
def test_bench_problems_hand_gradients_agree_with_emitted_code(p):
    data = p.gen(8, np.random.default_rng(1))
    module = matdiff.grad(p.expr, p.wrt, types=p.lets).compile()
    f, g = module.f_and_grad(**data)
    hf, hg = p.grad(**data)
    assert abs(f - hf) <= 1e-10 * max(1.0, abs(hf))
    for name in p.wrt:
        assert np.allclose(g[name], hg[name], rtol=1e-9, atol=1e-10), name
    forward = p.forward(batch_problems_numpy_ops(), **data)
    assert abs(forward - hf) <= 1e-10 * max(1.0, abs(hf))


def batch_problems_numpy_ops():
    class Ops:
        xp = np
        exp = staticmethod(np.exp)
        log = staticmethod(np.log)

        @staticmethod
        def sum(x, axis=None):
            return np.sum(x, axis=axis)

        @staticmethod
        def sigmoid(x):
            return 1.0 / (1.0 + np.exp(-x))

        @staticmethod
        def logsumexp(z, axis=None):
            m = np.max(z, axis=axis, keepdims=True)
            out = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
            return out.squeeze() if axis is None else out.squeeze(axis)

    return Ops


# ---------------------------------------------------------------- autodiff frameworks


def _torch_available():
    return importlib.util.find_spec("torch") is not None


def _jax_available():
    return importlib.util.find_spec("jax") is not None


@pytest.mark.skipif(not _torch_available(), reason="PyTorch not installed")
@pytest.mark.parametrize("p", batch_problems.PROBLEMS[::2] + batch_problems.PROBLEMS[3:],
                         ids=lambda p: p.name)
def test_against_pytorch_autograd(p):
    import torch

    class Ops:
        xp = torch
        exp = staticmethod(torch.exp)
        log = staticmethod(torch.log)

        @staticmethod
        def sum(x, axis=None):
            return torch.sum(x) if axis is None else torch.sum(x, dim=axis)

        sigmoid = staticmethod(torch.sigmoid)

        @staticmethod
        def logsumexp(z, axis=None):
            return torch.logsumexp(z, dim=axis if axis is not None else tuple(range(z.ndim)))

    data = p.gen(8, np.random.default_rng(2))
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in p.wrt)
              for k, v in data.items()}
    value = p.forward(Ops, **leaves)
    value.backward()
    module = matdiff.grad(p.expr, p.wrt, types=p.lets).compile()
    f, g = module.f_and_grad(**data)
    assert abs(f - value.item()) <= 1e-10 * max(1.0, abs(f))
    for name in p.wrt:
        assert np.allclose(g[name], leaves[name].grad.numpy(), rtol=1e-9, atol=1e-10), name


@pytest.mark.skipif(not _jax_available(), reason="JAX not installed")
def test_softmax_regression_against_jax_grad():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    p = batch_problems.PROBLEMS[0]
    data = p.gen(8, np.random.default_rng(3))

    def loss(W, b):
        Z = W @ data["X"] + b[:, None]
        return -jnp.sum(data["Y"] * jax.nn.log_softmax(Z, axis=0))

    gW, gb = jax.grad(loss, argnums=(0, 1))(data["W"], data["b"])
    module = matdiff.grad(p.expr, p.wrt, types=p.lets).compile()
    _, g = module.f_and_grad(**data)
    assert np.allclose(g["W"], np.asarray(gW), rtol=1e-9, atol=1e-12)
    assert np.allclose(g["b"], np.asarray(gb), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- stability


@pytest.mark.parametrize("text", [SOFTMAX_REG, "-sum(Y.*(W*X + b*vector(1)')) + "
                                  "sum(log(vector(1)'*exp(W*X + b*vector(1)')))"])
def test_emitted_code_is_finite_at_logits_around_1000(text):
    module = matdiff.grad(text, ["W", "b"], types={"b": "vector"}).compile()
    rng = np.random.default_rng(4)
    k, p, n = 5, 4, 9
    W = rng.standard_normal((k, p)) * 300
    b = rng.choice([-1000.0, 1000.0], size=k)
    X = rng.standard_normal((p, n))
    Y = np.eye(k)[:, rng.integers(0, k, n)]
    f, g = module.f_and_grad(W=W, b=b, X=X, Y=Y)
    assert np.isfinite(f) and f > 100  # the logits are far apart: a large, finite loss
    assert np.all(np.isfinite(g["W"])) and np.all(np.isfinite(g["b"]))
    Z = W @ X + b[:, None]
    m = Z.max(axis=0)
    expected = np.sum(np.log(np.exp(Z - m).sum(axis=0)) + m) - np.sum(Y * Z)
    assert abs(f - expected) <= 1e-9 * abs(expected)


def test_hand_written_forms_are_read_as_the_stable_operators():
    assert to_text(typecheck("log(vector(1)'*exp(Z))").root) == "logsumexp(Z, 1)"
    assert to_text(typecheck("log(exp(Z)*vector(1))").root) == "logsumexp(Z, 2)"
    assert to_text(typecheck("log(sum(exp(z)))").root) == "logsumexp(z)"
    assert to_text(typecheck("y'*(exp(z)/sum(exp(z)))").root) == "y'*softmax(z)"
    assert typecheck("log(softmax(Z, 1))").root.op == "log_softmax_axis"
    source = matdiff.grad("log(sum(exp(z)))", ["z"]).numpy_source()
    assert "_logsumexp(" in source


# ---------------------------------------------------------------- meanings and shapes


def _value(text, env):
    typed = typecheck(text)
    module_env = {k: (np.atleast_2d(v).T if np.ndim(v) == 1 else np.atleast_2d(v))
                  for k, v in env.items()}
    from matdiff.oracles.numeric import dim_sizes, evaluate

    sizes = {}
    for name, v in typed.variables.items():
        for d, s in zip(v.shape, module_env[name].shape):
            if d is not E.ONE:
                sizes[d] = s
    sizes.update({d: s for d, s in dim_sizes(typed.variables, typed.root).items()
                  if d not in sizes})
    return evaluate(typed.root, module_env, sizes)


def test_axis_forms_mean_what_matlab_means():
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((3, 4))
    x = rng.standard_normal(3)
    env = {"Z": Z, "x": x}
    from scipy.special import logsumexp, softmax

    assert np.allclose(_value("sum(Z, 1)", env), Z.sum(axis=0, keepdims=True))
    assert np.allclose(_value("sum(Z, 2)", env), Z.sum(axis=1, keepdims=True))
    assert np.allclose(_value("mean(Z, 1)", env), Z.mean(axis=0, keepdims=True))
    assert np.allclose(_value("mean(Z, 2)", env), Z.mean(axis=1, keepdims=True))
    assert np.allclose(_value("mean(Z)", env), Z.mean())
    assert np.allclose(_value("mean(x)", env), x.mean())
    assert np.allclose(_value("softmax(Z, 1)", env), softmax(Z, axis=0))
    assert np.allclose(_value("softmax(Z, 2)", env), softmax(Z, axis=1))
    assert np.allclose(_value("logsumexp(Z, 1)", env), logsumexp(Z, axis=0)[None, :])
    assert np.allclose(_value("logsumexp(Z, 2)", env), logsumexp(Z, axis=1)[:, None])
    # logsumexp(Z) of a matrix keeps its meaning: all entries
    assert np.allclose(_value("logsumexp(Z)", env), logsumexp(Z))
    assert np.allclose(_value("size(Z, 1)*size(Z, 2)", env), 12)
    # vectors reduce to what the language already had
    assert to_text(typecheck("softmax(x, 1)").root) == "softmax(x)"
    assert to_text(typecheck("sum(x, 1)").root) == "sum(x)"
    assert to_text(typecheck("logsumexp(x, 2)").root) == "x"


def test_evaluators_agree_on_the_axis_operators():
    from matdiff.oracles import precise
    from matdiff.oracles.numeric import evaluate, find_point

    for text in ["sum(softmax(Z, 1) .* Y) + sum(softmax(Z, 2) .* Y)",
                 "sum(log(softmax(Z, 2)) .* Y) + sum(log(softmax(Z, 1)))",
                 "sum(logsumexp(Z, 1)) + sum(logsumexp(Z, 2)) + mean(Z)",
                 "sum(mean(Z, 1)) * sum(mean(Z, 2)) / size(Z, 2)"]:
        typed = typecheck(text)
        found = find_point([typed.root], typed.variables, np.random.default_rng(0))
        env, sizes = found.point.env, found.point.sizes
        a = evaluate(typed.root, env, sizes)[0, 0]
        b = float(precise.evaluate(typed.root, env, sizes)[0, 0])
        assert abs(a - b) <= 1e-12 * max(1.0, abs(b)), text


def test_exact_evaluation_of_the_axis_operators():
    import sympy

    from matdiff.ops import rule

    Z = sympy.Matrix([[1, 2], [0, 3]])
    node = typecheck("softmax(Z, 1)").root
    s = rule("softmax_axis", "exact")(sympy, node, [Z], None)
    assert sympy.simplify(sum(s[:, 0]) - 1) == 0 and sympy.simplify(sum(s[:, 1]) - 1) == 0
    node = typecheck("logsumexp(Z, 2)").root
    value = rule("logsumexp_axis", "exact")(sympy, node, [Z], None)
    assert sympy.simplify(value[0, 0] - sympy.log(sympy.E + sympy.E ** 2)) == 0


# ---------------------------------------------------------------- printing and reading back


def test_batch_gradients_read_like_the_textbook():
    from matdiff.present.report import shared_intermediates

    d = derive(MLP, ["W1", "b1", "W2", "b2"], {"b1": "vector", "b2": "vector"})
    named = {to_text(x.node): x.name for x in shared_intermediates(
        [d.f] + [d.gradients[w] for w in d.wrt], d.adjoints)}
    assert named.get("W1*X + b1*vector(1)'") == "a1"
    assert named.get("W2*sigmoid(a1) + b2*vector(1)'") == "a2" or \
        "a2" in named.values()
    assert any(name.startswith("∂f/∂a") for name in named.values())


@pytest.mark.parametrize("text,wrt,lets", MUST_WORK[:5], ids=[m[0][:30] for m in MUST_WORK[:5]])
def test_printed_gradients_read_back_through_check(text, wrt, lets):
    d = derive(text, wrt, lets)
    for name in wrt:
        verdict = matdiff.check(text, name, to_text(d.gradients[name]), types=lets)
        assert verdict.correct, (name, verdict)


def test_latex_output_reads_back():
    from matdiff.printing.latex import to_latex

    for text in ["softmax(Z, 1)", "logsumexp(Z, 2)", "mean(Z, 1)", "mean(x)", "size(Z, 2)",
                 "log(softmax(Z, 2))"]:
        node = typecheck(text).root
        assert typecheck(to_latex(node)).root is node, text


def test_check_diagnoses_a_batch_claim():
    assert not matdiff.check(SOFTMAX_REG, "W", "(softmax(W*X + b*vector(1)', 1) - Y)",
                             types={"b": "vector"}).correct
    assert matdiff.check(SOFTMAX_REG, "b",
                         "(matrix(1)*Y.*softmax(W*X + b*vector(1)', 1) - Y)*vector(1)",
                         types={"b": "vector"}).correct


# ---------------------------------------------------------------- messages


def _error(text, types=None) -> MatdiffError:
    with pytest.raises(MatdiffError) as info:
        typecheck(text, types)
    return info.value


def test_softmax_of_a_matrix_without_d_says_how():
    e = _error("softmax(Z)")
    assert "softmax(Z, 1)" in e.hint and "softmax(Z, 2)" in e.hint


def test_broadcasting_a_bias_says_how():
    e = _error("W*X + b", {"b": "vector"})
    assert e.hint == ("b is a vector and W*X a matrix; to add b to every column write "
                      "b*vector(1)'")


@pytest.mark.parametrize("text", ["sum(X, 3)", "sum(X, d)", "softmax(Z, 0)", "mean(X, 1.5)"])
def test_a_dimension_is_1_or_2(text):
    assert "must be the number 1 (down the columns) or 2 (along the rows)" in _error(text).message


def test_mean_is_a_function_now():
    assert typecheck("mean(x)").root.op == "mean"
    assert "size(X, 1)" in _error("size(X)").message


def test_steps_name_the_axis_rules(capsys):
    from matdiff.cli import main

    code = main(["grad", SOFTMAX_REG, "--wrt", "W", "--let", "b:vector", "--steps",
                 "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    rules = " ".join(s["rule"] for s in out["steps"])
    assert "log softmax(Z, 1) = Z − 1·logsumexp(Z, 1)" in rules
    code = main(["grad", "logsumexp(X)", "--wrt", "X", "--steps"])
    assert "runs over all its entries" in capsys.readouterr().out
