"""The emitted module: f, grad_NAME, f_and_grad and the extras (jac_, hess_, hvp_), with
docstrings stating formulas, shapes and the rules at undefined points, and argument checks
that cost well under a microsecond. The function bodies come from the backend
(codegen/backends/numpy.py) spelling a backend-neutral Plan (codegen/plan.py)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from .. import expr as E
from ..errors import DerivationError
from ..printing.report import shared_intermediates
from ..printing.text import to_text
from .backends.numpy import RESERVED, NumpyBody, helpers_for, size_name
from .naming import function_name, python_name


class _Emitter:
    def __init__(self, derivation, extras=(), one_blas=False):
        self.d = derivation
        self.one_blas = one_blas  # every product through SciPy's BLAS (see _mm in HELPERS)
        self.taken: set[str] = set(RESERVED) | {
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
        return NumpyBody(self, roots).run()


def _out(node: E.Node, expr: str) -> str:
    kind = node.kind
    if kind == "scalar":
        return f"float({expr})"
    return expr


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


def numpy_module(derivation, extras: list[Extra] = ()) -> str:
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
    source, em = _module(derivation, extras, one_blas=False)
    if em.uses_scipy:  # a factorization is shared: keep every BLAS call in SciPy's OpenBLAS
        source, em = _module(derivation, extras, one_blas=True)
    return source


def _undefined_doc(variables: dict[str, E.Node], code: str) -> list[str]:
    """How the functions answer where f is undefined, as far as this module is concerned."""
    out = ["Where f is undefined the functions answer as NumPy does."]
    if "_lu(" in code or "_logdet(" in code or "cho_factor" in code:
        out.append("A singular matrix that must be inverted, solved with or log-determined "
                   "raises numpy.linalg.LinAlgError, as np.linalg.inv does (so does an spd "
                   "argument that is not positive definite); the log-determinant of a matrix "
                   "whose determinant is negative is nan.")
    if any(v.kind == "scalar" for v in variables.values()):
        out.append("Scalar arithmetic follows IEEE rules: 1/0 = inf, (-1)^0.5 = nan, "
                   "10^1000 = inf.")
    if any(v.attr[1] in ("symmetric", "spd") for v in variables.values()):
        out.append("A symmetric (or spd) argument that is not symmetric beyond round-off "
                   "raises ValueError.")
    out.append("Complex, non-numeric or empty input raises TypeError or ValueError naming the "
               "argument.")
    return textwrap.wrap(" ".join(out), 92)


def _module(derivation, extras: list[Extra], one_blas: bool) -> tuple[str, _Emitter]:
    em = _Emitter(derivation, extras, one_blas)
    d = derivation
    f_text = to_text(d.f)
    unpack = ", ".join(em.var_py[n] for n in d.typed.variables)
    names = list(d.typed.variables)
    head = f"    {unpack}{',' if len(names) == 1 else ''} = _inputs(vars)"

    arguments = _arguments_doc(d.typed.variables)

    def function(name: str, doc: str, roots: list[E.Node], ret: str,
                 inline_checks: bool = False) -> list[str]:
        body, exprs = em.body(roots)
        checks = [head] if not inline_checks else [
            "    # the checks of _inputs, inline (a call costs ~0.5 µs at small sizes)",
            "    _ndarray, _f64 = np.ndarray, _F64"] + check_lines(d.typed.variables, em.var_py,
                                                               "vars")
        out = [f"def {name}(**vars):", f'    """{doc}', "", f"    {arguments}", '    """'] + \
            checks + body
        out.append("    return " + ret.format(*[_out(r, e) for r, e in zip(roots, exprs)]))
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
            out = [f"def {extra.name}(**vars):", f'    """{extra.doc}"""', head]
        else:
            out = [f"def {extra.name}({em.var_py[extra.direction.attr[0]]}, **vars):",
                   f'    """{extra.doc}"""', head] + _direction_check(em, extra)
        functions += out + body + [f"    return {_out(extra.root, exprs[0])}", "", ""]

    code = "\n".join([inputs_function(d.typed.variables, em.var_py), "", ""] + functions)
    helpers = helpers_for(code)
    lines = [
        f'"""Generated by matdiff for f = {f_text}',
        "",
        "Variables: " + "; ".join(_variable_doc(n, v) for n, v in d.typed.variables.items())
        + ".",
    ]
    lines += [f"∂f/∂{w} = {to_text(d.gradients[w])}" for w in d.wrt]
    lines += ["Vectors are 1-D arrays, matrices 2-D arrays, scalars floats."]
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
    lines += [""] + _undefined_doc(d.typed.variables, code) + ['"""', "", "import numpy as np"]
    if any("sla." in text for text in helpers + [code]):
        lines.append("import scipy.linalg as sla")
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
        return [f"    if type({v}) is not float:", f"        {v} = _scalar({v}, {name!r})"]
    variables = em.d.typed.variables
    of = next((w for w in variables if function_name("hvp_", w) == extra.name),
              next(w for w, x in variables.items() if x.shape == direction.shape))
    dims = [em.dims[d] for d in direction.shape if d is not E.ONE]
    expected = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    return [f"    if type({v}) is not np.ndarray or {v}.dtype is not _F64:",
            f"        {v} = _array({v}, {name!r})",
            f"    if {v}.shape != {expected}:",
            f"        _direction_error({name!r}, {v}.shape, {of!r}, {expected})"]


def check_lines(variables: dict[str, E.Node], py: dict[str, str], given: str) -> list[str]:
    """The statements of the argument checks, reading the keyword dictionary `given` and
    binding each argument to its Python name (and each size to _m, _n, …)."""
    names = list(variables)
    pys = [py[n] for n in names]
    out = ['    try:']
    out += [f'        {p} = {given}[{n!r}]' for n, p in zip(names, pys)] or ['        pass']
    out += ['    except KeyError:',
            f'        _argument_error({given}, {names!r})',
            f'    if len({given}) != {len(names)}:',
            f'        _argument_error({given}, {names!r})']
    bound: dict[E.Dim, str] = {}
    source: dict[E.Dim, str] = {}  # the argument that fixed each size
    for name, p in zip(names, pys):
        v = variables[name]
        if v.kind == "scalar":
            out.append(f'    if type({p}) is not float:')
            out.append(f'        {p} = _scalar({p}, {name!r})')
            continue
        out.append(f'    if type({p}) is not _ndarray or {p}.dtype is not _f64:')
        out.append(f'        {p} = _array({p}, {name!r})')
        dims = [d for d in v.shape if d is not E.ONE]
        kind = {"symmetric": "symmetric matrix", "spd": "symmetric positive definite matrix"}.get(
            v.attr[1], v.attr[1])
        symbolic = "(" + ", ".join(d.name for d in dims) + ("," if len(dims) == 1 else "") + ")"
        fail = f'_shape_error({name!r}, {kind!r}, {symbolic!r}, {p}.shape, {len(dims)}'
        fresh = []  # sizes this argument fixes first
        if any(d not in bound for d in dims):
            out.append(f'    if {p}.ndim != {len(dims)}:')
            out.append(f'        {fail})')
            for axis, d in enumerate(dims):
                if d not in bound:
                    bound[d] = size_name(d)
                    source[d] = p
                    out.append(f'    {bound[d]} = {p}.shape[{axis}]')
                    fresh.append(bound[d])
            out.append(f'    if not {" * ".join(fresh)}:')
            out.append(f'        _empty_error({name!r}, {p}.shape)')
        if len(fresh) < len(dims):  # some size is known already (or repeats, as in a square S)
            expected = "(" + ", ".join(bound[d] for d in dims) + ("," if len(dims) == 1 else "") \
                + ")"
            others = list(dict.fromkeys(source[d] for d in dims if source[d] != p))
            py_name = dict(zip(pys, names))
            blame = "".join(f"({py_name[o]!r}, {o}.shape)," for o in others)
            out.append(f'    if {p}.shape != {expected}:')
            out.append(f'        {fail}, {expected}, ({blame}))' if blame else
                       f'        {fail}, {expected})')
        if v.attr[1] in ("symmetric", "spd"):
            out.append(f'    _symmetric({p}, {name!r}, {kind!r}, {v.attr[1] == "spd"})')
    return out


def inputs_function(variables: dict[str, E.Node], py: dict[str, str]) -> str:
    """Straight-line argument checks for this expression's variables: one dictionary lookup
    per argument, an identity test for arrays that are already float64, one tuple comparison
    per shape. The hand-written functions this code competes with check nothing, so the
    checks must cost well under a microsecond; messages are built only on failure."""
    names = list(variables)
    pys = [py[n] for n in names]
    out = ['def _inputs(given, _ndarray=np.ndarray, _f64=_F64):',
           '    """The arguments as arrays, checked against the expression\'s kinds and shapes."""']
    out += check_lines(variables, py, "given")
    out.append(f'    return {", ".join(pys)}{"," if len(names) == 1 else ""}')
    return "\n".join(out)
