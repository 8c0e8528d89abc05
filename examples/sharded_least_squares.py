"""Past one device: the emitted JAX module under jax.sharding.

A mini-batch ridge loss f(w) = ‖Xw − y‖² + λ‖w‖² over a data matrix X whose rows (the batch
dimension) no longer fit one device. matdiff emits the JAX module (`codegen --target jax`);
the rows of X and y are sharded over a mesh of devices, w and λ are replicated, and
`jax.jit` runs the emitted `f_and_grad` with those shardings: XLA splits Xw and Xᵀ(Xw − y)
across the devices and sums the partial products. The value and the gradient equal the
single-device result; then a few steps of gradient descent run on mini-batches, sharded
the same way.

On a machine without several accelerators, XLA can pretend to have them: this script asks for
4 virtual CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=4) unless XLA_FLAGS
is already set. On GPUs or TPUs, drop that line and the mesh spans the real devices.

Run: python examples/sharded_least_squares.py [--rows 4096] [--features 64] [--steps 20]"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import numpy as np  # noqa: E402

try:
    import jax  # noqa: E402
except ImportError:
    sys.exit('this example needs JAX: pip install "matdiff[jax]"')

import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import matdiff  # noqa: E402

jax.config.update("jax_enable_x64", True)

EXPR = "norm2(X*w - y)^2 + lambda*norm2(w)^2"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=4096, help="rows of X (the batch dimension)")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="gradient steps on mini-batches")
    p.add_argument("--batch", type=int, default=1024, help="rows per mini-batch")
    args = p.parse_args(argv)

    result = matdiff.grad(EXPR, "w")
    mod = result.compile("jax")  # the module of `matdiff codegen EXPR --wrt w --target jax`
    report = result.verify(target="jax")  # what `codegen --target jax --verify` runs
    print(f"emitted JAX f and ∂f/∂w checked against central finite differences "
          f"(max relative error {report.max_error:.1e})")
    if not report.ok:
        print(report.text)
        return 1
    devices = jax.devices()
    print(f"{len(devices)} devices: {', '.join(str(d) for d in devices)}")
    if args.rows % len(devices) or args.batch % len(devices):
        sys.exit(f"--rows and --batch must be multiples of the device count {len(devices)}")

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, args.features))
    w_true = rng.standard_normal(args.features)
    y = X @ w_true + 0.1 * rng.standard_normal(args.rows)
    w0 = np.zeros(args.features)
    lam = 0.5

    # the mesh: one axis, "batch", over every device; rows of X and y split along it
    mesh = Mesh(np.array(devices), ("batch",))
    rows = NamedSharding(mesh, P("batch"))
    rows_2d = NamedSharding(mesh, P("batch", None))
    replicated = NamedSharding(mesh, P())

    def loss_and_grad(X, y, w, lam):
        value, grads = mod.f_and_grad(X=X, y=y, w=w, **{"lambda": lam})
        return value, grads["w"]

    sharded = jax.jit(loss_and_grad, in_shardings=(rows_2d, rows, replicated, replicated),
                      out_shardings=(replicated, replicated))
    single = jax.jit(loss_and_grad)

    Xs, ys = jax.device_put(X, rows_2d), jax.device_put(y, rows)
    print(f"X {X.shape} sharded by rows: {len(Xs.addressable_shards)} shards of "
          f"{Xs.addressable_shards[0].data.shape}")
    value_s, grad_s = sharded(Xs, ys, jnp.asarray(w0), jnp.asarray(lam))
    value_1, grad_1 = single(jax.device_put(X, devices[0]), jax.device_put(y, devices[0]),
                             jnp.asarray(w0), jnp.asarray(lam))
    g_s, g_1 = np.asarray(grad_s), np.asarray(grad_1)  # gathered to the host
    value_err = abs(float(value_s) - float(value_1)) / abs(float(value_1))
    grad_err = float(np.max(np.abs(g_s - g_1)) / np.max(np.abs(g_1)))
    print(f"sharded f = {float(value_s):.10g}, single device f = {float(value_1):.10g}")
    print(f"relative difference: f {value_err:.1e}, gradient {grad_err:.1e}")
    same = value_err < 1e-12 and grad_err < 1e-12
    print("sharded equals single device" if same else "MISMATCH between sharded and single")

    # gradient descent on mini-batches, each batch sharded by rows
    w = jnp.asarray(w0)
    step = 0.5 / (args.batch * np.linalg.norm(X[: args.batch], 2) ** 2 / args.batch + lam)
    for k in range(args.steps):
        start = (k * args.batch) % args.rows
        xb = jax.device_put(X[start:start + args.batch], rows_2d)
        yb = jax.device_put(y[start:start + args.batch], rows)
        value, g = sharded(xb, yb, w, jnp.asarray(lam))
        w = w - step * g
        if k in (0, args.steps - 1):
            print(f"step {k + 1}: mini-batch loss {float(value):.6g}")
    print(f"distance to the true weights: {float(jnp.linalg.norm(w - w_true)):.3g} "
          f"(start {float(np.linalg.norm(w0 - w_true)):.3g})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
