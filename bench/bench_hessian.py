"""Emitted Hessians (hess_x) and Hessian-vector products (hvp_X) against JAX
`jit(hessian)` / `jit(jvp(grad))` on the CPU, float64, n ∈ {64, 256}. PyTorch is compared when
installed (`torch.func.hessian`). Best of 5 interleaved batches.

Run: python bench/bench_hessian.py [--sizes 64 256] [--repeats 20]"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.setrecursionlimit(20000)

from matdiff.codegen import numpy_module  # noqa: E402
from matdiff.codegen.verify import load_module  # noqa: E402
from matdiff.derive.gradient import derive  # noqa: E402
from matdiff.derive.jacobian import hessian_extras  # noqa: E402


def problems(jnp):
    def data_vec(n, rng):
        return {"A": rng.standard_normal((n, n)), "x": rng.standard_normal(n) / np.sqrt(n),
                "y": np.sign(rng.standard_normal(n)), "X": rng.standard_normal((n, n)) / np.sqrt(n)}

    return [
        ("x'Ax", "x'*A*x", "x", lambda A, x, **_: x @ A @ x, ["A", "x"]),
        ("least squares", "norm2(A*x-y)^2", "x", lambda A, x, y, **_: jnp.sum((A @ x - y) ** 2),
         ["A", "x", "y"]),
        ("logistic loss", "sum(log(exp(-y.*(X*x)) + vector(1)))", "x",
         lambda X, x, y, **_: jnp.sum(jnp.logaddexp(0.0, -y * (X @ x))), ["X", "x", "y"]),
        ("logsumexp(Ax)", "logsumexp(A*x)", "x",
         lambda A, x, **_: jnp.log(jnp.sum(jnp.exp(A @ x))), ["A", "x"]),
    ], data_vec


def batch(fn, repeats):
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        print("JAX is not installed (pip install jax): nothing to compare against")
        return
    rng = np.random.default_rng(0)
    probs, data = problems(jnp)
    try:
        import torch
        torch_losses = {
            "x'Ax": lambda A, x, **_: x @ A @ x,
            "least squares": lambda A, x, y, **_: torch.sum((A @ x - y) ** 2),
            "logistic loss": lambda X, x, y, **_: torch.sum(
                torch.nn.functional.softplus(-y * (X @ x))),
            "logsumexp(Ax)": lambda A, x, **_: torch.logsumexp(A @ x, 0),
        }
    except ImportError:
        torch = None
    print("| problem | n | matdiff hess_x (µs) | JAX jit(hessian) (µs) | "
          "PyTorch torch.func.hessian (µs) | matdiff / fastest other |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, expr, wrt, loss, names in probs:
        derivation = derive(expr, [wrt])
        mod = load_module(numpy_module(derivation, hessian_extras(expr, [wrt])))
        for n in args.sizes:
            full = data(n, rng)
            kw = {k: full[k] for k in derivation.typed.variables}
            pos = [jnp.asarray(kw[k]) for k in names]
            index = names.index(wrt)

            def f(*a):
                return loss(**dict(zip(names, a)))
            hess = jax.jit(jax.hessian(f, argnums=index))
            ref = np.asarray(hess(*pos))
            assert np.allclose(mod.hess_x(**kw), ref, rtol=1e-6, atol=1e-8), name

            def ours():
                return mod.hess_x(**kw)

            def theirs():
                return hess(*pos).block_until_ready()
            contenders = {"md": ours, "jax": theirs}
            if torch is not None:
                tkw = {k: torch.tensor(v) for k, v in kw.items()}
                tl = torch_losses[name]

                def torch_hess(tkw=tkw, tl=tl):
                    rest = {k: v for k, v in tkw.items() if k != wrt}
                    return torch.func.hessian(lambda x: tl(x=x, **rest))(tkw[wrt])
                assert np.allclose(torch_hess().numpy(), ref, rtol=1e-6, atol=1e-8), name
                contenders["torch"] = torch_hess
            times = {k: [] for k in contenders}
            for _ in range(5):
                for k, fn in contenders.items():
                    times[k].append(batch(fn, args.repeats))
            t = {k: min(v) for k, v in times.items()}
            other = min(v for k, v in t.items() if k != "md")
            tcell = f"{t['torch'] * 1e6:.1f}" if "torch" in t else "—"
            print(f"| {name} | {n} | {t['md'] * 1e6:.1f} | {t['jax'] * 1e6:.1f} | {tcell} | "
                  f"{t['md'] / other:.2f} |", flush=True)

    print()
    print("| problem | n | matdiff hvp_X (µs) | JAX jit(jvp(grad)) (µs) | matdiff / JAX |")
    print("|---|---:|---:|---:|---:|")
    for name, expr, loss in [
        ("logdet(X)", "logdet(X)", lambda X: jnp.linalg.slogdet(X)[1]),
        ("tr(X A Xᵀ)", "tr(X*A*X')", None),
    ]:
        derivation = derive(expr, ["X"])
        mod = load_module(numpy_module(derivation, hessian_extras(expr, ["X"])))
        for n in args.sizes:
            X = rng.standard_normal((n, n)) / np.sqrt(n) + 3 * np.eye(n)
            A = rng.standard_normal((n, n))
            V = rng.standard_normal((n, n))
            kw = {"X": X} if "A" not in derivation.typed.variables else {"X": X, "A": A}
            fn = loss or (lambda X, A=jnp.asarray(A): jnp.trace(X @ A @ X.T))
            hvp = jax.jit(lambda X, V, fn=fn: jax.jvp(jax.grad(fn), (X,), (V,))[1])
            ref = np.asarray(hvp(jnp.asarray(X), jnp.asarray(V)))
            assert np.allclose(mod.hvp_X(V, **kw), ref, rtol=1e-6, atol=1e-8), name
            times = {"md": [], "jax": []}
            jx, jv = jnp.asarray(X), jnp.asarray(V)
            for _ in range(5):
                times["md"].append(batch(lambda: mod.hvp_X(V, **kw), args.repeats))
                times["jax"].append(batch(lambda: hvp(jx, jv).block_until_ready(),
                                          args.repeats))
            a, b = min(times["md"]), min(times["jax"])
            print(f"| {name} | {n} | {a * 1e6:.1f} | {b * 1e6:.1f} | {a / b:.2f} |", flush=True)


if __name__ == "__main__":
    main()
