"""Batched code at hand-written speed, and the axis operators on every target (P14).

The NumPy code of the batch problems (bench/batch_problems.py) has the hand-written form:
one pass of exponentials for softmax and log-softmax of the same logits, biases added as
broadcasts (b[:, None]) rather than outer products, 1ᵀY as a column sum, (G)1 as one row
sum of G, sum(Y ⊙ L) as one dot product, and f and the gradients share the forward pass
(the attention's (WₖX)ᵀWqX is one product in both). The axis operators lower to JAX and
PyTorch, verified against central differences and the hand-written gradients."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import matdiff

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import batch_problems  # noqa: E402

from tests.test_batches import MUST_WORK  # noqa: E402

TARGETS = ["numpy"] + [t for t, mod in (("jax", "jax"), ("torch", "torch"))
                       if importlib.util.find_spec(mod) is not None]
PROBLEMS = {p.name: p for p in batch_problems.PROBLEMS}


def _result(expr, wrt, lets):
    return matdiff.grad(expr, wrt, types=dict(lets))


def _body(source: str) -> str:
    """The statements of f_and_grad after the argument checks."""
    text = source.split("def f_and_grad(", 1)[1]
    return "\n".join(ln for ln in text.splitlines()
                     if re.match(r"    [a-z_][a-z0-9_, ]* = ", ln) and "vars[" not in ln
                     and ".shape[" not in ln)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", range(len(MUST_WORK)))
def test_must_work_verifies_on_every_target(case, target):
    expr, wrt, lets = MUST_WORK[case]
    report = _result(expr, wrt, lets).verify(target=target)
    assert report.ok, report.text


def _to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _inputs(target, data):
    if target == "torch":
        import torch
        return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in data.items()}
    if target == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        return {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in data.items()}
    return data


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_batch_problems_match_the_hand_gradients(name, target):
    p = PROBLEMS[name]
    data = p.gen(16, np.random.default_rng(3))
    mod = _result(p.expr, p.wrt, p.lets).compile(target)
    f, g = mod.f_and_grad(**_inputs(target, data))
    hf, hg = p.grad(**data)
    assert abs(float(f) - hf) <= 1e-10 * max(1.0, abs(hf))
    for w in p.wrt:
        np.testing.assert_allclose(_to_numpy(g[w]), hg[w], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("target", TARGETS)
def test_logits_of_a_thousand_stay_finite(target):
    p = PROBLEMS["softmax_reg_N256"]
    data = p.gen(16, np.random.default_rng(5))
    data["W"] = data["W"] * 4000.0  # logits of order ±1000
    mod = _result(p.expr, p.wrt, p.lets).compile(target)
    f, g = mod.f_and_grad(**_inputs(target, data))
    hf, hg = p.grad(**data)
    assert np.isfinite(float(f)) and abs(float(f) - hf) <= 1e-9 * abs(hf)
    for w in p.wrt:
        assert np.all(np.isfinite(_to_numpy(g[w])))
        np.testing.assert_allclose(_to_numpy(g[w]), hg[w], rtol=1e-9, atol=1e-9)


def test_softmax_regression_is_written_as_by_hand():
    p = PROBLEMS["softmax_reg_N256"]
    body = _body(_result(p.expr, p.wrt, p.lets).source())
    assert "einsum" not in body and "np.ones" not in body, body
    assert body.count("_log_softmax_softmax_axis(") == 1, body  # one pass of exponentials
    assert "_softmax_axis(" not in body.replace("_log_softmax_softmax_axis(", ""), body
    assert "b[:, None]" in body, body  # W X + b 1ᵀ: a broadcast
    assert "Y.sum(0)" in body, body  # 1ᵀY: a column sum
    assert "np.vdot(Y, " in body, body  # sum(Y ⊙ log softmax): one dot product
    assert len(re.findall(r"\.sum\(\d\)", body)) == 2, body  # 1ᵀY and the b gradient G1, once each


def test_mlp_biases_are_broadcasts_and_row_sums():
    p = PROBLEMS["mlp2_bias_N256"]
    body = _body(_result(p.expr, p.wrt, p.lets).source())
    assert "einsum" not in body and "np.ones" not in body, body
    assert "b1[:, None]" in body and "b2[:, None]" in body, body
    assert body.count("_log_softmax_softmax_axis(") == 1, body
    assert len(re.findall(r"t\d+\.sum\(1\)", body)) == 2, body  # ∂f/∂b₁ and ∂f/∂b₂


def test_attention_shares_the_forward_pass():
    p = PROBLEMS["attention_N128"]
    body = _body(_result(p.expr, p.wrt, p.lets).source())
    assert body.count("_softmax_axis(") == 1, body  # f and the gradients: one softmax
    assert "einsum" not in body, body
    assert "[None, :]" in body, body  # S ⊙ (dS − 1·1ᵀ(S ⊙ dS)): a broadcast row


@pytest.mark.parametrize("target", TARGETS)
def test_row_softmax_and_lse_with_softmax_fuse(target):
    # softmax(Z, 2) next to logsumexp(Z, 2): one helper call, on every target
    r = _result("sum(logsumexp(Z, 2)) + sum(softmax(Z, 2) .* T)", ["Z"], {})
    assert r.verify(target=target).ok
    body = _body(r.source(target))
    assert body.count("_logsumexp_softmax_axis(") == 1, body


def test_a_lone_broadcast_is_still_a_matrix():
    # b 1ᵀ returned whole (a gradient) or used by a product stays an outer product
    r = _result("tr(A'*(b*vector(1)'))", ["A"], {"b": "vector"})
    assert r.verify().ok
    mod = r.compile()
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    g = mod.f_and_grad(A=A, b=b)[1]["A"]
    assert g.shape == (3, 4) and np.allclose(g, np.outer(b, np.ones(4)))
