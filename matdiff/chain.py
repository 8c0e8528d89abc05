"""Total derivatives along a path: f(x(u(t))) with the inner functions given explicitly
(`--define x=A*u --define u=exp(t)*v`), written as the chain rule of the notes,
df/dt = J_f·J_x·J_u, each Jacobian in matrix form, then the product simplified."""

from __future__ import annotations

from dataclasses import dataclass

from . import expr as E
from .errors import DerivationError
from .gradient import derive
from .jacobian import jacobian
from .typecheck import Typed, typecheck_system


@dataclass
class Link:
    name: str  # the variable this factor differentiates by (x, u, t)
    of: str  # what is differentiated (f, x, u)
    jacobian: E.Node


@dataclass
class ChainResult:
    typed: Typed  # f with every definition substituted
    along: str
    links: list[Link]
    total: E.Node  # df/dt
    checked: bool
    max_error: float
    main: E.Node | None = None  # f as written, before substitution
    definitions: dict | None = None  # name → its definition (IR)


def parse_definitions(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        if "=" not in item:
            raise DerivationError(f"--define expects NAME=EXPR, got {item!r}")
        name, text = (s.strip() for s in item.split("=", 1))
        if not name.isidentifier():
            raise DerivationError(f"--define: {name!r} is not a variable name")
        out.append((name, text))
    return out


def along(expr: str, t: str, definitions: list[tuple[str, str]], types=None) -> ChainResult:
    types = dict(types or {})
    types.setdefault(t, "scalar")  # the path parameter is a scalar unless declared
    main, defs = typecheck_system(expr, definitions, types)
    variables = dict(main.variables)
    for typed in defs.values():
        variables.update(typed.variables)
    if t not in variables:
        raise DerivationError(f"'{t}' appears neither in the expression nor in a definition",
                              None, expr)
    if not variables[t].is_scalar:
        raise DerivationError(f"{t} must be a scalar to differentiate along it")
    # substitute the definitions until none is left (a cycle is an error)
    mapping = {variables[name]: typed.root for name, typed in defs.items()}
    root = main.root
    for _ in range(len(mapping) + 1):
        nxt = E.substitute(root, mapping)
        if nxt is root:
            break
        root = nxt
    else:
        raise DerivationError("the definitions refer to each other in a cycle")
    remaining = {n: v for n, v in variables.items() if n not in defs and n in E.free_vars(root)}
    whole = Typed(root, expr, remaining)
    if root.is_scalar:
        result = derive(whole, [t])
        total, checked, err = result.gradients[t], result.checked, result.max_error
    else:
        result = jacobian(whole, t)
        total, checked, err = result.result, result.checked, result.max_error
    links = _links(main, defs, t)
    return ChainResult(whole, t, links, total, checked, err, main.root,
                       {name: typed.root for name, typed in defs.items()})


def _links(main: Typed, defs: dict[str, Typed], t: str) -> list[Link]:
    """The chain f → x → u → … → t, when each level depends on one defined variable."""
    links = []
    current, label = main, "f"
    seen = set()
    while True:
        inner = [n for n in defs if n in E.free_vars(current.root) and n not in seen]
        if len(inner) != 1 or t in E.free_vars(current.root):
            target = t if t in E.free_vars(current.root) and not inner else None
            if target is None:
                return links if not inner else []  # not a single chain: show the total only
            links.append(Link(target, label, jacobian(current, target).result))
            return links
        name = inner[0]
        seen.add(name)
        links.append(Link(name, label, jacobian(current, name).result))
        current, label = defs[name], name
