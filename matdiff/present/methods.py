"""The derivation in one of the notes' methods: trace (the default), backprop, jacobian."""

from __future__ import annotations


def method_steps(result, method: str = "trace"):
    from .backprop import backprop_method
    from .chain_steps import jacobian_method
    from .steps import trace_method

    build = {"trace": trace_method, "backprop": backprop_method, "jacobian": jacobian_method}
    return build[method](result)
