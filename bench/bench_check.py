"""`matdiff check` timings for the claims of issue 13: warm (in-process, after a first run, as
the REPL, a batch or the API see it) and from the shell (a fresh `matdiff check` process).
Targets: ≤ 1 s warm, ≤ 1.5 s from the shell.  Run: python bench/bench_check.py"""

import subprocess
import sys
import time

from matdiff.oracles.diagnose import check_claim

CASES = [  # (label, expr, wrt, claim, lets, options)
    ("Gaussian Σ (spd)", "-1/2*logdet(Σ) - 1/2*(x-μ)'*inv(Σ)*(x-μ)", "Σ",
     "1/2*inv(Σ)*((x-μ)*(x-μ)'-Σ)*inv(Σ)", {"Σ": "spd"}, {}),
    ("Gaussian, Cookbook claim", "-1/2*logdet(Σ) - 1/2*(x-μ)'*inv(Σ)*(x-μ)", "Σ",
     "inv(Σ)*(x-μ)*(x-μ)'*inv(Σ) - inv(Σ) - 1/2*diag(diag(inv(Σ)*(x-μ)*(x-μ)'*inv(Σ) - inv(Σ)))",
     {"Σ": "spd"}, {"convention": "cookbook"}),
    ("logdet Cookbook", "logdet(S)", "S", "2*inv(S) - diag(diag(inv(S)))", {"S": "spd"},
     {"convention": "cookbook"}),
    ("tr(AS), S symmetric", "tr(A*S)", "S", "A'", {"S": "symmetric"}, {}),
    ("softmax CE, one-hot", "-y'*log(softmax(W*x))", "W", "(softmax(W*x)-y)*x'",
     {"y": "probability"}, {}),
    ("softmax CE, sign slip", "-y'*log(softmax(W*x))", "W", "(y-softmax(W*x))*x'", {}, {}),
    ("‖Ax−y‖², numerator", "norm2(A*x-y)^2", "x", "2*(A*x-y)'*A", {}, {"layout": "numerator"}),
    ("xᵀx/xᵀAx, unsquared", "x'*x/(x'*A*x)", "x", "2*x/(x'*A*x) - (x'*x)*(A+A')*x/(x'*A*x)",
     {}, {}),
    ("LaTeX quadratic", r"\mathbf{x}^\top A \mathbf{x}", "x", r"(A + A^\top)\mathbf{x}", {}, {}),
    ("tr(XᵀAX) missing term", "tr(X'*A*X)", "X", "A*X", {}, {}),
    ("Hessian xᵀAx", "x'*A*x", "x", "A + A'", {}, {"target": "hessian"}),
    ("Jacobian σ(Wx)", "sigmoid(W*x)", "x", "diag(sigmoid(W*x).*(vector(1)-sigmoid(W*x)))*W",
     {}, {"target": "jacobian"}),
]


def cli_args(expr, wrt, claim, lets, options):
    args = [sys.executable, "-m", "matdiff", "check", expr, "--wrt", wrt, "--claim", claim,
            "--plain"]
    for n, k in lets.items():
        args += ["--let", f"{n}:{k}"]
    if options.get("convention"):
        args += ["--convention", options["convention"]]
    if options.get("layout"):
        args += ["--layout", options["layout"]]
    if options.get("target") in ("hessian", "jacobian"):
        args += ["--" + options["target"]]
    return args


def main():
    print("| check | verdict | warm, CLI mode (s) | warm, API with SymPy (s) | shell (s) |")
    print("|---|---|---|---|---|")
    for label, expr, wrt, claim, lets, options in CASES:
        check_claim(expr, wrt, claim, lets, prove="auto", **options)  # warm up
        t = time.perf_counter()
        v = check_claim(expr, wrt, claim, lets, prove="auto", **options)
        warm = time.perf_counter() - t
        t = time.perf_counter()
        check_claim(expr, wrt, claim, lets, prove=True, **options)
        api = time.perf_counter() - t
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run(cli_args(expr, wrt, claim, lets, options), capture_output=True,
                           check=False)
            best = min(best, time.perf_counter() - t)
        print(f"| {label} | {v.status} | {warm:.2f} | {api:.2f} | {best:.2f} |")


if __name__ == "__main__":
    main()
