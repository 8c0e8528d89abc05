import json
import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))


def public_cases():
    """../shared/cases/public.json (matrixcalculus.org docs, lecture notes, Matrix Cookbook),
    copied into tests/data/public_cases.json."""
    return json.loads((DATA / "public_cases.json").read_text(encoding="utf-8"))


@pytest.fixture
def run_cli(capsys):
    from matdiff.cli import main

    def run(*argv, stdin=None, monkeypatch=None):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def numerically_equal(expr_a, expr_b, types=None, seeds=3, tol=1e-7):
    """Two expressions (strings) have the same value at random kind-respecting points."""
    from matdiff.language.typecheck import typecheck
    from matdiff.oracles.numeric import dim_sizes, evaluate, random_env

    a = typecheck(expr_a, types)
    b = typecheck(expr_b, types)
    variables = {**b.variables, **a.variables}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        sizes = dim_sizes(a.variables, a.root)
        env = random_env(variables, sizes, rng, "positive")
        from matdiff.ir import expr as E

        sizes_b = {d: 3 for n in E.walk(b.root) for d in n.shape}
        for name, v in b.variables.items():
            for d, n in zip(v.shape, env[name].shape):
                if d.name != "1":
                    sizes_b[d] = n
        va = evaluate(a.root, env, sizes)
        vb = evaluate(b.root, env, sizes_b)
        if va.shape != vb.shape or not np.allclose(va, vb, rtol=tol, atol=tol):
            return False
    return True
