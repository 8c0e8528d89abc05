"""Batched gradient problems (issue 14), in the format of the benchmark's problems.py.

Each problem carries `expr` (the matdiff language, with the axis forms), `wrt`, `lets`
(--let NAME:KIND), `gen(n, rng) -> dict` (vectors 1-D, matrices 2-D, scalars floats: the
calling convention of the emitted module), `forward(ops, **vars) -> scalar` written once against
the array-API shim of problems.py (ops.sum(x, axis), ops.logsumexp(z, axis), ops.sigmoid,
ops.exp, ops.log, ops.xp), so the same program runs as hand NumPy and under JAX / PyTorch, and
`grad(**vars) -> (f, {name: gradient})`: the hand-written NumPy gradient (max-shifted, one pass
of exponentials, sharing the forward's intermediates).

Samples are columns (X is features × batch, Y one-hot classes × batch); biases are vectors
broadcast as b*vector(1)'. `n` is the feature size, the batch is fixed per problem:

    softmax_reg_N256, softmax_reg_N1024   -sum(Y .* log(softmax(W*X + b*vector(1)', 1)))
    mlp2_bias_N256                        the same loss after a sigmoid layer with a bias
    attention_N128                        ‖Wv X softmax((Wk X)ᵀ(Wq X)/c, 1) − Y‖²_F

Wire into bench/bench_codegen.py with `from batch_problems import PROBLEMS` (the lead owns it);
run alone with `python bench/batch_problems.py [n [rounds]]`, which checks every hand gradient
against the emitted module of matdiff and times f_and_grad of both (the best of `rounds`
interleaved rounds of 20 calls each)."""

from __future__ import annotations

import numpy as np

PROBLEMS = []


class Problem:
    def __init__(self, name, title, expr, wrt, lets, shapes, gen, forward, grad):
        self.name = name
        self.title = title
        self.expr = expr
        self.wrt = list(wrt)
        self.lets = dict(lets)
        self.shapes = shapes  # human-readable description of the data shapes
        self.gen = gen
        self.forward = forward
        self.grad = grad

    def let_args(self):
        return [f"{k}:{v}" for k, v in self.lets.items()]

    def __repr__(self):
        return f"Problem({self.name})"


def problem(**kw):
    def deco(cls):
        PROBLEMS.append(Problem(gen=cls.gen, forward=cls.forward, grad=cls.grad, **kw))
        return cls
    return deco


def _st(f):  # plain functions inside the problem classes
    return staticmethod(f)


def _gauss(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def _onehot(rng, k, batch):
    Y = np.zeros((k, batch))
    Y[rng.integers(k, size=batch), np.arange(batch)] = 1.0
    return Y


def _softmax_cols(Z):
    """(softmax by columns, log-sum-exp per column) from one pass of exponentials."""
    m = Z.max(axis=0)
    E = np.exp(Z - m)
    s = E.sum(axis=0)
    return E / s, np.log(s) + m


# ---------------------------------------------------------------- softmax regression


def _softmax_regression(batch):
    @problem(name=f"softmax_reg_N{batch}",
             title=f"batched softmax regression with bias, N = {batch} (column-wise softmax)",
             expr="-sum(Y .* log(softmax(W*X + b*vector(1)', 1)))", wrt=["W", "b"],
             lets={"b": "vector"},
             shapes=f"W n/4 x n, b n/4, X n x {batch}, Y n/4 x {batch} one-hot columns")
    class _SoftmaxRegression:
        @_st
        def gen(n, rng):
            k = max(2, n // 4)
            return dict(W=_gauss(rng, k, n, scale=n ** -0.5), b=_gauss(rng, k),
                        X=_gauss(rng, n, batch), Y=_onehot(rng, k, batch))

        @_st
        def forward(o, W, b, X, Y):
            Z = W @ X + b[:, None]
            return o.sum(o.sum(Y, axis=0) * o.logsumexp(Z, axis=0)) - o.sum(Y * Z)

        @_st
        def grad(W, b, X, Y):
            Z = W @ X + b[:, None]
            S, lse = _softmax_cols(Z)
            ny = Y.sum(axis=0)
            f = ny @ lse - np.vdot(Y, Z)
            G = S * ny - Y
            return f, {"W": G @ X.T, "b": G.sum(axis=1)}

    return _SoftmaxRegression


_softmax_regression(256)
_softmax_regression(1024)


# ---------------------------------------------------------------- 2-layer MLP with biases


@problem(name="mlp2_bias_N256",
         title="batched 2-layer MLP with biases, N = 256 (sigmoid, column-wise softmax)",
         expr="-sum(Y .* log(softmax(W2*sigmoid(W1*X + b1*vector(1)') + b2*vector(1)', 1)))",
         wrt=["W1", "b1", "W2", "b2"], lets={"b1": "vector", "b2": "vector"},
         shapes="X n x 256, W1 n x n, b1 n, W2 n/4 x n, b2 n/4, Y n/4 x 256 one-hot")
class _MLP2Batch:
    @_st
    def gen(n, rng):
        h, k, batch = n, max(2, n // 4), 256
        return dict(W1=_gauss(rng, h, n, scale=n ** -0.5), b1=_gauss(rng, h),
                    W2=_gauss(rng, k, h, scale=h ** -0.5), b2=_gauss(rng, k),
                    X=_gauss(rng, n, batch), Y=_onehot(rng, k, batch))

    @_st
    def forward(o, W1, b1, W2, b2, X, Y):
        H = o.sigmoid(W1 @ X + b1[:, None])
        Z = W2 @ H + b2[:, None]
        return o.sum(o.sum(Y, axis=0) * o.logsumexp(Z, axis=0)) - o.sum(Y * Z)

    @_st
    def grad(W1, b1, W2, b2, X, Y):
        H = 1.0 / (1.0 + np.exp(-(W1 @ X + b1[:, None])))
        Z = W2 @ H + b2[:, None]
        S, lse = _softmax_cols(Z)
        ny = Y.sum(axis=0)
        f = ny @ lse - np.vdot(Y, Z)
        G2 = S * ny - Y
        G1 = (W2.T @ G2) * (H * (1.0 - H))
        return f, {"W1": G1 @ X.T, "b1": G1.sum(axis=1), "W2": G2 @ H.T,
                   "b2": G2.sum(axis=1)}


# ---------------------------------------------------------------- single-head attention


@problem(name="attention_N128",
         title="single-head self-attention, N = 128 samples as columns",
         expr="norm2(Wv*X*softmax((Wk*X)'*(Wq*X)/c, 1) - Y)^2", wrt=["Wq", "Wk", "Wv"],
         lets={},
         shapes="X n x 128, Wq Wk Wv n x n, Y n x 128, c = sqrt(n)")
class _Attention:
    @_st
    def gen(n, rng):
        batch = 128
        return dict(Wq=_gauss(rng, n, n, scale=n ** -0.5), Wk=_gauss(rng, n, n, scale=n ** -0.5),
                    Wv=_gauss(rng, n, n, scale=n ** -0.5), X=_gauss(rng, n, batch),
                    Y=_gauss(rng, n, batch), c=float(np.sqrt(n)))

    @_st
    def forward(o, Wq, Wk, Wv, X, Y, c):
        Q, K, V = Wq @ X, Wk @ X, Wv @ X
        A = K.T @ Q / c
        S = o.exp(A - o.logsumexp(A, axis=0)[None, :])
        R = V @ S - Y
        return o.sum(R * R)

    @_st
    def grad(Wq, Wk, Wv, X, Y, c):
        Q, K, V = Wq @ X, Wk @ X, Wv @ X
        S, _ = _softmax_cols(K.T @ Q / c)
        R = V @ S - Y
        dO = 2.0 * R
        dS = V.T @ dO
        dA = S * (dS - np.sum(S * dS, axis=0)) / c
        return np.vdot(R, R), {"Wq": (K @ dA) @ X.T, "Wk": (Q @ dA.T) @ X.T,
                               "Wv": (dO @ S.T) @ X.T}


# ---------------------------------------------------------------- standalone check and timing


def _module(p):
    import matdiff

    types = dict(p.lets)
    return matdiff.grad(p.expr, p.wrt, types=types).compile()


def _best(fn, repeats=20, rounds=5):
    import time

    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - t) / repeats)
    return best


def main(argv=None):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    args = argv if argv is not None else sys.argv[1:]
    n = int(args[0]) if args else 64
    rounds = int(args[1]) if len(args) > 1 else 15
    rng = np.random.default_rng(0)
    print(f"{'problem':<20} {'max rel err':>12} {'emitted µs':>11} {'hand µs':>9} {'ratio':>6}")
    for p in PROBLEMS:
        data = p.gen(n, rng)
        mod = _module(p)
        f, g = mod.f_and_grad(**data)
        hf, hg = p.grad(**data)
        err = max([abs(f - hf) / max(1.0, abs(hf))] + [
            float(np.max(np.abs(g[w] - hg[w])) / max(1.0, np.max(np.abs(hg[w]))))
            for w in p.wrt])
        t_mod, t_hand = float("inf"), float("inf")
        for _ in range(rounds):  # interleaved, so that a busy machine slows both alike
            t_mod = min(t_mod, _best(lambda: mod.f_and_grad(**data), rounds=1))
            t_hand = min(t_hand, _best(lambda: p.grad(**data), rounds=1))
        print(f"{p.name:<20} {err:12.1e} {t_mod * 1e6:11.1f} {t_hand * 1e6:9.1f} "
              f"{t_mod / t_hand:6.2f}")


if __name__ == "__main__":
    main()
