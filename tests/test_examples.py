"""Every script in examples/ runs and asserts its own outcome (loss falls by a stated
factor, the MLE matches the closed form, check catches the transposed answer)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples():
    assert {p.stem for p in EXAMPLES} >= {"xor_network", "softmax_regression", "gaussian_mle",
                                          "homework_check"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_meets_its_assertions(script):
    if script.stem == "sharded_least_squares" and not os.environ.get(
            "MATDIFF_REQUIRE_FRAMEWORKS"):
        pytest.importorskip("jax", reason='the sharded example needs JAX '
                            '(pip install "matdiff[jax]")')
    if script.stem.startswith("digits_") and not os.environ.get("MATDIFF_REQUIRE_FRAMEWORKS"):
        pytest.importorskip("sklearn", reason='the digits example needs scikit-learn '
                            '(pip install "matdiff[examples]")')
    env = dict(os.environ)
    root = str(script.parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "checked against central finite differences" in proc.stdout or \
        script.stem == "homework_check"
