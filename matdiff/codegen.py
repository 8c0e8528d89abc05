"""NumPy code generation: a self-contained module with f, grad_NAME and f_and_grad.

Inside the emitted functions vectors are n×1 columns (so every product is an `@`), scalars
are floats; the public boundary takes and returns 1-D vectors and floats (SPEC §2). Every
subexpression used more than once is computed once (common-subexpression elimination over f
and all gradients together), and named as in the derivation's `where` block (a1, h1, …)."""

from __future__ import annotations

import keyword
import types
import unicodedata
from dataclasses import dataclass

from . import expr as E
from .errors import DerivationError
from .ops import ELEMENTWISE
from .printing.report import shared_intermediates
from .printing.text import to_text

HELPERS = '''
def _sigmoid(z):
    # stable for large |z|: 1/(1+exp(-z)) = exp(-log(1+exp(-z)))
    return np.exp(-np.logaddexp(0.0, -z))


def _dsigmoid(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


def _logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def _logdet(x):
    sign, value = np.linalg.slogdet(x)
    return value if sign > 0 else np.nan
'''


def _numpy_template(name: str) -> str:
    template = ELEMENTWISE[name].numpy
    return template.replace("sp.expit(", "_sigmoid(")


def function_name(prefix: str, name: str) -> str:
    """grad_NAME as SPEC §2 says (grad_lambda is fine even though lambda is a keyword)."""
    candidate = prefix + name
    if candidate.isidentifier() and unicodedata.normalize("NFKC", candidate) == candidate:
        return candidate
    return prefix + python_name(name, set())


def python_name(name: str, taken: set[str]) -> str:
    ok = name.isidentifier() and not keyword.iskeyword(name) and \
        unicodedata.normalize("NFKC", name) == name and not name.startswith("_")
    base = name if ok else "v_" + "".join(c if c.isalnum() and c.isascii() else "_" for c in name)
    out, i = base, 1
    while out in taken:
        i += 1
        out = f"{base}{i}"
    taken.add(out)
    return out


@dataclass
class _Ctx:
    names: dict[E.Node, str]  # materialised nodes → Python variable
    dims: dict[E.Dim, str]  # symbolic dimension → expression giving its size


def _dim(ctx: _Ctx, d: E.Dim) -> str:
    return "1" if d is E.ONE else ctx.dims[d]


def _shape(ctx: _Ctx, shape) -> str:
    return f"({_dim(ctx, shape[0])}, {_dim(ctx, shape[1])})"


def _lower(ctx: _Ctx, n: E.Node, a: list[str]) -> str:
    """A NumPy expression for node n, given its arguments' expressions."""
    op = n.op
    if op == "add":
        return "(" + " + ".join(a) + ")"
    if op == "scale":
        return f"({a[0]} * {a[1]})"
    if op == "matmul":
        text = " @ ".join(a)
        return f"({text})[0, 0]" if n.is_scalar else f"({text})"
    if op == "transpose":
        return f"{a[0]}.T"
    if op == "inv":
        return f"np.linalg.inv({a[0]})"
    if op == "matpow":
        return f"np.linalg.matrix_power({a[0]}, {n.attr})"
    if op in ("pow", "epow"):
        return f"({a[0]} ** {a[1]})"
    if op == "hadamard":
        return "(" + " * ".join(a) + ")"
    if op == "hdiv":
        return f"({a[0]} / {a[1]})"
    if op == "fn":
        return _numpy_template(n.attr).format(x=a[0])
    if op == "tr":
        return f"np.trace({a[0]})"
    if op == "det":
        return f"np.linalg.det({a[0]})"
    if op == "logdet":
        return f"_logdet({a[0]})"
    if op == "sum":
        return f"np.sum({a[0]})"
    if op == "norm1":
        return f"np.sum(np.abs({a[0]}))"
    if op == "norm2":
        return f"np.linalg.norm({a[0]})"
    if op == "logsumexp":
        return f"_logsumexp({a[0]})"
    if op == "softmax":
        return f"_softmax({a[0]})"
    if op == "diag_embed":
        return f"np.diag({a[0]}[:, 0])"
    if op == "diag_extract":
        return f"np.diag({a[0]}).reshape(-1, 1)"
    if op == "const":
        return repr(float(n.attr))
    if op == "zero":
        return f"np.zeros({_shape(ctx, n.shape)})"
    if op == "ones":
        return f"np.ones({_shape(ctx, n.shape)})"
    if op == "eye":
        return f"np.eye({_dim(ctx, n.shape[0])})"
    if op == "dnode":
        return a[0]
    raise NotImplementedError(op)


class _Emitter:
    def __init__(self, derivation):
        self.d = derivation
        self.taken: set[str] = {"np", "vars", "f", "f_and_grad"} | {
            function_name("grad_", w) for w in derivation.wrt}
        self.var_py = {name: python_name(name, self.taken)
                       for name in derivation.typed.variables}
        self.dims: dict[E.Dim, str] = {}
        for name, v in derivation.typed.variables.items():
            for axis, d in enumerate(v.shape):
                if d is not E.ONE and d not in self.dims:
                    self.dims[d] = f"{self.var_py[name]}.shape[{axis}]"
        roots = [derivation.f] + [derivation.gradients[w] for w in derivation.wrt]
        free = {d for r in roots for n in E.walk(r) for d in n.shape
                if d is not E.ONE and d not in self.dims}
        if free:
            raise DerivationError(
                f"the size {', '.join(sorted(d.name for d in free))} is fixed by no variable "
                "(only by a constant such as vector(…) or eye), so generated code cannot know it")
        grads = [derivation.gradients[w] for w in derivation.wrt]
        self.labels = {x.node: x.name for x in shared_intermediates([derivation.f] + grads)}

    def body(self, roots: list[E.Node]) -> tuple[list[str], list[str]]:
        """Assignment lines computing every root once; returns (lines, root expressions)."""
        uses: dict[E.Node, int] = {}
        order: list[E.Node] = []
        seen: set[E.Node] = set()
        for r in roots:
            for n in E.postorder(r):
                if n not in seen:
                    seen.add(n)
                    order.append(n)
                    for a in n.args:
                        uses[a] = uses.get(a, 0) + 1
        for r in roots:
            uses[r] = uses.get(r, 0) + 2
        ctx = _Ctx({}, self.dims)
        taken = set(self.taken)  # temporaries are local to each function
        exprs: dict[E.Node, str] = {}
        lines: list[str] = []
        counter = 0
        for n in order:
            if n.op == "var":
                exprs[n] = self.var_py[n.attr[0]]
                continue
            args = [exprs[a] for a in n.args]
            text = _lower(ctx, n, args)
            if uses.get(n, 0) >= 2 and n.op not in ("const", "transpose") or n in self.labels:
                label = self.labels.get(n)
                if label is None:
                    counter += 1
                    label = f"t{counter}"
                name = python_name(label.replace("∂f/∂", "g_"), taken)
                lines.append(f"    {name} = {_strip(text)}")
                ctx.names[n] = name
                exprs[n] = name
            else:
                exprs[n] = text
        return lines, [exprs[r] for r in roots]


def _strip(text: str) -> str:
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        return text[1:-1]
    return text


def _out(node: E.Node, expr: str) -> str:
    kind = node.kind
    if kind == "scalar":
        return f"float({expr})"
    if kind == "vector":
        return f"np.ravel({expr})"
    return expr


def _ndim(v: E.Node) -> int:
    return {"scalar": 0, "vector": 1}.get(v.kind, 2)


def numpy_module(derivation) -> str:
    em = _Emitter(derivation)
    d = derivation
    f_text = to_text(d.f)
    lines = [
        f'"""Generated by matdiff for f = {f_text}',
        "",
        "Variables: " + ", ".join(f"{n} ({v.attr[1]}, {E.shape_text(v.shape)})"
                                  for n, v in d.typed.variables.items()) + ".",
    ]
    for w in d.wrt:
        lines.append(f"∂f/∂{w} = {to_text(d.gradients[w])}")
    lines += [
        "Vectors are 1-D arrays, matrices 2-D arrays, scalars floats.",
        '"""',
        "",
        "import numpy as np",
        "",
        "_VARIABLES = {" + ", ".join(f"{n!r}: ({v.attr[1]!r}, {_ndim(v)})"
                                     for n, v in d.typed.variables.items()) + "}",
        "",
        HELPERS.strip("\n"),
        "",
        "",
        _INPUTS,
    ]
    unpack = ", ".join(em.var_py[n] for n in d.typed.variables)
    names = list(d.typed.variables)
    shapes = {n: [s.name for s in v.shape if s is not E.ONE] for n, v in d.typed.variables.items()}
    head = (f"    {unpack}{',' if len(names) == 1 else ''} = _inputs(vars, {names!r}, "
            f"{shapes!r})")

    def function(name: str, doc: str, roots: list[E.Node], ret: str) -> list[str]:
        body, exprs = em.body(roots)
        out = [f"def {name}(**vars):", f'    """{doc}"""', head] + body
        out.append("    return " + ret.format(*[_out(r, e) for r, e in zip(roots, exprs)]))
        return out + ["", ""]

    lines += function("f", f"f = {f_text}", [d.f], "{0}")
    for w in d.wrt:
        lines += function(function_name("grad_", w),
                          f"∂f/∂{w} = {to_text(d.gradients[w])}", [d.gradients[w]], "{0}")
    grads = [d.gradients[w] for w in d.wrt]
    pairs = ", ".join(f"{w!r}: {{{i + 1}}}" for i, w in enumerate(d.wrt))
    lines += function("f_and_grad", "(f, {name: gradient}) from one shared forward pass",
                      [d.f] + grads, "{0}, {{" + pairs.replace("{", "{{").replace("}}", "}")
                      .replace("{{", "{") + "}}")
    return "\n".join(lines).rstrip() + "\n"


_INPUTS = '''def _inputs(given, names, shapes):
    """Arguments as arrays (vectors as columns), checked against the expression's shapes."""
    missing = [n for n in names if n not in given]
    if missing:
        raise TypeError("missing argument(s): " + ", ".join(missing))
    extra = [n for n in given if n not in names]
    if extra:
        raise TypeError("unexpected argument(s): " + ", ".join(extra))
    sizes = {}
    out = []
    for n in names:
        kind, ndim = _VARIABLES[n]
        value = np.asarray(given[n], dtype=float)
        if value.ndim != ndim:
            raise ValueError(f"{n} must be a {kind} ({ndim}-D array), got shape {value.shape}")
        for dim, size in zip(shapes[n], value.shape):
            if sizes.setdefault(dim, size) != size:
                raise ValueError(f"{n} has size {size} along {dim}, expected {sizes[dim]} "
                                 f"(shape {value.shape})")
        if kind in ("symmetric", "spd") and value.shape[0] != value.shape[1]:
            raise ValueError(f"{n} must be square, got shape {value.shape}")
        out.append(float(value) if ndim == 0 else value.reshape(-1, 1) if ndim == 1 else value)
    return out'''


def load_module(source: str, name: str = "matdiff_generated"):
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


@dataclass
class VerifyReport:
    ok: bool
    text: str
    max_error: float


def verify_module(derivation, source: str, seed: int = 7) -> VerifyReport:
    """The emitted f against the independent evaluator, the emitted gradients against
    central finite differences of the emitted f, on random kind-respecting data."""
    import numpy as np

    from .numeric import dim_sizes, evaluate, find_data, from_public, random_direction, to_public

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
        floor = 1e-5 * (1.0 + abs(value))  # f and its gradient may be ~0 (e.g. sum of softmax)
        kind = variables[w].attr[1]
        for _ in range(3):
            v = random_direction(kind, env[w].shape, rng)
            eps = 1e-6
            plus, minus = dict(args), dict(args)
            plus[w] = to_public(env[w] + eps * v, variables[w].shape)
            minus[w] = to_public(env[w] - eps * v, variables[w].shape)
            fd = (mod.f(**plus) - mod.f(**minus)) / (2 * eps)
            an = float(np.sum(g * v))
            worst_w = max(worst_w, abs(fd - an) / max(abs(fd), abs(an), floor))
        lines.append(f"grad_{w}: max relative error vs finite differences {worst_w:.1e}")
        worst = max(worst, worst_w)
    ok = worst < 1e-5
    lines.append(f"verify: {'ok' if ok else 'FAILED'} (max relative error {worst:.1e})")
    return VerifyReport(ok, "\n".join(lines), worst)
