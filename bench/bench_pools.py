"""Two OpenBLAS thread pools in one process: what a NumPy LAPACK call does to the SciPy one
that follows it, and the other way round.

NumPy's and SciPy's wheels each bundle their own OpenBLAS. After a multithreaded call, an
OpenBLAS pool's worker threads spin for a while before they sleep; a multithreaded call of
the *other* pool in that window has its threads descheduled by the spinners and waits for
them at every synchronisation. The emitted modules that factorize keep every BLAS call in
SciPy's pool (one pool per module), but a caller's own NumPy work just before a call, or
just after it, still meets the other pool. This script times, per problem and size, the
median of 15 calls of: the emitted f_and_grad alone; the same right after one call of the
hand-written NumPy gradient; the hand-written gradient alone; and right after one emitted
call (0.12 s of idling between samples, so every "alone" starts with sleeping pools).

Run: python bench/bench_pools.py [--threads 2] [--sizes 256 1024]
(the thread count goes to every OpenBLAS before NumPy is imported)."""

from __future__ import annotations

import argparse
import os
import sys
import time


def _threads(argv: list[str]) -> str:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
    return "2"


os.environ["OPENBLAS_NUM_THREADS"] = _threads(sys.argv[1:])

import numpy as np  # noqa: E402

import matdiff  # noqa: E402


def _spd(rng, n):
    q = rng.standard_normal((n, n))
    return q @ q.T / n + np.eye(n)


def _logdet_hand(X):
    return np.linalg.slogdet(X)[1], {"X": np.linalg.inv(X).T}


def _bilinear_hand(a, X, b):
    v = np.linalg.solve(X, b)
    u = np.linalg.solve(X.T, a)
    return a @ v, {"X": -np.outer(u, v)}


def _gauss_hand(S, C):
    inv = np.linalg.inv(S)
    product = inv @ C
    return np.linalg.slogdet(S)[1] + np.trace(product), {"S": inv - product @ inv}


PROBLEMS = {
    "logdet": ("log(det(X))", ["X"], {"X": "spd"}, _logdet_hand,
               lambda rng, n: {"X": _spd(rng, n)}),
    "bilinear_inv": ("a'*inv(X)*b", ["X"], {"a": "vector", "b": "vector"}, _bilinear_hand,
                     lambda rng, n: {"a": rng.standard_normal(n),
                                     "X": rng.standard_normal((n, n)) / n ** 0.5 + 2 * np.eye(n),
                                     "b": rng.standard_normal(n)}),
    "gauss_nll": ("logdet(S) + tr(inv(S)*C)", ["S"], {"S": "spd", "C": "symmetric"}, _gauss_hand,
                  lambda rng, n: {"S": _spd(rng, n), "C": _spd(rng, n)}),
}


def _median_ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3


def _alone(fn, rounds: int) -> float:
    fn()
    samples = []
    for _ in range(rounds):
        time.sleep(0.12)
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return _median_ms(samples)


def _after(first, second, rounds: int) -> float:
    first(), second()
    samples = []
    for _ in range(rounds):
        time.sleep(0.12)
        first()
        t0 = time.perf_counter()
        second()
        samples.append(time.perf_counter() - t0)
    return _median_ms(samples)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="2")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, numpy {np.__version__}; "
          f"median ms of {args.rounds} calls")
    print("| problem | n | emitted alone | emitted after hand | hand alone | hand after emitted |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (expr, wrt, types, hand, data) in PROBLEMS.items():
        module = matdiff.grad(expr, wrt, types).compile()
        for n in args.sizes:
            d = data(np.random.default_rng(n), n)
            emitted = lambda: module.f_and_grad(**d)  # noqa: E731
            handmade = lambda: hand(**d)  # noqa: E731
            value, grads = emitted()
            want, want_grads = handmade()
            assert abs(value - want) <= 1e-8 * max(1.0, abs(want)), (name, value, want)
            row = [_alone(emitted, args.rounds), _after(handmade, emitted, args.rounds),
                   _alone(handmade, args.rounds), _after(emitted, handmade, args.rounds)]
            print(f"| {name} | {n} | " + " | ".join(f"{t:.2f}" for t in row) + " |", flush=True)


if __name__ == "__main__":
    main()
