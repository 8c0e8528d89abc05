"""The Python API's result objects (SPEC §3), renderable in Jupyter."""

from __future__ import annotations

from .ir import expr as E


class GradientExpr:
    """One gradient: str() is in the expression language (it parses back to the same value)."""

    def __init__(self, node: E.Node, name: str):
        self.node = node
        self.name = name

    def __str__(self) -> str:
        from .printing.text import to_text

        return to_text(self.node)

    def __repr__(self) -> str:
        return f"<∂f/∂{self.name} = {self.unicode()}>"

    def unicode(self) -> str:
        from .printing.unicode import to_unicode

        return to_unicode(self.node)

    def latex(self) -> str:
        from .printing.latex import to_latex

        return to_latex(self.node)

    def _repr_latex_(self) -> str:
        from .printing.latex import latex_name

        return rf"$\frac{{\partial f}}{{\partial {latex_name(self.name)}}} = {self.latex()}$"


class StepItem:
    """One derivation step: str() is its text line, _repr_latex_ its LaTeX, .rule its rule."""

    def __init__(self, method, step):
        self.rule = step.rule
        self.step = step
        self._method = method

    def __str__(self) -> str:
        import dataclasses

        one = dataclasses.replace(self._method, steps=[dataclasses.replace(self.step,
                                                                            continues=False)])
        return one.text_lines()[0][1]

    def __repr__(self) -> str:
        return f"<step {self}  [{self.rule}]>"

    def latex(self) -> str:
        import dataclasses

        one = dataclasses.replace(self._method, steps=[dataclasses.replace(self.step,
                                                                            continues=False)])
        return one.latex_lines()[0].replace("&", "")

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"


class GradientResult:
    def __init__(self, derivation, method: str | None = None):
        self.derivation = derivation
        self.method = method  # the derivation's method when derived with steps=True

    @property
    def steps(self) -> list[StepItem]:
        """The derivation step by step (matdiff.grad(..., steps=True)); [] otherwise."""
        if self.method is None:
            return []
        from .present.methods import method_steps

        m = method_steps(self.derivation, self.method)
        return [StepItem(m, s) for s in m.steps]

    @property
    def wrt(self) -> list[str]:
        return list(self.derivation.wrt)

    def gradient(self, name: str) -> GradientExpr:
        if name not in self.derivation.gradients:
            raise KeyError(f"no gradient with respect to {name!r} (have: {', '.join(self.wrt)})")
        return GradientExpr(self.derivation.gradients[name], name)

    def __getitem__(self, name: str) -> GradientExpr:
        return self.gradient(name)

    def latex(self) -> str:
        from .present.render import grad_latex

        return grad_latex(self.derivation)

    def text(self) -> str:
        from .present.render import grad_text

        return grad_text(self.derivation)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        """The gradients in Unicode, one per variable (not <… object at 0x…>)."""
        from .printing.unicode import UnicodePrinter

        p = UnicodePrinter()
        parts = [f"∂f/∂{p.var_name(name)} = {p.doc(self.derivation.gradients[name])}"
                 for name in self.wrt]
        return f"<matdiff gradient of f = {p.doc(self.derivation.f)}: {'; '.join(parts)}>"

    def _repr_latex_(self) -> str:
        """One line per equation, aligned at '=' (a bare $$…$$ runs the lines together)."""
        rows = []
        from .present.render import grad_latex

        for line in grad_latex(self.derivation, names=True).splitlines():
            if not line.strip():
                continue
            rows.append(line.replace(" = ", " &= ", 1) if " = " in line else line)
        return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"

    def numpy_source(self) -> str:
        from .codegen import numpy_module

        return numpy_module(self.derivation)

    def source(self, target: str = "numpy") -> str:
        """The module text of `codegen --target TARGET` (numpy, jax or torch): the same f,
        grad_NAME and f_and_grad, with the same keyword arguments and docstrings, for each;
        emitting needs no framework installed."""
        from .codegen import module_source

        return module_source(self.derivation, [], target)

    def jax_source(self) -> str:
        """The JAX module (traceable under jit and vmap; f_custom has matdiff's gradient as its
        custom_vjp backward rule)."""
        return self.source("jax")

    def torch_source(self) -> str:
        """The PyTorch module (any device; MatdiffF is a torch.autograd.Function whose
        backward is matdiff's gradient)."""
        return self.source("torch")

    def compile(self, target: str = "numpy"):
        """The module of `target`, imported (its framework must be installed)."""
        from .codegen.verify import import_source, require

        require(target)
        return import_source(self.source(target))

    def verify(self, seed: int = 7, target: str = "numpy"):
        """The emitted module checked as `codegen --verify` does: f against the independent
        evaluator, each gradient against central differences of the emitted f (float64 for
        every target). Returns a report with `.ok`, `.max_error` and `.text`."""
        from .codegen.verify import verify_module

        return verify_module(self.derivation, self.source(target), seed)
