"""Two runs of the reference harness (`../shared/bench/run.py --json`) as one markdown table.

    python bench/harness_table.py run1.json run2.json

Each cell uses the harness's own statistic, the median over rounds of time / hand forward;
"matdiff / fastest peer" divides matdiff's by the smallest of hand gradient, JAX and PyTorch
(peers of the same rounds). The last line counts the cells above 1.05× in each run and the
cells whose matdiff time, and whose matdiff ratio, differ by more than 10 % between the runs
(bench/README.md, "Issue 18")."""

from __future__ import annotations

import json
import sys

PEERS = {"hand_grad": "hand", "jax": "JAX", "torch": "PyTorch"}


def cells(run: dict) -> dict:
    out = {}
    for case in run["results"]:
        m = case["methods"]
        key = (case["problem"], case["n"])
        if "ratio" not in m.get("matdiff", {}):
            out[key] = None
            continue
        peers = {k: m[k]["ratio"] for k in PEERS if "ratio" in m.get(k, {})}
        best = min(peers, key=peers.get)
        out[key] = {"vs": m["matdiff"]["ratio"] / peers[best], "best": best,
                    "t": m["matdiff"]["time_s"], "r": m["matdiff"]["ratio"]}
    return out


def duration(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def mark(cell: dict) -> str:
    text = f"{cell['vs']:.2f}"
    return f"**{text}**" if cell["vs"] > 1.05 else text


def main() -> None:
    a, b = (cells(json.load(open(path))) for path in sys.argv[1:3])
    print("| problem | n | run 1: matdiff / fastest peer | run 2 | "
          "matdiff f_and_grad, run 1 / run 2 | matdiff / hand f, run 1 / run 2 |")
    print("|---|---:|---|---|---|---|")
    above, drift_time, drift_ratio = [0, 0], 0, 0
    for key, x in a.items():
        y = b.get(key)
        if x is None or y is None:
            print(f"| {key[0]} | {key[1]} | FAIL | | | |")
            continue
        above[0] += x["vs"] > 1.05
        above[1] += y["vs"] > 1.05
        drift_time += abs(x["t"] / y["t"] - 1) > 0.10
        drift_ratio += abs(x["r"] / y["r"] - 1) > 0.10
        print(f"| {key[0]} | {key[1]} | {mark(x)} ({PEERS[x['best']]}) | "
              f"{mark(y)} ({PEERS[y['best']]}) | {duration(x['t'])} / {duration(y['t'])} | "
              f"{x['r']:.2f}× / {y['r']:.2f}× |")
    print()
    print(f"cells above 1.05: run 1 {above[0]}, run 2 {above[1]} of {len(a)}; matdiff cells "
          f"whose time differs by more than 10% between the runs: {drift_time}; whose ratio "
          f"to the hand forward does: {drift_ratio}")


if __name__ == "__main__":
    main()
