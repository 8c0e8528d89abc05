"""Emitted `f_and_grad` against hand-written NumPy, each as a ratio to the hand-written
forward pass. One process; the contenders are interleaved, each timed as the best of 5
batches of `--repeats` calls, more for small sizes so that a batch lasts ~5 ms (the minimum
is the stable statistic on a shared 2-core machine; medians drifted by ±30 % between runs).
Each batch starts after a pause and one untimed call (see batch_time). JAX
`jit(value_and_grad)` (float64) is timed when JAX is installed, PyTorch autograd (leaves,
forward, backward) when PyTorch is; both are optional (`pip install jax torch`) and skipped
when absent.

With JAX installed, the emitted JAX module (`codegen --target jax`) runs under
`jax.jit(f_and_grad)` and is compared with `jax.jit(jax.value_and_grad(f))` on the same jax
arrays ("md JAX / JAX"); with PyTorch, the emitted torch module's `f_and_grad` on float64
tensors is compared with autograd on the same tensors (leaves made with requires_grad,
forward, backward: "md torch / autograd"). Both ratios are of the same run; below 1 the
emitted module is faster. "XLA flops md / JAX" is the ratio of the floating-point operations
XLA's cost analysis counts in the two compiled programs: unlike the times it does not depend
on what else the machine is doing. The thread settings are printed first.

The problem sets: `--set core` (the default: the rows below, at --sizes, default 64 256
1024), `--set batch` (bench/batch_problems.py: batched softmax regression, 2-layer MLP with
biases, attention; n is the feature size, the batch is in the name; --sizes default 64 256),
`--set matfun` (bench/matfun_problems.py: log-Euclidean distance and nuclear-norm regression;
each at the n in its name, --sizes ignored), `--set all`. The batch and matfun problems are
written once against an array-API shim (`forward(ops, ...)`), run by NumPy as the hand
forward pass and by JAX and PyTorch as the autodiff peers; their hand f+∇f is the problem's
hand-written `grad`.

Run: python bench/bench_codegen.py [--set core|batch|matfun|all] [--sizes 64 256 1024]
     [--repeats 15] [--problems NAME ...]"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit, logsumexp, softmax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.setrecursionlimit(20000)

import matdiff  # noqa: E402


def spd(n, rng):
    b = rng.standard_normal((n, n))
    return b @ b.T / n + np.eye(n)


def well_conditioned(n, rng):
    return rng.standard_normal((n, n)) / np.sqrt(n) + 3 * np.eye(n)


# name: (expression, wrt, let, data(n, rng) -> dict, hand_f, hand_f_and_grad)
def _least_squares():
    def data(n, rng):
        return {"A": rng.standard_normal((n, n)), "x": rng.standard_normal(n),
                "y": rng.standard_normal(n)}

    def f(A, x, y):
        r = A @ x - y
        return r @ r

    def fg(A, x, y):
        r = A @ x - y
        return r @ r, {"x": 2 * A.T @ r}
    return "norm2(A*x-y)^2", ["x"], {}, data, f, fg


def _ridge():
    def data(n, rng):
        return {"A": rng.standard_normal((n, n)), "x": rng.standard_normal(n),
                "y": rng.standard_normal(n), "lambda": 0.1}

    def f(A, x, y, **k):
        r = A @ x - y
        return r @ r + k["lambda"] * (x @ x)

    def fg(A, x, y, **k):
        r = A @ x - y
        return r @ r + k["lambda"] * (x @ x), {"x": 2 * A.T @ r + 2 * k["lambda"] * x}
    return "norm2(A*x-y)^2 + lambda*norm2(x)^2", ["x"], {}, data, f, fg


def _logistic():
    def data(n, rng):
        return {"X": rng.standard_normal((n, n)), "w": rng.standard_normal(n) / np.sqrt(n),
                "y": np.sign(rng.standard_normal(n))}

    def f(X, w, y):
        return np.sum(np.logaddexp(0, -y * (X @ w)))

    def fg(X, w, y):
        z = -y * (X @ w)
        return np.sum(np.logaddexp(0, z)), {"w": -X.T @ (y * expit(z))}
    return "sum(log(exp(-y.*(X*w)) + vector(1)))", ["w"], {}, data, f, fg


def _quadratic():
    def data(n, rng):
        return {"A": rng.standard_normal((n, n)), "x": rng.standard_normal(n)}

    def f(x, A):
        return x @ A @ x

    def fg(x, A):
        return x @ A @ x, {"x": A @ x + A.T @ x}
    return "x'*A*x", ["x"], {}, data, f, fg


def _trace_axbxt():
    def data(n, rng):
        return {k: rng.standard_normal((n, n)) for k in "AXB"}

    def f(A, X, B):
        return np.einsum("ij,ji->", A @ X, B @ X.T)

    def fg(A, X, B):
        ax = A @ X
        return np.einsum("ij,ji->", ax, B @ X.T), {"X": A.T @ X @ B.T + ax @ B}
    return "tr(A*X*B*X')", ["X"], {}, data, f, fg


def _gaussian_nll():
    def data(n, rng):
        return {"S": spd(n, rng), "C": spd(n, rng)}

    def f(S, C):
        return np.linalg.slogdet(S)[1] + np.trace(np.linalg.solve(S, C))

    def fg(S, C):
        si = np.linalg.inv(S)
        sc = si @ C
        return np.linalg.slogdet(S)[1] + np.trace(sc), {"S": si - 0.5 * (sc @ si + (sc @ si).T)}
    return "logdet(S) + tr(inv(S)*C)", ["S"], {"S": "spd"}, data, f, fg


def _bilinear_inverse():
    def data(n, rng):
        return {"u": rng.standard_normal(n), "X": well_conditioned(n, rng),
                "v": rng.standard_normal(n)}

    def f(u, X, v):
        return u @ np.linalg.solve(X, v)

    def fg(u, X, v):
        xi = np.linalg.inv(X)
        a, b = xi.T @ u, xi @ v
        return u @ b, {"X": -np.outer(a, b)}
    return "u'*inv(X)*v", ["X"], {}, data, f, fg


def _factorization():
    def data(n, rng):
        k = max(2, n // 4)
        return {"U": rng.standard_normal((n, k)), "V": rng.standard_normal((n, k)),
                "Y": rng.standard_normal((n, n))}

    def f(U, V, Y):
        r = U @ V.T - Y
        return np.sum(r * r)

    def fg(U, V, Y):
        r = U @ V.T - Y
        return np.sum(r * r), {"U": 2 * r @ V, "V": 2 * r.T @ U}
    return "norm2(U*V'-Y)^2", ["U", "V"], {}, data, f, fg


def _softmax_regression():
    def data(n, rng):
        y = np.zeros(n)
        y[rng.integers(n)] = 1
        return {"y": y, "W": rng.standard_normal((n, n)) / np.sqrt(n), "x": rng.standard_normal(n)}

    def f(y, W, x):
        a = W @ x
        return -(y @ a - np.sum(y) * logsumexp(a))

    def fg(y, W, x):
        a = W @ x
        return -(y @ a - np.sum(y) * logsumexp(a)), {"W": np.outer(np.sum(y) * softmax(a) - y, x)}
    return "-y'*log(softmax(W*x))", ["W"], {}, data, f, fg


def _mlp2():
    def data(n, rng):
        y = np.zeros(n)
        y[rng.integers(n)] = 1
        return {"y": y, "W2": rng.standard_normal((n, n)) / np.sqrt(n),
                "W1": rng.standard_normal((n, n)) / np.sqrt(n), "x": rng.standard_normal(n)}

    def f(y, W2, W1, x):
        a2 = W2 @ expit(W1 @ x)
        return -(y @ a2 - np.sum(y) * logsumexp(a2))

    def fg(y, W2, W1, x):
        h1 = expit(W1 @ x)
        a2 = W2 @ h1
        g2 = np.sum(y) * softmax(a2) - y
        g1 = (W2.T @ g2) * h1 * (1 - h1)
        return -(y @ a2 - np.sum(y) * logsumexp(a2)), {"W1": np.outer(g1, x),
                                                        "W2": np.outer(g2, h1)}
    return "-y'*log(softmax(W2*σ(W1*x)))", ["W1", "W2"], {}, data, f, fg


def _mlp4_tanh():
    def data(n, rng):
        d = {f"W{k}": rng.standard_normal((n, n)) / np.sqrt(n) for k in range(1, 5)}
        d.update(x=rng.standard_normal(n), y=rng.standard_normal(n))
        return d

    def f(W4, W3, W2, W1, x, y):
        r = W4 @ np.tanh(W3 @ np.tanh(W2 @ np.tanh(W1 @ x))) - y
        return r @ r

    def fg(W4, W3, W2, W1, x, y):
        h1 = np.tanh(W1 @ x)
        h2 = np.tanh(W2 @ h1)
        h3 = np.tanh(W3 @ h2)
        r = W4 @ h3 - y
        g4 = 2 * r
        g3 = (W4.T @ g4) * (1 - h3 * h3)
        g2 = (W3.T @ g3) * (1 - h2 * h2)
        g1 = (W2.T @ g2) * (1 - h1 * h1)
        return r @ r, {"W4": np.outer(g4, h3), "W3": np.outer(g3, h2), "W2": np.outer(g2, h1),
                       "W1": np.outer(g1, x)}
    return ("sum((W4*tanh(W3*tanh(W2*tanh(W1*x))) - y).^2)", ["W1", "W2", "W3", "W4"], {},
            data, f, fg)


def _logsumexp():
    def data(n, rng):
        return {"x": rng.standard_normal(n)}

    def f(x):
        return logsumexp(x)

    def fg(x):
        return logsumexp(x), {"x": softmax(x)}
    return "logsumexp(x)", ["x"], {}, data, f, fg


def _logdet():
    def data(n, rng):
        return {"X": well_conditioned(n, rng)}

    def f(X):
        return np.linalg.slogdet(X)[1]

    def fg(X):
        return np.linalg.slogdet(X)[1], {"X": np.linalg.inv(X).T}
    return "logdet(X)", ["X"], {}, data, f, fg


CORE = {
    "least squares": _least_squares, "ridge": _ridge, "logistic loss": _logistic,
    "x'Ax": _quadratic, "tr(AXBXᵀ)": _trace_axbxt, "Gaussian NLL": _gaussian_nll,
    "a'inv(X)b": _bilinear_inverse, "matrix factorization": _factorization,
    "softmax regression": _softmax_regression, "2-layer MLP": _mlp2,
    "4-layer tanh MLP": _mlp4_tanh, "logsumexp": _logsumexp, "logdet": _logdet,
}


# ---------------------------------------------------------------- batch and matfun sets
# Problems of bench/batch_problems.py and bench/matfun_problems.py: `forward(ops, **vars)`
# written against the array-API shim below, run by NumPy (the hand forward), JAX and PyTorch.


class NumpyOps:
    xp = np
    exp, log = np.exp, np.log

    @staticmethod
    def sum(x, axis=None):
        return np.sum(x, axis=axis)

    @staticmethod
    def logsumexp(z, axis=None):
        # max-shifted, one pass of exponentials (scipy's logsumexp adds ~50 µs of checks)
        m = np.max(z, axis=axis, keepdims=True)
        return np.log(np.sum(np.exp(z - m), axis=axis)) + np.squeeze(m, axis=axis)

    @staticmethod
    def sigmoid(z):
        return expit(z)


def jax_ops(jax):
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp as jlse

    class JaxOps:
        xp = jnp
        exp, log = jnp.exp, jnp.log

        @staticmethod
        def sum(x, axis=None):
            return jnp.sum(x, axis=axis)

        @staticmethod
        def logsumexp(z, axis=None):
            return jlse(z, axis=axis)

        @staticmethod
        def sigmoid(z):
            return jax.nn.sigmoid(z)
    return JaxOps


def torch_ops(torch):
    class _Linalg:
        def __getattr__(self, k):
            return getattr(torch.linalg, k)

        @staticmethod
        def svd(x, full_matrices=True, compute_uv=True):
            if not compute_uv:
                return torch.linalg.svdvals(x)
            return torch.linalg.svd(x, full_matrices=full_matrices)

    class _XP:
        linalg = _Linalg()

        def __getattr__(self, k):
            return getattr(torch, k)

    class TorchOps:
        xp = _XP()
        exp, log, sigmoid = torch.exp, torch.log, torch.sigmoid

        @staticmethod
        def sum(x, axis=None):
            return torch.sum(x) if axis is None else torch.sum(x, dim=axis)

        @staticmethod
        def logsumexp(z, axis=None):
            return torch.logsumexp(z, dim=tuple(range(z.ndim)) if axis is None else axis)
    return TorchOps


def _shim_problem(p, fixed_n=None):
    """A batch/matfun Problem in this file's form; `fixed_n`: the only size it runs at."""
    def factory():
        def data(n, rng):
            return p.gen(n if fixed_n is None else fixed_n, rng)

        def f(**kw):
            return p.forward(NumpyOps, **kw)

        def fg(**kw):
            return p.grad(**kw)
        return p.expr, p.wrt, p.lets, data, f, fg
    factory.forward = p.forward
    factory.sizes = None if fixed_n is None else [fixed_n]
    return factory


def _extra_sets():
    import batch_problems
    import matfun_problems

    return ({p.name: _shim_problem(p) for p in batch_problems.PROBLEMS},
            {p.name: _shim_problem(p, p.n) for p in matfun_problems.PROBLEMS})


sys.path.insert(0, str(Path(__file__).resolve().parent))
BATCH, MATFUN = _extra_sets()
SETS = {"core": CORE, "batch": BATCH, "matfun": MATFUN, "all": {**CORE, **BATCH, **MATFUN}}
PROBLEMS = SETS["all"]
DEFAULT_SIZES = {"core": [64, 256, 1024], "batch": [64, 256]}


def _bind(forward, ops):
    def loss(**kw):
        return forward(ops, **kw)
    return loss


def jax_losses():
    """The same problems in jax.numpy, for jit(value_and_grad); None when JAX is absent."""
    try:
        import jax
        import jax.numpy as jnp
        from jax.nn import log_softmax, sigmoid
        from jax.scipy.special import logsumexp as jlse
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def sq(v):
        return jnp.sum(v * v)

    ops = jax_ops(jax)
    shim = {name: _bind(fac.forward, ops) for name, fac in {**BATCH, **MATFUN}.items()}
    return jax, shim | {
        "least squares": lambda A, x, y: sq(A @ x - y),
        "ridge": lambda A, x, y, **k: sq(A @ x - y) + k["lambda"] * sq(x),
        "logistic loss": lambda X, w, y: jnp.sum(jnp.logaddexp(0.0, -y * (X @ w))),
        "x'Ax": lambda x, A: x @ A @ x,
        "tr(AXBXᵀ)": lambda A, X, B: jnp.trace(A @ X @ B @ X.T),
        "Gaussian NLL": lambda S, C: jnp.linalg.slogdet(S)[1] + jnp.trace(jnp.linalg.solve(S, C)),
        "a'inv(X)b": lambda u, X, v: u @ jnp.linalg.solve(X, v),
        "matrix factorization": lambda U, V, Y: sq(U @ V.T - Y),
        "softmax regression": lambda y, W, x: -(y @ log_softmax(W @ x)),
        "2-layer MLP": lambda y, W2, W1, x: -(y @ log_softmax(W2 @ sigmoid(W1 @ x))),
        "4-layer tanh MLP": lambda W4, W3, W2, W1, x, y: sq(
            W4 @ jnp.tanh(W3 @ jnp.tanh(W2 @ jnp.tanh(W1 @ x))) - y),
        "logsumexp": lambda x: jlse(x),
        "logdet": lambda X: jnp.linalg.slogdet(X)[1],
    }


def torch_losses():
    """The same problems in PyTorch, for autograd; None when PyTorch is absent."""
    try:
        import torch
    except ImportError:
        return None
    F = torch.nn.functional

    def sq(v):
        return torch.sum(v * v)

    ops = torch_ops(torch)
    shim = {name: _bind(fac.forward, ops) for name, fac in {**BATCH, **MATFUN}.items()}
    return torch, shim | {
        "least squares": lambda A, x, y: sq(A @ x - y),
        "ridge": lambda A, x, y, **k: sq(A @ x - y) + k["lambda"] * sq(x),
        "logistic loss": lambda X, w, y: torch.sum(F.softplus(-y * (X @ w))),
        "x'Ax": lambda x, A: x @ A @ x,
        "tr(AXBXᵀ)": lambda A, X, B: torch.trace(A @ X @ B @ X.T),
        "Gaussian NLL": lambda S, C: torch.linalg.slogdet(S)[1] + torch.trace(
            torch.linalg.solve(S, C)),
        "a'inv(X)b": lambda u, X, v: u @ torch.linalg.solve(X, v),
        "matrix factorization": lambda U, V, Y: sq(U @ V.T - Y),
        "softmax regression": lambda y, W, x: -(y @ F.log_softmax(W @ x, dim=0)),
        "2-layer MLP": lambda y, W2, W1, x: -(y @ F.log_softmax(W2 @ torch.sigmoid(W1 @ x),
                                                                  dim=0)),
        "4-layer tanh MLP": lambda W4, W3, W2, W1, x, y: sq(
            W4 @ torch.tanh(W3 @ torch.tanh(W2 @ torch.tanh(W1 @ x))) - y),
        "logsumexp": lambda x: torch.logsumexp(x, 0),
        "logdet": lambda X: torch.linalg.slogdet(X)[1],
    }


def torch_contender(torch, loss, wrt, kwargs):
    """Autograd as it is used: leaves that require grad, forward, backward, read .grad."""
    def call(**_):
        leaves = {n: torch.tensor(np.asarray(v, dtype=float), requires_grad=n in wrt)
                  for n, v in kwargs.items()}
        value = loss(**leaves)
        value.backward()
        return value.item(), {w: leaves[w].grad for w in wrt}
    return call


def jax_contender(jax, loss, wrt, kwargs):
    names = list(kwargs)
    argnums = tuple(names.index(w) for w in wrt)

    def positional(*args):
        return loss(**dict(zip(names, args)))

    fn = jax.jit(jax.value_and_grad(positional, argnums=argnums))
    args = [jax.numpy.asarray(kwargs[n]) for n in names]

    def call(**_):
        value, grads = fn(*args)
        jax.block_until_ready(grads)
        return value, grads
    call()  # compile outside the timing
    call.flops = xla_flops(fn.lower(*args))
    return call


def xla_flops(lowered) -> float:
    """Floating-point operations XLA counts in the compiled program (independent of load)."""
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


def torch_tensor_contender(torch, loss, wrt, kwargs):
    """Autograd on tensors the caller already has (no NumPy conversion in the timing)."""
    tensors = {n: torch.as_tensor(np.asarray(v, dtype=float)) for n, v in kwargs.items()}

    def call(**_):
        leaves = {n: t.detach().requires_grad_(n in wrt) for n, t in tensors.items()}
        value = loss(**leaves)
        value.backward()
        return value.detach(), {w: leaves[w].grad for w in wrt}
    return call


def emitted_torch_contender(torch, mod, kwargs):
    tensors = {n: torch.as_tensor(np.asarray(v, dtype=float)) if not isinstance(v, float) else v
               for n, v in kwargs.items()}

    def call(**_):
        return mod.f_and_grad(**tensors)
    return call


def emitted_jax_contender(jax, mod, kwargs):
    fn = jax.jit(mod.f_and_grad)
    given = {n: jax.numpy.asarray(v) for n, v in kwargs.items()}

    def call(**_):
        value, grads = fn(**given)
        jax.block_until_ready(grads)
        return value, grads
    call()  # compile outside the timing
    call.flops = xla_flops(fn.lower(**given))
    return call


def thread_settings() -> str:
    import os

    parts = [f"cores {os.cpu_count()}",
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
             f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
             f"XLA_FLAGS={os.environ.get('XLA_FLAGS', 'unset')!r}"]
    try:
        import torch

        parts.append(f"torch {torch.__version__} intra-op threads {torch.get_num_threads()}")
    except ImportError:
        pass
    try:
        import jax

        parts.append(f"jax {jax.__version__} on {jax.devices()[0].platform} (XLA's own pool)")
    except ImportError:
        pass
    return "; ".join(parts)


def batch_time(fn, kwargs, repeats):
    # Idle first: NumPy's and SciPy's OpenBLAS, JAX's and PyTorch's thread pools all spin for
    # a while after their last call, and on 2 cores that steals time from whichever library
    # runs next. A program uses one of them at a time, so each batch starts from quiet, then
    # one untimed call wakes the threads and warms the caches.
    time.sleep(0.15)
    fn(**kwargs)
    t = time.perf_counter()
    for _ in range(repeats):
        fn(**kwargs)
    return (time.perf_counter() - t) / repeats


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--set", choices=list(SETS), default="core",
                   help="problem set (default core); --problems picks rows from all sets")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="default 64 256 1024 (core), 64 256 (batch); matfun rows: own n")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=None)
    args = p.parse_args(argv)
    names = args.problems or list(SETS[args.set])
    rng = np.random.default_rng(0)
    jx = jax_losses()
    tx = torch_losses()
    print(f"Threads: {thread_settings()}\n")
    # the batch and matfun rows add "matdiff / JAX" (NumPy f_and_grad over JAX
    # jit(value_and_grad)); the core table keeps its columns (bench/README.md)
    vs_jax = any(name not in CORE for name in names)
    print("| problem | n | hand f (µs) | hand f+∇f / hand f | matdiff f_and_grad / hand f | "
          "JAX / hand f | PyTorch / hand f | matdiff / fastest other | md JAX / JAX | "
          "XLA flops md / JAX | md torch / autograd |" + (" matdiff / JAX |" if vs_jax else ""))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if vs_jax else ""))
    for name in names:
        factory = PROBLEMS[name]
        expr, wrt, let, data, hand_f, hand_fg = factory()
        sizes = getattr(factory, "sizes", None) or args.sizes or DEFAULT_SIZES[
            "core" if name in CORE else "batch"]
        result = matdiff.grad(expr, wrt, let)
        mod = result.compile()
        mod_jax = result.compile("jax") if jx is not None else None
        mod_torch = result.compile("torch") if tx is not None else None
        for n in sizes:
            kwargs = data(n, rng)
            value, grads = mod.f_and_grad(**kwargs)
            ref_value, ref_grads = hand_fg(**kwargs)
            assert np.isclose(value, ref_value, rtol=1e-6), (name, value, ref_value)
            for w in wrt:
                assert np.allclose(grads[w], ref_grads[w], rtol=1e-6, atol=1e-8), (name, w)
            contenders = {"f": hand_f, "fg": hand_fg, "md": mod.f_and_grad}
            if jx is not None:
                contenders["jax"] = jax_contender(jx[0], jx[1][name], wrt, kwargs)
                contenders["md_jax"] = emitted_jax_contender(jx[0], mod_jax, kwargs)
                value_j, grads_j = contenders["md_jax"]()
                assert np.isclose(float(value_j), ref_value, rtol=1e-6), (name, "md jax")
                for w in wrt:
                    assert np.allclose(np.asarray(grads_j[w]), ref_grads[w], rtol=1e-6,
                                       atol=1e-8), (name, w, "md jax")
            if tx is not None:
                contenders["torch"] = torch_contender(tx[0], tx[1][name], wrt, kwargs)
                value_t, grads_t = contenders["torch"]()
                assert np.isclose(value_t, ref_value, rtol=1e-6), (name, "torch")
                contenders["torch_t"] = torch_tensor_contender(tx[0], tx[1][name], wrt, kwargs)
                contenders["md_torch"] = emitted_torch_contender(tx[0], mod_torch, kwargs)
                value_m, grads_m = contenders["md_torch"]()
                assert np.isclose(float(value_m), ref_value, rtol=1e-6), (name, "md torch")
                for w in wrt:
                    assert np.allclose(grads_m[w].numpy(), ref_grads[w], rtol=1e-6,
                                       atol=1e-8), (name, w, "md torch")
            times = {k: [] for k in contenders}
            # at least ~5 ms per batch, so that small sizes are not timed by a handful of calls
            single = batch_time(hand_f, kwargs, 3)
            repeats = max(args.repeats, min(2000, int(0.005 / single)))
            for _ in range(5):  # interleave the contenders
                for k, fn in contenders.items():
                    times[k].append(batch_time(fn, kwargs, repeats))
            t = {k: min(v) for k, v in times.items()}
            fastest = min(t[k] for k in t if k not in ("f", "md", "md_jax", "md_torch",
                                                           "torch_t"))
            cells = [f"{t[k] / t['f']:.2f}" if k in t else "—" for k in ("jax", "torch")]
            own = [f"{t[a] / t[b]:.2f}" if a in t else "—"
                   for a, b in (("md_jax", "jax"), ("md_torch", "torch_t"))]
            flops = f"{contenders['md_jax'].flops / contenders['jax'].flops:.2f}" \
                if "md_jax" in contenders else "—"
            print(f"| {name} | {n} | {t['f'] * 1e6:.1f} | {t['fg'] / t['f']:.2f} | "
                  f"{t['md'] / t['f']:.2f} | {cells[0]} | {cells[1]} | "
                  f"{t['md'] / fastest:.2f} | {own[0]} | {flops} | {own[1]} |"
                  + (f" {t['md'] / t['jax']:.2f} |" if vs_jax and "jax" in t else
                     " — |" if vs_jax else ""), flush=True)


if __name__ == "__main__":
    main()
