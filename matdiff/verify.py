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
    checked: bool = True  # False: no point to verify at (ok is then False too)


def verify_module(derivation, source: str, seed: int = 7) -> VerifyReport:
    """The emitted f against the independent evaluator, the emitted gradients against
    central finite differences of the emitted f, at random kind-respecting data where every
    operation is defined (the self-check's rule: a NaN comparison is a failure, and no point
    means "could not verify", never a pass)."""
    import warnings

    import numpy as np

    from .numeric import (
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
            scale = abs(value) + 1.0
            kind = variables[w].attr[1]
            for _ in range(3):
                v = random_direction(kind, env[w].shape, rng)
                an = float(np.sum(g * v))
                worst_w = worst_of(worst_w, best_fd_error(
                    functools.partial(_emitted_fd, mod, args, env, variables[w], v), an, scale))
            lines.append(f"grad_{w}: max relative error vs finite differences {worst_w:.1e}")
            worst = worst_of(worst, worst_w)
    ok = worst < 1e-5  # False for NaN
    lines.append(f"verify: {'ok' if ok else 'FAILED'} (max relative error {worst:.1e})")
    return VerifyReport(ok, "\n".join(lines), worst)
