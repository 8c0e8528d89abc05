"""Total derivatives along a path: f(x(u(t))) with the inner functions given explicitly
(`--define x=A*u --define u=exp(t)*v`), written as the chain rule of the notes,
df/dt = J_f·J_x·J_u, each Jacobian in matrix form, then the product simplified."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import DerivationError
from ..ir import expr as E
from ..language.shapes import default_kind
from ..language.typecheck import Typed, typecheck_system
from .gradient import derive
from .jacobian import jacobian


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
    """NAME=EXPR items in order. The same definition twice is fine; two different definitions
    of one name are an error (never "the last one wins")."""
    out: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise DerivationError(f"--define expects NAME=EXPR, got {item!r} (e.g. x=A*u)")
        name, text = (s.strip() for s in item.split("=", 1))
        if not name.isidentifier():
            raise DerivationError(f"--define: {name!r} is not a variable name")
        if not text:
            raise DerivationError(f"--define {name}= gives no expression: write {name}=EXPR")
        if name in seen:
            if seen[name] != text:
                raise DerivationError(f"--define defines {name} twice ({name}={seen[name]} and "
                                      f"{name}={text}): keep one")
            continue
        seen[name] = text
        out.append((name, text))
    return out


_NAME = re.compile(r"[^\W\d]\w*")


def _cycle(definitions: list[tuple[str, str]]) -> list[str] | None:
    """A chain of definitions that leads back to its start (x → u → v → x), if any."""
    refs = {name: [n for n in dict.fromkeys(_NAME.findall(text))]
            for name, text in definitions}
    graph = {name: [n for n in names if n in refs] for name, names in refs.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for nxt in graph[name]:
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in graph:
        if name not in state:
            found = visit(name, [])
            if found:
                return found
    return None


def _check_parameter(expr: str, t: str, definitions, types: dict) -> None:
    """--along T needs a scalar T: a name declared or read as a vector or matrix is refused
    rather than silently turned into a scalar (x'*A*x --along A is not A·xᵀx)."""
    if any(name == t for name, _ in definitions):
        raise DerivationError(f"{t} is the path parameter of --along; it cannot also be given "
                              f"by --define {t}=…")
    kind = types.get(t)
    if kind is None:
        kind = default_kind(t)
        # a name that reads as a vector (h–z) but appears only inside the definitions is the
        # path parameter by intent (x = t*v): the scalar reading stands
        if kind == "vector" and t not in _NAME.findall(expr):
            return
    if kind != "scalar":
        article = "an" if kind[0] in "aeiou" else "a"
        raise DerivationError(f"{t} is {article} {kind}; --along needs a scalar parameter "
                              f"(declare --let {t}:scalar if {t} is meant as one)")


def along(expr: str, t: str, definitions: list[tuple[str, str]], types=None) -> ChainResult:
    types = dict(types or {})
    if not t.isidentifier():
        raise DerivationError(f"--along: {t!r} is not a variable name")
    _check_parameter(expr, t, definitions, types)
    cycle = _cycle(definitions)
    if cycle:
        raise DerivationError("definitions form a cycle: " + " → ".join(cycle)
                              + " (each name must end in variables that are not defined)")
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
