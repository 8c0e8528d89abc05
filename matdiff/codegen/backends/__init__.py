"""One module per code backend; each spells the backend-neutral plans of codegen/plan.py.

A backend is a `Backend`: the Body that spells function bodies, its helper library, the names
a variable may not take, the imports, the argument checks, how a value is returned, what the
module docstring says about values and undefined points, and any module-level code after the
functions (JAX's custom_vjp, PyTorch's autograd.Function). module.py writes the same module
around any of them. `get(target)` imports a backend's module only when it is asked for."""

from __future__ import annotations

import importlib

from ...ir import expr as E

TARGETS = ("numpy", "jax", "torch")


class Backend:
    name = ""
    label = ""  # how messages name the target
    package: str | None = None  # the framework an emitted module imports (None: NumPy)
    extra = ""  # pip extra that installs it
    reserved: set[str] = set()
    one_blas_rerun = False  # NumPy: rewrite with every product in SciPy's BLAS (see _mm)
    values_sentence = ""
    bound: tuple[str, ...] = ()  # locals _inputs returns after the arguments (dtype, device)

    @property
    def body(self):  # the Body subclass
        raise NotImplementedError

    def for_code(self, code: str, emitter=None) -> list[str]:
        """The helper definitions this code needs."""
        raise NotImplementedError

    def imports(self, text: str) -> list[str]:
        raise NotImplementedError

    def undefined_doc(self, variables: dict[str, E.Node], code: str) -> list[str]:
        raise NotImplementedError

    def out(self, node: E.Node, expr: str) -> str:
        return expr

    def check_lines(self, variables, py: dict[str, str], given: str) -> list[str]:
        raise NotImplementedError

    def inputs_function(self, variables, py: dict[str, str]) -> str:
        raise NotImplementedError

    def inline_checks(self, variables, py: dict[str, str]) -> list[str]:
        raise NotImplementedError

    def parameters(self, variables, py: dict[str, str]) -> str:
        """The parameter list of every emitted function: `**vars`, or named keyword-only
        parameters where a backend binds them faster."""
        return "**vars"

    def checks_everywhere(self, variables, py: dict[str, str]) -> bool:
        """Whether every function (not only f_and_grad) checks its arguments inline."""
        return False

    def direction_lines(self, v: str, name: str, scalar: bool, of: str,
                        expected: str) -> list[str]:
        raise NotImplementedError

    def trailer(self, emitter) -> list[str]:
        """Module-level code after the functions."""
        return []


def get(target: str) -> Backend:
    if target not in TARGETS:
        from ...errors import MatdiffError

        raise MatdiffError(f"unknown code target {target!r}: use one of {', '.join(TARGETS)}")
    return importlib.import_module(f"{__name__}.{target}").BACKEND
