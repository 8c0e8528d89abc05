"""codegen --target jax (issue 16): the emitted JAX module traced (make_jaxpr: no host
callbacks, one shared factorization), under jit and vmap, in float32; f_custom (custom_vjp with
matdiff's gradient) checked with jax.test_util.check_grads and refused for arguments that were
not derived; the sharded example on four virtual CPU devices. Skips, with the reason, when JAX
is not installed (CI installs it and sets MATDIFF_REQUIRE_FRAMEWORKS, so nothing skips there)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from matdiff.codegen import module_source, numpy_module
from matdiff.codegen.verify import import_source
from matdiff.derive.gradient import derive
from tests.test_backends import ROOT, _have, _np, _point, _rel, _to, needs_jax

pytestmark = needs_jax


@pytest.fixture
def x64():
    """jax_enable_x64 for one test (and back)."""
    import jax

    with jax.enable_x64(True):
        yield jax


# ---------------------------------------------------------------- JAX


def test_jax_jit_vmap_and_float32():
    import jax
    import jax.numpy as jnp

    d = derive("-y'*log(softmax(W*x)) + lambda*norm2(W)^2", ["W", "lambda"])
    mod = import_source(module_source(d, [], "jax"))
    args = _point(d)
    ref_value, ref = import_source(numpy_module(d)).f_and_grad(**args)
    # float32 (the default without jax_enable_x64): float32 out, close to float64
    value, grads = jax.jit(mod.f_and_grad)(**_to("jax", args, "float32"))
    assert grads["W"].dtype == jnp.float32 and value.dtype == jnp.float32
    assert _rel(value, ref_value) < 1e-4 and _rel(grads["W"], ref["W"]) < 1e-4
    # vmap over a batch of x: each equals its own call
    xs = np.stack([args["x"], 2 * args["x"], -args["x"]])
    given = _to("jax", {k: v for k, v in args.items() if k != "x"}, "float32")

    def one(x):
        return mod.f_and_grad(x=x, **given)
    values, batched = jax.jit(jax.vmap(one))(jnp.asarray(xs, dtype=jnp.float32))
    for k in range(3):
        v, g = import_source(numpy_module(d)).f_and_grad(**{**args, "x": xs[k]})
        assert _rel(values[k], v) < 1e-4 and _rel(batched["W"][k], g["W"]) < 1e-4


def test_jax_module_is_traceable_no_numpy_on_traced_values(x64):
    """jax.make_jaxpr traces every function: a float() of a traced value, an in-place write
    or a NumPy call on a tracer would raise here."""
    import jax

    d = derive("logdet(S) + tr(inv(S)*C) + u'*inv(X)*v + det(X)", ["S", "X"],
               {"S": "spd"})
    src = module_source(d, [], "jax")
    assert "jsla.cho_factor(" in src and "jsla.cho_solve(" in src
    assert "jsla.lu_solve(" in src and "_lu(" in src and "jnp.linalg.inv" not in src
    mod = import_source(src)
    given = _to("jax", _point(d))
    for name in ("f", "grad_S", "grad_X", "f_and_grad", "f_custom"):
        fn = getattr(mod, name)
        jaxpr = str(jax.make_jaxpr(lambda fn=fn, **kw: fn(**kw))(**given))
        assert "callback" not in jaxpr  # nothing runs on the host
        if name in ("f", "f_and_grad"):  # one factorization each, shared
            assert jaxpr.count("name=_cholesky") == 1 and jaxpr.count("name=lu_factor") == 1
    value, grads = jax.jit(mod.f_and_grad)(**given)
    ref_value, ref = import_source(numpy_module(d)).f_and_grad(**_point(d))
    assert _rel(value, ref_value) < 1e-12 and _rel(grads["X"], ref["X"]) < 1e-12


def test_jax_custom_vjp_with_check_grads(x64):
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    d = derive("norm2(W2*tanh(W1*x) - y)^2", ["W1", "W2"])
    mod = import_source(module_source(d, [], "jax"))
    args = _to("jax", _point(d))
    ref = import_source(numpy_module(d)).grad_W1(**{k: np.asarray(v) for k, v in args.items()})

    def loss(W1, W2):  # a larger model around f: jax.grad goes through matdiff's rule
        return 3.0 * mod.f_custom(W1=W1, W2=W2, x=args["x"], y=args["y"]) + jnp.sum(W1)
    check_grads(loss, (args["W1"], args["W2"]), order=1, modes=["rev"])
    g1 = jax.jit(jax.grad(loss))(args["W1"], args["W2"])
    assert _rel(g1, 3.0 * ref + 1.0) < 1e-10
    # x was not derived: differentiating with respect to it is refused, not silently zero
    with pytest.raises(TypeError, match="only with respect to W2, W1"):
        jax.grad(lambda x: mod.f_custom(W1=args["W1"], W2=args["W2"], x=x, y=args["y"]))(
            args["x"])


def test_jax_custom_vjp_uses_matdiffs_rule_not_autodiff(x64):
    """For an spd S the backward rule is matdiff's symmetric gradient, which autodiff
    through a Cholesky factor (reading one triangle) does not give."""
    import jax

    d = derive("logdet(S) + tr(inv(S)*C)", ["S"], {"S": "spd"})
    mod = import_source(module_source(d, [], "jax"))
    args = _to("jax", _point(d))
    custom = jax.grad(lambda S: mod.f_custom(S=S, C=args["C"]))(args["S"])
    assert _rel(custom, mod.grad_S(**args)) < 1e-12
    assert np.allclose(_np(custom), _np(custom).T)


def test_sharded_example_on_four_virtual_cpu_devices():
    if not _have("jax"):
        pytest.skip('JAX is not installed (pip install "matdiff[jax]")')
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "sharded_least_squares.py"),
                           "--rows", "512", "--batch", "128", "--steps", "5"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 devices" in proc.stdout and "4 shards of (128, 64)" in proc.stdout
    assert "sharded equals single device" in proc.stdout


