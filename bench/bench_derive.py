"""Derivation speed (issue: every public and golden case < 10 ms, < 30 ms with the self-check),
the L-layer MLP gradient (time and printed size should grow linearly in L), and CLI cold
start (`matdiff parse "x'*A*x"` well under 0.5 s). Run: python bench/bench_derive.py"""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.setrecursionlimit(20000)

from matdiff.derive.gradient import derive  # noqa: E402
from matdiff.ir import expr as E  # noqa: E402
from matdiff.present.render import grad_text  # noqa: E402

GOLDEN = [
    ("tr(A*X*B)", ["X"], {}), ("tr(A*X'*B)", ["X"], {}), ("tr(A*X*B*X'*C)", ["X"], {}),
    ("x'*A*x", ["x"], {}), ("x'*A*x", ["x"], {"A": "symmetric"}), ("norm2(A*x-y)^2", ["x"], {}),
    ("log(det(X))", ["X"], {}), ("log(det(inv(X)))", ["X"], {}), ("u'*inv(X)*v", ["X"], {}),
    ("det(X)", ["X"], {}), ("sum(exp(X))", ["X"], {}), ("-y'*log(softmax(a))", ["a"], {}),
    ("-y'*log(softmax(W2*sigmoid(W1*x)))", ["W1", "W2"], {}),
    ("(x1*x2-3)^2+1", ["x1", "x2"], {"x1": "scalar", "x2": "scalar"}),
]


def cases():
    public = json.loads((ROOT / "tests" / "data" / "public_cases.json").read_text("utf-8"))
    out = [(c["expression"], list(c["gradients"]), c["let"]) for c in public]
    return out + GOLDEN


def clear_caches():
    # measure derivation, not a warm intern table from the previous repeat
    E.Node._interned.clear()


def timed(fn, repeats=15):
    times = []
    for _ in range(repeats):
        clear_caches()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_cases():
    print("## Derivation time per case (median of 15, warm process)\n")
    print("| expression | wrt | no check (ms) | with self-check (ms) |")
    print("|---|---|---:|---:|")
    worst = [0.0, 0.0]
    for expr, wrt, let in cases():
        derive(expr, wrt, let)  # warm imports
        a = timed(functools.partial(derive, expr, wrt, let, check=False)) * 1e3
        b = timed(functools.partial(derive, expr, wrt, let, check=True)) * 1e3
        worst = [max(worst[0], a), max(worst[1], b)]
        print(f"| `{expr}` | {', '.join(wrt)} | {a:.2f} | {b:.2f} |")
    print(f"\nworst: {worst[0]:.2f} ms without, {worst[1]:.2f} ms with the self-check\n")


def mlp(layers: int) -> str:
    inner = "x"
    for k in range(1, layers + 1):
        inner = f"W{k}*{inner}" if k == layers else f"σ(W{k}*{inner})"
    return f"sum(({inner} - y).^2)"


def bench_mlp():
    print("## L-layer MLP: gradient with respect to W1\n")
    print("| L | derive, no check (ms) | with check (ms) | printed size (chars) |")
    print("|---:|---:|---:|---:|")
    for layers in (1, 2, 4, 8, 16, 32, 64):
        expr = mlp(layers)
        a = timed(functools.partial(derive, expr, ["W1"], check=False), repeats=5) * 1e3
        b = timed(functools.partial(derive, expr, ["W1"], check=True), repeats=3) * 1e3
        size = len(grad_text(derive(expr, ["W1"], check=False)))
        print(f"| {layers} | {a:.1f} | {b:.1f} | {size} |")
    print()


def bench_cold_start():
    cmd = [sys.executable, "-m", "matdiff", "parse", "x'*A*x"]
    times = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    base = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=True)
        base.append(time.perf_counter() - t)
    print("## CLI cold start\n")
    print(f"`matdiff parse \"x'*A*x\"`: median {statistics.median(times) * 1e3:.0f} ms "
          f"(bare `python -c pass`: {statistics.median(base) * 1e3:.0f} ms)\n")


if __name__ == "__main__":
    bench_cold_start()
    bench_cases()
    bench_mlp()
