"""d(expr): the matrix differential, by the rule each operator declares (matdiff/ops).

The differential is computed once per node of the expression DAG (shared subexpressions are
differentiated once) and is itself an IR expression, linear in the dX leaves. Subtrees that do
not depend on any variable of interest give zero, which the builders drop on sight."""

from __future__ import annotations

from ..ir import expr as E
from ..ops import rule, table


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
        d_rule = RULES[node.op]
        result = d_rule.apply(self, node, self.of)
        if self.record is not None:
            self.record.append((d_rule.label, node, result))
        # A marker keeps d(node) one node of the linear DAG even where sums flatten, so the
        # trace pass can report ∂f/∂node for intermediates (∂l/∂a₂ in a network).
        return E.dnode(result) if not E.is_zero(result) else result

    def of(self, node: E.Node) -> E.Node:
        hit = self.cache.get(node)
        return hit if hit is not None else self(node)


class _Rules(dict):
    """RULES[op]: the operator's declared differential (ops/), failing with its name."""

    def __missing__(self, op: str):
        return rule(op, "d")


RULES = _Rules(table("d"))


def differential(node: E.Node, wrt: set[str], record: list | None = None) -> E.Node:
    return Differentiator(wrt, record)(node)
