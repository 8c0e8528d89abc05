"""Matrix-function gradient problems (issue 15), in the format of the benchmark's problems.py.

Each problem carries `expr`, `wrt`, `lets`, `gen(n, rng) -> dict` (matrices 2-D, scalars
floats: the calling convention of the emitted module), `forward(ops, **vars) -> scalar` written
once against the array-API shim of problems.py (it uses only ops.xp, so the same program runs
as hand NumPy and under JAX / PyTorch: xp.linalg.eigh and xp.linalg.svd have derivatives in
both), and `grad(**vars) -> (f, {name: gradient})`: the hand-written NumPy gradient (one
eigendecomposition / one SVD shared by f and the gradient).

    logeuclid_N64, logeuclid_N256   ‖logm(S) − B‖²_F, S spd (log-Euclidean distance)
    nucreg_N64, nucreg_N256         ‖AX − B‖²_F + lam·‖X‖_* (nuclear-norm regression)

Wire into bench/bench_codegen.py with `from matfun_problems import PROBLEMS` (the lead owns it);
run alone with `python bench/matfun_problems.py`, which checks every hand gradient against the
emitted module of matdiff and times f_and_grad of both."""

from __future__ import annotations

import numpy as np

PROBLEMS = []


class Problem:
    def __init__(self, name, title, expr, wrt, lets, shapes, gen, forward, grad, n):
        self.name, self.title, self.expr = name, title, expr
        self.wrt, self.lets, self.shapes = list(wrt), dict(lets), shapes
        self.gen, self.forward, self.grad, self.n = gen, forward, grad, n

    def let_args(self):
        return [f"{k}:{v}" for k, v in self.lets.items()]

    def __repr__(self):
        return f"Problem({self.name})"


def _spd(rng, n):
    b = rng.standard_normal((n, n)) / np.sqrt(n)
    return b @ b.T + np.eye(n)


# ---------------------------------------------------------------- log-Euclidean distance


def _le_gen(n, rng):
    return dict(S=_spd(rng, n), B=rng.standard_normal((n, n)) / np.sqrt(n))


def _le_forward(o, S, B):
    xp = o.xp
    w, U = xp.linalg.eigh(S)
    L = (U * xp.log(w)) @ U.T
    R = L - B
    return xp.sum(R * R)


def _le_grad(S, B):
    # Daleckii–Krein: ∂/∂S = U (F ⊙ Uᵀ G U) Uᵀ with G = 2(logm(S) − B) symmetrised,
    # F_ij = (log wi − log wj)/(wi − wj), 1/wi on the diagonal
    w, U = np.linalg.eigh(S)
    lw = np.log(w)
    R = (U * lw) @ U.T - B
    G = R + R.T
    dw = w[:, None] - w[None, :]
    same = np.abs(dw) <= 1e-12 * np.abs(w[:, None])
    F = np.where(same, 1.0 / w[:, None], (lw[:, None] - lw[None, :]) / np.where(same, 1.0, dw))
    return float(np.sum(R * R)), {"S": U @ (F * (U.T @ G @ U)) @ U.T}


# ---------------------------------------------------------------- nuclear-norm regression


def _nr_gen(n, rng):
    return dict(A=rng.standard_normal((2 * n, n)) / np.sqrt(n), X=rng.standard_normal((n, n)),
                B=rng.standard_normal((2 * n, n)), lam=0.1)


def _nr_forward(o, A, X, B, lam):
    xp = o.xp
    R = A @ X - B
    return xp.sum(R * R) + lam * xp.sum(xp.linalg.svd(X, compute_uv=False))


def _nr_grad(A, X, B, lam):
    R = A @ X - B
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    return float(np.sum(R * R) + lam * np.sum(s)), {"X": 2.0 * (A.T @ R) + lam * (U @ Vt)}


for _n in (64, 256):
    PROBLEMS.append(Problem(f"logeuclid_N{_n}", "log-Euclidean distance ||logm(S) - B||_F^2",
                            "norm2(logm(S) - B)^2", ["S"], {"S": "spd"},
                            f"S {_n}x{_n} spd, B {_n}x{_n}", _le_gen, _le_forward, _le_grad,
                            _n))
    PROBLEMS.append(Problem(f"nucreg_N{_n}", "nuclear-norm regression "
                            "||AX - B||_F^2 + lam ||X||_*",
                            "norm2(A*X - B)^2 + lam*nucnorm(X)", ["X"], {"lam": "scalar"},
                            f"A {2 * _n}x{_n}, X {_n}x{_n}, B {2 * _n}x{_n}", _nr_gen,
                            _nr_forward, _nr_grad, _n))


def _main() -> None:
    import time

    import matdiff

    class _NumpyOps:
        xp = np

    rng = np.random.default_rng(0)
    for p in PROBLEMS:
        data = p.gen(p.n, rng)
        module = matdiff.grad(p.expr, p.wrt, types=p.lets).compile()
        f0, g0 = module.f_and_grad(**data)
        f1, g1 = p.grad(**data)
        assert np.isclose(f0, f1) and np.isclose(f1, p.forward(_NumpyOps, **data)), p.name
        for name in p.wrt:
            assert np.allclose(g0[name], g1[name], rtol=1e-6, atol=1e-8), (p.name, name)

        def best(fns, reps=15 if p.n <= 64 else 7):
            # interleaved, the minimum of each: machine load hits both alike
            times = [[] for _ in fns]
            for _ in range(reps):
                for k, fn in enumerate(fns):
                    t = time.perf_counter()
                    fn(**data)
                    times[k].append(time.perf_counter() - t)
            return [min(t) for t in times]

        t_md, t_hand = best([module.f_and_grad, p.grad])
        print(f"{p.name:16s} matdiff {t_md * 1e3:8.2f} ms   hand {t_hand * 1e3:8.2f} ms   "
              f"ratio {t_md / t_hand:5.2f}")


if __name__ == "__main__":
    _main()
