"""Matrix-chain order for the code generator: every parenthesisation of a chain, its cost as
a polynomial in the symbolic sizes, and the orders no other one beats at every size. When
more than one survives, the emitted code compares their costs on the actual shapes."""

from __future__ import annotations

import itertools

from ..ir import expr as E

RUNTIME_CHAIN_MAX = 6  # longer chains keep the static order (Catalan(6) = 132 orders)


def orders(i: int, j: int):
    """Every parenthesisation of factors i..j, as nested pairs of indices."""
    if i == j:
        yield i
        return
    for m in range(i, j):
        for left in orders(i, m):
            for right in orders(m + 1, j):
                yield (left, right)


def dp_order(best: dict, i: int, j: int):
    """The parenthesisation the chain DP chose for factors i..j, as nested pairs."""
    if i == j:
        return i
    m = best[(i, j)][1]
    return (dp_order(best, i, m), dp_order(best, m + 1, j))


def order_cost(order, factors: list[E.Node]):
    """(cost polynomial {monomial: coefficient}, rows, cols) of one parenthesisation; a
    monomial is a sorted tuple of symbolic dimensions, a vector's 1 dropped."""
    if isinstance(order, int):
        return {}, factors[order].shape[0], factors[order].shape[1]
    left, rows, inner = order_cost(order[0], factors)
    right, _, cols = order_cost(order[1], factors)
    cost = dict(left)
    for mono, c in right.items():
        cost[mono] = cost.get(mono, 0) + c
    mono = tuple(sorted((d for d in (rows, inner, cols) if d is not E.ONE), key=id))
    cost[mono] = cost.get(mono, 0) + 1
    return cost, rows, cols


def cheapest_orders(factors: list[E.Node], preferred) -> list:
    """The parenthesisations no other one beats at every size (on a grid of sizes),
    the preferred (statically chosen) one first; one entry when the order is settled."""
    costs = {}
    for order in [preferred] + [o for o in orders(0, len(factors) - 1) if o != preferred]:
        poly = order_cost(order, factors)[0]
        key = frozenset(poly.items())
        if key not in costs:
            costs[key] = (order, poly)

    # p beats q when it costs no more at every size and less at some: tested on a grid of
    # sizes from 1 to 4096 (each dimension free), which is where code meets real shapes
    import numpy as np

    dims = sorted({d for _, p in costs.values() for mono in p for d in mono}, key=id)
    grid = np.log([1.0, 3.0, 16.0, 100.0, 600.0, 4096.0])
    if len(dims) <= 4:
        points = np.array(list(itertools.product(grid, repeat=len(dims)))).reshape(-1, len(dims))
    else:
        points = np.random.default_rng(0).choice(grid, size=(600, len(dims)))
    index = {d: k for k, d in enumerate(dims)}
    entries = list(costs.values())
    values = np.empty((len(entries), len(points)))
    for row, (_, p) in enumerate(entries):
        exponents = np.zeros((len(p), len(dims)))
        for k, mono in enumerate(p):
            for d in mono:
                exponents[k, index[d]] += 1
        values[row] = np.exp(points @ exponents.T) @ np.array(list(p.values()), dtype=float)
    no_worse = (values[:, None, :] <= values[None, :, :] * (1 + 1e-12)).all(axis=2)
    better = (values[:, None, :] < values[None, :, :] * (1 - 1e-12)).any(axis=2)
    beaten = (no_worse & better).any(axis=0)  # [j, i]: order j beats order i
    return [order for (order, _), lost in zip(entries, beaten) if not lost]
