"""`codegen --verify`: the emitted module imported and checked — f against the independent
evaluator, every gradient against central finite differences of the emitted f — on random
data that respects each variable's kind."""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass

from . import expr as E
from .codegen import function_name


def load_module(source: str, name: str = "matdiff_generated"):
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _emitted_fd(mod, args: dict, env: dict, variable: E.Node, direction, eps: float) -> float:
    """Central difference of the emitted f along `direction` in `variable`."""
    from .numeric import to_public

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


def verify_module(derivation, source: str, seed: int = 7) -> VerifyReport:
    """The emitted f against the independent evaluator, the emitted gradients against
    central finite differences of the emitted f, on random kind-respecting data."""
    import numpy as np

    from .numeric import (
        best_fd_error,
        dim_sizes,
        evaluate,
        find_data,
        from_public,
        random_direction,
        to_public,
    )

    mod = load_module(source)
    variables = derivation.typed.variables
    rng = np.random.default_rng(seed)
    sizes = dim_sizes(variables, derivation.f, *derivation.gradients.values())
    env = find_data(derivation.f, derivation.gradients, variables, sizes, rng)
    if env is None:
        return VerifyReport(False, "verify: found no point where f and its gradients are finite",
                            float("nan"))
    args = {n: to_public(env[n], v.shape) for n, v in variables.items()}
    value = mod.f(**args)
    reference = float(evaluate(derivation.f, env, sizes)[0, 0])
    worst = abs(value - reference) / max(1.0, abs(reference))
    value2, grads = mod.f_and_grad(**args)
    worst = max(worst, abs(value2 - value) / max(1.0, abs(value)))
    lines = [f"f: emitted {value:.10g}, reference {reference:.10g}"]
    for w in derivation.wrt:
        g = from_public(getattr(mod, function_name("grad_", w))(**args), variables[w].shape)
        g2 = from_public(grads[w], variables[w].shape)
        worst_w = float(np.max(np.abs(g - g2))) / max(1.0, float(np.max(np.abs(g))))
        scale = abs(value) + 1.0
        kind = variables[w].attr[1]
        for _ in range(3):
            v = random_direction(kind, env[w].shape, rng)
            an = float(np.sum(g * v))
            worst_w = max(worst_w, best_fd_error(
                functools.partial(_emitted_fd, mod, args, env, variables[w], v), an, scale))
        lines.append(f"grad_{w}: max relative error vs finite differences {worst_w:.1e}")
        worst = max(worst, worst_w)
    ok = worst < 1e-5
    lines.append(f"verify: {'ok' if ok else 'FAILED'} (max relative error {worst:.1e})")
    return VerifyReport(ok, "\n".join(lines), worst)
