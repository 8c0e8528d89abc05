"""`codegen --verify`: the emitted module imported and checked — f against the independent
evaluator, every gradient against central finite differences of the emitted f — on random
data that respects each variable's kind, in float64 for every target (NumPy, JAX with
jax_enable_x64, PyTorch float64 tensors). A JAX module is also run under jax.jit, a PyTorch
module's MatdiffF backward is compared with its gradients."""

from __future__ import annotations

import contextlib
import functools
import types
from dataclasses import dataclass

from ..errors import MatdiffError
from ..ir import expr as E
from . import function_name

_PACKAGES = {"jax": "jax", "torch": "torch"}


class MissingFramework(MatdiffError):
    """A code target whose framework is not installed (exit 2)."""


def require(target: str):
    """The framework module of a target (jax, torch); MissingFramework when it is absent."""
    package = _PACKAGES.get(target)
    if package is None:
        return None
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingFramework(
            f"--target {target} needs the package '{package}', which is not installed",
            hint=f'pip install "matdiff[{target}]"') from None


def target_of(source: str) -> str:
    """Which target emitted this module (read from its imports)."""
    if "\nimport jax\n" in source:
        return "jax"
    if "\nimport torch\n" in source:
        return "torch"
    return "numpy"


def import_source(source: str, name: str = "matdiff_generated"):
    """The emitted module, imported as it is (its framework's arrays in and out)."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def load_module(source: str, name: str = "matdiff_generated"):
    """The emitted module imported, as the verifiers call it: NumPy arrays and floats in and
    out. A NumPy module is itself; a JAX or PyTorch module is wrapped so that its public
    functions take NumPy arrays (converted to float64 jax arrays under jax_enable_x64, or
    float64 tensors) and return NumPy arrays and floats."""
    target = target_of(source)
    require(target)
    module = import_source(source, name)
    return module if target == "numpy" else NumpyFacing(module, target)


class NumpyFacing:
    """A JAX or PyTorch module seen through NumPy, in float64."""

    def __init__(self, module, target: str):
        self.module = module
        self.target = target
        self.framework = require(target)

    def precision(self):
        if self.target == "jax":
            return self.framework.enable_x64(True)
        return contextlib.nullcontext()

    def to_framework(self, value):
        import numpy as np

        if isinstance(value, np.ndarray):
            if self.target == "jax":
                return self.framework.numpy.asarray(value.astype(np.float64))
            return self.framework.as_tensor(value.astype(np.float64))
        return value

    def to_numpy(self, value):
        import numpy as np

        if isinstance(value, tuple):
            return tuple(self.to_numpy(v) for v in value)
        if isinstance(value, dict):
            return {k: self.to_numpy(v) for k, v in value.items()}
        if self.target == "torch" and isinstance(value, self.framework.Tensor):
            value = value.detach().cpu().numpy()
        a = np.asarray(value, dtype=np.float64)
        return float(a) if a.ndim == 0 else a

    def __getattr__(self, name):
        fn = getattr(self.module, name)
        if name.startswith("_") or not callable(fn) or isinstance(fn, type):
            return fn

        def call(*args, **kwargs):
            with self.precision():
                out = fn(*[self.to_framework(a) for a in args],
                         **{k: self.to_framework(v) for k, v in kwargs.items()})
                return self.to_numpy(out)
        return call

    def integration_error(self, args: dict, grads: dict, wrt) -> tuple[str, float]:
        """The framework integration against the module's own gradients: JAX's f_and_grad
        under jax.jit and jax.grad through f_custom, PyTorch's MatdiffF backward."""
        import numpy as np

        worst = 0.0

        def rel(a, b):
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            return float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b))))
        with self.precision():
            given = {k: self.to_framework(v) for k, v in args.items()}
            if self.target == "jax":
                jax = self.framework
                _, jitted = jax.jit(self.module.f_and_grad)(**given)
                for w in wrt:
                    worst = max(worst, rel(jitted[w], grads[w]))
                    custom = jax.grad(lambda a, w=w: self.module.f_custom(**{**given, w: a}))(
                        jax.numpy.asarray(given[w], dtype=float))
                    worst = max(worst, rel(custom, grads[w]))
                return "jax.jit(f_and_grad) and jax.grad(f_custom)", worst
            torch = self.framework
            names = list(args)
            leaves = [torch.as_tensor(given[n], dtype=torch.float64).requires_grad_(n in wrt)
                      for n in names]
            self.module.MatdiffF.apply(*leaves).backward()
            for n, leaf in zip(names, leaves):
                if n in wrt:
                    worst = max(worst, rel(leaf.grad.numpy(), grads[n]))
            return "MatdiffF.apply(…).backward()", worst


def _emitted_fd(mod, args: dict, env: dict, variable: E.Node, direction, eps: float) -> float:
    """Central difference of the emitted f along `direction` in `variable`."""
    from ..oracles.numeric import to_public

    name = variable.attr[0]
    plus, minus = dict(args), dict(args)
    plus[name] = to_public(env[name] + eps * direction, variable.shape)
    minus[name] = to_public(env[name] - eps * direction, variable.shape)
    return (mod.f(**plus) - mod.f(**minus)) / (2 * eps)


@dataclass
class VerifyReport:
    ok: bool
    text: str
    max_error: float
    checked: bool = True  # False: no point to verify at (ok is then False too)


def verify_module(derivation, source: str, seed: int = 7) -> VerifyReport:
    """The emitted f against the independent evaluator, the emitted gradients against
    central finite differences of the emitted f, at random kind-respecting data where every
    operation is defined (the self-check's rule: a NaN comparison is a failure, and no point
    means "could not verify", never a pass)."""
    import warnings

    import numpy as np

    from ..oracles.numeric import (
        best_fd_error,
        find_point,
        from_public,
        random_direction,
        to_public,
        worst_of,
    )

    mod = load_module(source)
    variables = derivation.typed.variables
    rng = np.random.default_rng(seed)
    search = find_point([derivation.f, *derivation.gradients.values()], variables, rng)
    if search.point is None:
        return VerifyReport(False, f"verify: could not verify: {search.message()}",
                            float("nan"), checked=False)
    env, values = search.point.env, search.point.values
    args = {n: to_public(env[n], v.shape) for n, v in variables.items()}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value = float(mod.f(**args))
        reference = float(values[derivation.f][0, 0])
        worst = abs(value - reference) / max(1.0, abs(reference)) if np.isfinite(value) \
            else float("nan")
        value2, grads = mod.f_and_grad(**args)
        worst = worst_of(worst, abs(value2 - value) / max(1.0, abs(value)))
        lines = [f"f: emitted {value:.10g}, reference {reference:.10g}"]
        for w in derivation.wrt:
            g = from_public(getattr(mod, function_name("grad_", w))(**args), variables[w].shape)
            g2 = from_public(grads[w], variables[w].shape)
            if np.all(np.isfinite(g)) and np.all(np.isfinite(g2)):
                worst_w = float(np.max(np.abs(g - g2))) / max(1.0, float(np.max(np.abs(g))))
            else:
                worst_w = float("nan")
            kind = variables[w].attr[1]
            for _ in range(3):
                v = random_direction(kind, env[w].shape, rng)
                an = float(np.sum(g * v))
                fd = functools.partial(_emitted_fd, mod, args, env, variables[w], v)
                # f ≈ 0 made of large terms (xᵀA(A − A)Bx): its rounding, seen in a second
                # difference over a step too small for any curvature, bounds what differences
                # can resolve; 1e13 × it keeps the tolerance where f itself is exact
                rounding = abs(fd(1e-9) - fd(5e-10)) * 1e-9
                scale = max(abs(value) + 1.0, 1e13 * rounding)
                worst_w = worst_of(worst_w, best_fd_error(fd, an, scale))
            lines.append(f"grad_{w}: max relative error vs finite differences {worst_w:.1e}")
            worst = worst_of(worst, worst_w)
        if isinstance(mod, NumpyFacing) and derivation.wrt:
            what, err = mod.integration_error(args, grads, derivation.wrt)
            lines.append(f"{what}: max relative difference from f_and_grad {err:.1e}")
            worst = worst_of(worst, err)
    ok = worst < 1e-5  # False for NaN
    lines.append(f"verify: {'ok' if ok else 'FAILED'} (max relative error {worst:.1e})")
    return VerifyReport(ok, "\n".join(lines), worst)
