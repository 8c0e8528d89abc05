"""The functions of the expression language: each name a user can call, its arity, the type
checker's shape rule, and the IR it builds. The grammar's function token, the type checker and
the hints read this table, so a function exists in the language exactly when it is declared
here (next to its operator)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

# the type checker's shape rules a call may name (methods `_<rule>` of typecheck._Checker)
SHAPE_RULES = ("elementwise", "square_to_scalar", "any_to_scalar", "nonscalar_to_scalar",
               "softmax", "diag", "inv", "broadcast", "kron", "vec", "unvec", "blockdot",
               "blocksum", "square", "pinv", "frechet", "eigvec",
               "needs_axis", "reduce_axis", "keep_axis", "size_axis")


@dataclass(frozen=True)
class Call:
    name: str  # as written: tr, logdet, sigmoid
    shape: str  # one of SHAPE_RULES
    build: Callable  # (argument node(s)..., result shape) -> IR node
    arity: int = 1
    # name(X, d) with d = 1 (down the columns) or 2 (along the rows), MATLAB style:
    # build(x, d, result shape) -> IR node, typed by the shape rule axis_shape
    axis: Callable | None = None
    axis_shape: str | None = None


CALLS: dict[str, Call] = {}
ALIASES = {"σ": "sigmoid"}  # other spellings of a declared name
# SPEC §4 reserves these for functions to come: a call is refused (never read as a variable)
RESERVED: tuple[str, ...] = ()


def declare_call(call: Call) -> Call:
    for rule in (call.shape, call.axis_shape):
        if rule is not None and rule not in SHAPE_RULES:
            raise ValueError(f"unknown shape rule {rule!r} for {call.name}")
    if call.name in CALLS:
        raise ValueError(f"function '{call.name}' is declared twice")
    CALLS[call.name] = call
    return call


def declare_axis_form(name: str, build: Callable, shape: str) -> Call:
    """Give the declared function `name` its form name(X, d) (ops/axes.py)."""
    if shape not in SHAPE_RULES:
        raise ValueError(f"unknown shape rule {shape!r} for {name}")
    call = CALLS[name] = replace(CALLS[name], axis=build, axis_shape=shape)
    return call


def function_names() -> tuple[str, ...]:
    """Every name that is a call in the language (declared, aliases and reserved)."""
    return tuple(CALLS) + tuple(ALIASES) + RESERVED


def canonical(name: str) -> str:
    return ALIASES.get(name, name)
