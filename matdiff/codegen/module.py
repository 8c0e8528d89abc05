"""The emitted module: f, grad_NAME, f_and_grad and the extras (jac_, hess_, hvp_), with
docstrings stating formulas, shapes and the rules at undefined points, and argument checks
that cost well under a microsecond. The same module for every target: the backend
(codegen/backends/numpy.py, jax.py, torch.py) supplies its imports, helpers, reserved names,
argument checks and the spelling of the function bodies (a backend-neutral Plan,
codegen/plan.py); `module_source(derivation, extras, target)` writes it."""

from __future__ import annotations

import types
from dataclasses import dataclass

from ..errors import DerivationError
from ..ir import expr as E
from ..present.report import shared_intermediates
from ..printing.text import to_text
from . import backends
from .backends.numpy import check_lines, inputs_function
from .body import tuple_text
from .naming import function_name, python_name

__all__ = ["Extra", "check_lines", "extras_module", "inputs_function", "module_source",
           "numpy_module"]


class _Emitter:
    def __init__(self, derivation, extras=(), one_blas=False, backend=None):
        self.d = derivation
        self.backend = backend or backends.get("numpy")
        self.one_blas = one_blas  # every product through SciPy's BLAS (see _mm in HELPERS)
        self.taken: set[str] = set(self.backend.reserved) | {
            function_name("grad_", w) for w in derivation.wrt} | {x.name for x in extras}
        self.var_py = {name: python_name(name, self.taken)
                       for name in derivation.typed.variables}
        for x in extras:  # a direction V is a parameter of its own function only
            if x.direction is not None:
                self.var_py[x.direction.attr[0]] = python_name(x.direction.attr[0],
                                                               set(self.taken))
        self.dims: dict[E.Dim, str] = {}
        for name, v in derivation.typed.variables.items():
            for axis, d in enumerate(v.shape):
                if d is not E.ONE and d not in self.dims:
                    self.dims[d] = f"{self.var_py[name]}.shape[{axis}]"
        roots = [derivation.f] + [derivation.gradients[w] for w in derivation.wrt] + [
            x.root for x in extras]
        # a product size (m·p of kron, m·n of vec) is the product of its factors' sizes
        grown = True
        while grown:
            grown = False
            for d, (a, b) in list(E.PRODUCTS.items()):
                if d not in self.dims and a in self.dims and b in self.dims:
                    self.dims[d] = f"({self.dims[a]} * {self.dims[b]})"
                    grown = True
        free = {d for r in roots for n in E.walk(r) for d in n.shape
                if d is not E.ONE and d not in self.dims}
        if free:
            raise DerivationError(
                f"the size {', '.join(sorted(d.name for d in free))} is fixed by no variable "
                "(only by a constant such as vector(…) or eye), so generated code cannot know it")
        grads = [derivation.gradients[w] for w in derivation.wrt]
        self.labels = {x.node: x.name for x in shared_intermediates([derivation.f] + grads)}
        self.uses_scipy = False

    def body(self, roots: list[E.Node]) -> tuple[list[str], list[str]]:
        """Assignment lines computing every root once; returns (lines, root expressions)."""
        return self.backend.body(self, roots).run()


def _shape_words(shape) -> str:
    rows, cols = shape
    if rows is E.ONE and cols is E.ONE:
        return "a float"
    if rows is E.ONE or cols is E.ONE:
        return f"{(cols if rows is E.ONE else rows).name}-vector"
    return f"{rows.name}×{cols.name} matrix"


def _returns(n: E.Node) -> str:
    words = _shape_words(n.shape)
    return words if n.is_scalar else ("an " if words[0] in "aeiofhlmnrsx" else "a ") + words


def _formula_doc(name: str, node: E.Node, labels: dict[E.Node, str]) -> str:
    """`name = formula (its shape)`; a long formula is written with the intermediates the
    function body names (a1 = W1*x, h1 = tanh(a1), …), as the derivation's where block."""
    text = to_text(node)
    if len(text) <= 90 or not labels:
        return f"{name} = {text} ({_returns(node)})"
    present = {n for n in E.postorder(node)}
    named = [(n, label) for n, label in labels.items() if n in present]
    placeholders = {n: E.var(label, "matrix" if n.kind == "matrix" else n.kind, n.shape)
                    for n, label in named}
    lines = [f"{name} = {to_text(E.substitute(node, placeholders))} ({_returns(node)})",
             "    where"]
    for n, label in named:  # each definition in terms of the earlier ones
        inner = {m: p for m, p in placeholders.items() if m is not n}
        lines.append(f"        {label} = {to_text(E.substitute(n, inner))}")
    return "\n".join(lines)


_KIND_WORDS = {"symmetric": "symmetric ", "spd": "symmetric positive definite "}


def _variable_doc(name: str, v: E.Node) -> str:
    """`x: vector of size n`, `A: m×n matrix`, `S: symmetric positive definite n×n matrix`."""
    shape = E.shape_text(v.shape)
    if v.kind == "matrix":
        shape += " matrix"
    return f"{name}: {_KIND_WORDS.get(v.attr[1], '')}{shape}"


def _arguments_doc(variables: dict[str, E.Node]) -> str:
    """The keyword arguments with their NumPy shapes, for each emitted docstring."""
    return "Arguments: " + "; ".join(_variable_doc(n, v) for n, v in variables.items()) + "."


@dataclass
class Extra:
    """One more emitted function: jac_NAME, hess_NAME or hvp_NAME(V, **vars)."""

    name: str
    doc: str
    root: E.Node
    direction: E.Node | None = None  # the V of an HVP (a var node)


def extras_module(typed, extras: list[Extra], target: str = "numpy") -> str:
    """A module of f and the extras alone (codegen --jacobian: f and jac_NAME)."""
    program = types.SimpleNamespace(typed=typed, f=typed.root, wrt=[], gradients={})
    return module_source(program, extras, target)


def numpy_module(derivation, extras: list[Extra] = ()) -> str:
    return module_source(derivation, extras, "numpy")


def module_source(derivation, extras: list[Extra] = (), target: str = "numpy") -> str:
    """The module for `target` (numpy, jax or torch): the same functions, keyword arguments
    and docstrings for each. An operator the target cannot spell yet raises CannotLower
    (a MatdiffError naming it), never wrong code."""
    backend = backends.get(target)
    seen: dict[str, Extra] = {}
    for x in extras:  # --wrt x --wrt x --hessian: one hess_x, one hvp_x
        seen.setdefault(x.name, x)
    extras = list(seen.values())
    functions = ["f"] + [function_name("grad_", w) for w in derivation.wrt] + \
        (["f_and_grad"] if derivation.wrt else []) + [x.name for x in extras]
    if len(set(functions)) < len(functions):
        twice = sorted({n for n in functions if functions.count(n) > 1})
        raise DerivationError(
            f"two variables would give the emitted module the same function name "
            f"({', '.join(twice)}): rename one of them")
    source, em = _module(derivation, extras, backend, one_blas=False)
    if em.uses_scipy and backend.one_blas_rerun:
        # a factorization is shared: keep every BLAS call in SciPy's OpenBLAS
        source, em = _module(derivation, extras, backend, one_blas=True)
    return source


def _module(derivation, extras: list[Extra], backend,
            one_blas: bool) -> tuple[str, _Emitter]:
    em = _Emitter(derivation, extras, one_blas, backend)
    d = derivation
    f_text = to_text(d.f)
    names = list(d.typed.variables)
    unpacked = [em.var_py[n] for n in names] + list(backend.bound)  # + _dt, … of a backend
    head = f"    {', '.join(unpacked)}{',' if len(unpacked) == 1 else ''} = _inputs(vars)"

    arguments = _arguments_doc(d.typed.variables)

    params = backend.parameters(d.typed.variables, em.var_py)
    everywhere = backend.checks_everywhere(d.typed.variables, em.var_py)

    def checks(inline: bool) -> list[str]:
        return backend.inline_checks(d.typed.variables, em.var_py) if inline or everywhere \
            else [head]

    def function(name: str, doc: str, roots: list[E.Node], ret: str,
                 inline_checks: bool = False) -> list[str]:
        body, exprs = em.body(roots)
        out = [f"def {name}({params}):", f'    """{doc}', "", f"    {arguments}", '    """'] + \
            checks(inline_checks) + body
        out.append("    return " + ret.format(*[backend.out(r, e) for r, e in zip(roots, exprs)]))
        return out + ["", ""]

    functions = function("f", f"f = {f_text} ({_returns(d.f)})", [d.f], "{0}")
    for w in d.wrt:
        g = d.gradients[w]
        functions += function(function_name("grad_", w),
                              _formula_doc(f"∂f/∂{w}", g, em.labels), [g], "{0}")
    grads = [d.gradients[w] for w in d.wrt]
    pairs = ", ".join(f"{w!r}: {{{i + 1}}}" for i, w in enumerate(d.wrt))
    if d.wrt:
        functions += function("f_and_grad",
                              "(f, {" + ", ".join(f"{w!r}: ∂f/∂{w}" for w in d.wrt) +
                              "}) from one shared forward pass",
                              [d.f] + grads, "{0}, {{" + pairs + "}}", inline_checks=True)
    for extra in extras:
        body, exprs = em.body([extra.root])
        if extra.direction is None:
            out = [f"def {extra.name}({params}):", f'    """{extra.doc}"""'] + checks(False)
        else:
            out = [f"def {extra.name}({em.var_py[extra.direction.attr[0]]}, {params}):",
                   f'    """{extra.doc}"""'] + checks(False) + _direction_check(em, extra)
        functions += out + body + [f"    return {backend.out(extra.root, exprs[0])}", "", ""]

    trailer = backend.trailer(em)
    code = "\n".join([backend.inputs_function(d.typed.variables, em.var_py), "", ""] +
                     functions + trailer)
    helpers = backend.for_code(code, em)
    lines = [
        f'"""Generated by matdiff for f = {f_text}',
        "",
        "Variables: " + "; ".join(_variable_doc(n, v) for n, v in d.typed.variables.items())
        + ".",
    ]
    lines += [f"∂f/∂{w} = {to_text(d.gradients[w])}" for w in d.wrt]
    lines += [backend.values_sentence]
    renamed = [f"{n} is {em.var_py[n]}" for n in names if em.var_py[n] != n]
    if renamed:
        lines += ["Inside the functions (not in their keyword arguments) the variable "
                  + ", ".join(renamed) + "."]
    defined = {function_name("grad_", w) for w in d.wrt} | {x.name for x in extras}
    called = [f"{function_name(p, w)} is {p}{w}" for w in names
              for p in ("grad_", "hess_", "hvp_", "jac_")
              if function_name(p, w) != p + w and function_name(p, w) in defined]
    if called:
        lines += ["Python identifiers cannot spell every name: " + ", ".join(called) + "."]
    lines += [""] + backend.undefined_doc(d.typed.variables, code) + ['"""', ""]
    lines += backend.imports("\n".join(helpers + [code]))
    for text in helpers:
        lines += ["", "", text]
    lines += ["", "", code]
    return "\n".join(lines).rstrip() + "\n", em


def _direction_check(em: _Emitter, extra: Extra) -> list[str]:
    """An HVP direction checked as the arguments are: real, and the shape of its variable."""
    direction = extra.direction
    v = em.var_py[direction.attr[0]]
    name = direction.attr[0]
    if direction.is_scalar:
        return em.backend.direction_lines(v, name, True, "", "")
    variables = em.d.typed.variables
    of = next((w for w in variables if function_name("hvp_", w) == extra.name),
              next(w for w, x in variables.items() if x.shape == direction.shape))
    dims = [em.dims[d] for d in direction.shape if d is not E.ONE]
    expected = tuple_text(dims)
    return em.backend.direction_lines(v, name, False, of, expected)
