"""d(expr): the matrix differential, one rule per operator in the table RULES.

The differential is computed once per node of the expression DAG (shared subexpressions are
differentiated once) and is itself an IR expression, linear in the dX leaves. Subtrees that do
not depend on any variable of interest give zero, which the builders drop on sight."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import expr as E
from .ops import ELEMENTWISE, derivative


@dataclass(frozen=True)
class Rule:
    label: str  # the identity, as a student would cite it
    apply: Callable  # (ctx, node, d) -> differential; d(child) gives a child's differential


class Differentiator:
    """Differentials with respect to the variables `wrt` (by name), memoised per node."""

    def __init__(self, wrt: set[str], record: list | None = None):
        self.wrt = set(wrt)
        self.cache: dict[E.Node, E.Node] = {}
        self.record = record  # receives (rule label, node, differential) when not None

    def __call__(self, node: E.Node) -> E.Node:
        # children first, iteratively, so deep expressions need no deep recursion
        for n in E.postorder(node):
            if n not in self.cache:
                self.cache[n] = self._one(n)
        return self.cache[node]

    def _one(self, node: E.Node) -> E.Node:
        if node.op == "var":
            name = node.attr[0]
            return E.dvar(name, node.shape) if name in self.wrt else E.zero(node.shape)
        if not (E.free_vars(node) & self.wrt):
            return E.zero(node.shape)
        rule = RULES[node.op]
        result = rule.apply(self, node, self.of)
        if self.record is not None:
            self.record.append((rule.label, node, result))
        # A marker keeps d(node) one node of the linear DAG even where sums flatten, so the
        # trace pass can report ∂f/∂node for intermediates (∂l/∂a₂ in a network).
        return E.make("dnode", (result,), None, result.shape) if not E.is_zero(result) \
            else result

    def of(self, node: E.Node) -> E.Node:
        hit = self.cache.get(node)
        return hit if hit is not None else self(node)


def _sum_over(args, build):
    return E.add(*[build(i) for i in range(len(args))])


def _d_matmul(ctx, n, d):
    f = n.args
    return _sum_over(f, lambda i: E.matmul(*f[:i], d(f[i]), *f[i + 1:]))


def _d_hadamard(ctx, n, d):
    f = n.args
    return _sum_over(f, lambda i: E.hadamard(*f[:i], d(f[i]), *f[i + 1:]))


def _d_scale(ctx, n, d):
    c, x = n.args
    return E.add(E.scale(d(c), x), E.scale(c, d(x)))


def _d_inv(ctx, n, d):
    return E.neg(E.matmul(n, d(n.args[0]), n))


def _d_matpow(ctx, n, d):
    x, k = n.args[0], n.attr
    dx = d(x)
    return E.add(*[E.matmul(E.matpow(x, j), dx, E.matpow(x, k - 1 - j)) for j in range(k)])


def _d_pow(ctx, n, d):
    a, b = n.args
    da, db = d(a), d(b)
    by_base = E.scale(E.scale(b, E.power(a, E.add(b, E.const(-1)))), da)
    by_exponent = E.scale(E.scale(n, E.fn("log", a)), db)
    return E.add(by_base, by_exponent)


def _d_epow(ctx, n, d):
    x, p = n.args
    by_base = E.hadamard(E.scale(p, E.epow(x, E.add(p, E.const(-1)))), d(x))
    by_exponent = E.scale(d(p), E.hadamard(n, E.fn("log", x)))
    return E.add(by_base, by_exponent)


def _d_hdiv(ctx, n, d):
    a, b = n.args
    return E.sub(E.hdiv(d(a), b), E.hadamard(E.hdiv(a, E.epow(b, E.const(2))), d(b)))


def _d_fn(ctx, n, d):
    x = n.args[0]
    entry = ELEMENTWISE[n.attr]
    if entry.definition is not None:  # σ' and friends: differentiate what they stand for
        return ctx(entry.definition(x))
    if n.attr == "log" and x.op == "softmax":
        # log softmax(z) = z − 1·logsumexp(z): d = dz − 1 softmax(z)ᵀdz
        z = x.args[0]
        dz = d(z)
        return E.sub(dz, E.scale(E.inner(x, dz), E.ones(z.shape)))
    if n.attr == "log" and x.op == "det":
        return E.trace(E.matmul(E.inv(x.args[0]), d(x.args[0])))
    return E.hadamard(derivative(n.attr, x), d(x))


def _d_det(ctx, n, d):
    x = n.args[0]
    return E.scale(n, E.trace(E.matmul(E.inv(x), d(x))))


def _d_logdet(ctx, n, d):
    x = n.args[0]
    return E.trace(E.matmul(E.inv(x), d(x)))


def _d_norm2(ctx, n, d):
    x = n.args[0]
    return E.scale(E.power(n, E.const(-1)), E.inner(x, d(x)))


def _d_norm1(ctx, n, d):
    x = n.args[0]
    return E.inner(E.fn("sign", x), d(x))


def _d_softmax(ctx, n, d):
    dz = d(n.args[0])
    return E.sub(E.hadamard(n, dz), E.scale(E.inner(n, dz), n))


def _d_logsumexp(ctx, n, d):
    x = n.args[0]
    return E.inner(E.softmax(x) if x.kind == "vector" else _softmax_all(x), d(x))


def _softmax_all(x: E.Node) -> E.Node:
    """exp(X)/sum(exp(X)) for a matrix X (the gradient of logsumexp over all entries)."""
    e = E.fn("exp", x)
    return E.scale(E.power(E.reduction("sum", e), E.const(-1)), e)


def _linear(build):
    """A linear operator L: d L(x) = L(dx)."""
    return lambda ctx, n, d: build(n, *[d(a) for a in n.args])


RULES: dict[str, Rule] = {
    "add": Rule("d(X + Y) = dX + dY", _linear(lambda n, *ds: E.add(*ds))),
    "scale": Rule("d(aX) = da·X + a·dX", _d_scale),
    "matmul": Rule("d(XY) = dX·Y + X·dY", _d_matmul),
    "transpose": Rule("d(Xᵀ) = (dX)ᵀ", _linear(lambda n, dx: E.transpose(dx))),
    "inv": Rule("d(X⁻¹) = −X⁻¹·dX·X⁻¹", _d_inv),
    "matpow": Rule("d(Xᵏ) = Σⱼ Xʲ·dX·Xᵏ⁻¹⁻ʲ", _d_matpow),
    "pow": Rule("d(aᵇ) = b·aᵇ⁻¹·da + aᵇ·log(a)·db", _d_pow),
    "hadamard": Rule("d(X ⊙ Y) = dX ⊙ Y + X ⊙ dY", _d_hadamard),
    "hdiv": Rule("d(X ⊘ Y) = dX ⊘ Y − X ⊙ dY ⊘ Y²", _d_hdiv),
    "epow": Rule("d(X^∘p) = p·X^∘(p−1) ⊙ dX (+ X^∘p ⊙ log X · dp)", _d_epow),
    "fn": Rule("d f(X) = f′(X) ⊙ dX", _d_fn),
    "tr": Rule("d tr(X) = tr(dX)", _linear(lambda n, dx: E.trace(dx))),
    "det": Rule("d det(X) = det(X)·tr(X⁻¹dX)", _d_det),
    "logdet": Rule("d log det(X) = tr(X⁻¹dX)", _d_logdet),
    "sum": Rule("d sum(X) = sum(dX)", _linear(lambda n, dx: E.reduction("sum", dx))),
    "norm1": Rule("d‖x‖₁ = sign(x)ᵀdx", _d_norm1),
    "norm2": Rule("d‖x‖ = xᵀdx / ‖x‖", _d_norm2),
    "logsumexp": Rule("d logsumexp(x) = softmax(x)ᵀdx", _d_logsumexp),
    "softmax": Rule("d softmax(x) = s ⊙ dx − s·(sᵀdx), s = softmax(x)", _d_softmax),
    "diag_embed": Rule("d diag(v) = diag(dv)", _linear(lambda n, dv: E.diag_embed(dv))),
    "diag_extract": Rule("d diag(X) = diag(dX)", _linear(lambda n, dx: E.diag_extract(dx))),
    "const": Rule("d(constant) = 0", lambda ctx, n, d: E.zero(n.shape)),
    "zero": Rule("d(constant) = 0", lambda ctx, n, d: E.zero(n.shape)),
    "ones": Rule("d(constant) = 0", lambda ctx, n, d: E.zero(n.shape)),
    "eye": Rule("d(constant) = 0", lambda ctx, n, d: E.zero(n.shape)),
}


def differential(node: E.Node, wrt: set[str], record: list | None = None) -> E.Node:
    return Differentiator(wrt, record)(node)
