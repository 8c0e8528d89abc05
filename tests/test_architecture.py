"""The package's import rules (issue 11): no import cycles, counting imports inside functions
too; no module imports another module's underscore names; IR nodes are built through the
normalising builders of expr.py, except by codegen's plan, whose lowered IR is its own."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "matdiff"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path):
    """(imported module, imported names) for every import in the file, at any depth."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None


def test_no_import_cycles():
    graph = {m: {t for t, _ in _imports(m, p) if t in MODULES and t != m}
             for m, p in MODULES.items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle.extend(path[path.index(t):] + [t])
                return True
            if t not in state and visit(t, path + [t]):
                return True
        state[m] = 2
        return False

    for m in sorted(MODULES):
        if m not in state and visit(m, [m]):
            break
    assert not cycle, " → ".join(cycle)


def test_no_module_imports_another_modules_private_names():
    offenders = [(m, t, n) for m, p in MODULES.items() for t, n in _imports(m, p)
                 if t.startswith("matdiff") and n and n.startswith("_") and not n.startswith("__")
                 and t != m]
    assert not offenders, offenders


def test_ir_nodes_are_built_through_the_builders():
    # ops/matrix_functions.py and ops/axes.py hold their operators' normalising builders
    # (registered in E.BUILDERS), as expr.py does for the core operators
    allowed = {"matdiff.ir.expr", "matdiff.codegen.plan", "matdiff.ops.matrix_functions",
               "matdiff.ops.axes"}
    offenders = []
    for m, p in MODULES.items():
        if m in allowed:
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == "make" and getattr(node.func.value, "id", "") == "E":
                offenders.append((m, node.lineno))
    assert not offenders, offenders
