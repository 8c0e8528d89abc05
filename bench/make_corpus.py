"""Record the printed gradients of a corpus of expressions (tests/data/corpus.json).

The corpus is the public cases, the suite and goldens of tests/test_gradients.py, the
benchmark problems and the trust-test expressions: about a hundred derivations. Run it on a
tree before a refactoring to pin what matdiff prints; tests/test_corpus.py then checks that
the refactored tree prints the same (and that each gradient still matches finite
differences). Usage: python bench/make_corpus.py > tests/data/corpus.json"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def expressions() -> list[tuple[str, str, dict]]:
    from tests.test_gradients import GOLDEN, SUITE

    out = [(e, w, t) for e, w, t, _ in GOLDEN] + [(e, w, t) for e, w, t in SUITE]
    cases = json.loads((ROOT / "tests/data/public_cases.json").read_text(encoding="utf-8"))
    for case in cases:
        for wrt in case["gradients"]:
            out.append((case["expression"], wrt, case.get("let") or {}))
    out += [
        ("-y'*log(softmax(W2*σ(W1*x)))", "W1", {}), ("-y'*log(softmax(W2*σ(W1*x)))", "W2", {}),
        ("tr(inv(X'*X))", "X", {}), ("tr(inv(X'*C*X)*A)", "X", {}),
        ("tr(inv(X'*C*X)*X'*B*X)", "X", {}), ("log(det(X'*X))", "X", {}),
        ("-sum(log(y - A*x))", "x", {}), ("norm2(A*X*B - Y)^2", "X", {}),
        ("u'*inv(X)*v", "X", {}), ("0.5*y'*inv(X*X' + b*eye)*y + 0.5*logdet(X*X' + b*eye)",
                                    "b", {}),
        ("-(c/2)*logdet(S) - 0.5*tr(inv(S)*(Y - vector(1)*mu')'*(Y - vector(1)*mu'))", "S",
         {"mu": "vector", "S": "spd"}),
        ("sum(log(vector(1) + exp(-y.*(X*w))))", "w", {}), ("x'*A*x/(x'*x)", "x", {}),
        ("tr(X^7)", "X", {}), ("sum(relu(x))", "x", {}), ("u'*tanh(W*tanh(W*h + x) + z)", "W", {}),
    ]
    seen, unique = set(), []
    for e, w, t in out:
        key = (e, w, json.dumps(t, sort_keys=True))
        if key not in seen:
            seen.add(key)
            unique.append((e, w, t))
    return unique


def record(expr: str, wrt: str, types: dict) -> dict:
    from matdiff.derive.gradient import derive
    from matdiff.printing.latex import to_latex
    from matdiff.printing.text import to_text
    from matdiff.printing.unicode import to_unicode

    result = derive(expr, [wrt], types, check=False)
    g = result.gradients[wrt]
    return {"expression": expr, "wrt": wrt, "let": types, "text": to_text(g),
            "unicode": to_unicode(g), "latex": to_latex(g)}


if __name__ == "__main__":
    rows = [record(*item) for item in expressions()]
    json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
