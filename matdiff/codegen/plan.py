"""The backend-neutral plan of one function body: what to compute and in which form, before
any backend spells it.

Every product is rewritten into binary products in the cheapest order (matrix-chain dynamic
programming over the symbolic sizes; where the best order depends on sizes known only at run
time, a `chain_by_size` node carries the candidate orders), sums inside products that reach a
vector are distributed, and constant scalings go to the smallest factor or are hoisted to the
start of the backward pass. Equal binary products are then one interned node, so a
sub-product that f and a gradient share (Ax in xᵀAx and (A + Aᵀ)x) is computed once. The plan
also records which inverses are needed whole (the rest are applied by solves with one shared
factorization), which matrices have their determinant or log-determinant taken, which
logsumexp/softmax pairs and softplus/σ pairs can share one pass of exponentials, and how often
each node is used (a node used twice is named). The rewritten DAG is the plan's own lowered
IR: its nodes are built with `E.make` on purpose (binary products must stay binary, not be
re-flattened by the normalising builders), and `chain_by_size` exists only here."""

from __future__ import annotations

from collections import Counter

from ..derive.simplify import logistic_argument
from ..ir import expr as E
from .product_order import RUNTIME_CHAIN_MAX, cheapest_orders, dp_order

# the plan's own node: a chain of products whose order is chosen at run time
RUNTIME_ORDER = "chain_by_size"


def _size(d: E.Dim) -> int:
    return 1 if d is E.ONE else 1000


def _push_scale(c: E.Node, x: E.Node, memo: dict, first: bool) -> E.Node:
    """c·x with the constant c moved through one factor of a product (the first, or the last,
    unless that one is an input) and the first factor of a Hadamard product, down to where the
    backward pass starts: Aᵀ(c·r) for a vector's gradient, (c·G)Xᵀ for a weight's."""
    key = (c, x)
    out = memo.get(key)
    if out is None:
        if x.op == "matmul" and len(x.args) == 2 and not any(a.is_scalar for a in x.args):
            a, b = x.args
            into_first = (first and not _leaf(a)) or (not first and _leaf(b) and not _leaf(a))
            out = E.make("matmul", (_push_scale(c, a, memo, first), b) if into_first else
                         (a, _push_scale(c, b, memo, first)), None, x.shape)
        elif x.op == "transpose" and x.kind == "matrix":  # c·Aᵀ = (c·A)ᵀ: shared with c·A
            inner = _push_scale(c, x.args[0], memo, first)
            out = E.make("transpose", (inner,), None, x.shape)
        elif x.op == "hadamard":
            out = E.make("hadamard", (_push_scale(c, x.args[0], memo, first),) + x.args[1:],
                         None, x.shape)
        else:
            out = E.make("scale", (c, x), None, x.shape)
        memo[key] = out
    return out


def _leaf(x: E.Node) -> bool:
    """A variable or its transpose: a scaling pushed there is a copy of the input."""
    return x.op == "var" or (x.op == "transpose" and x.args[0].op == "var")


def _dag_cost(roots: list[E.Node]) -> float:
    """Floating-point operations of evaluating the DAG once (every dimension 1000)."""
    cost, seen = 0.0, set()
    for r in roots:
        for n in E.postorder(r, known=seen):
            seen.add(n)
            if n.op in ("var", "const"):
                continue
            size = _size(n.shape[0]) * _size(n.shape[1])
            cost += size * (_size(n.args[0].shape[1]) if n.op == "matmul" else 1)
    return cost


def _hoist_scalings(roots: list[E.Node]) -> list[E.Node]:
    """Constant factors moved to the start of the backward pass when that saves work: in
    ‖W₄tanh(…) − y‖² the 2 of each ∂f/∂Wₖ = 2(…)hᵀ becomes one 2(W₄h₃ − y) shared by all."""
    best, cost = roots, _dag_cost(roots)
    for first in (False, True):  # through the last factors, or the first ones
        memo: dict = {}
        done: dict[E.Node, E.Node] = {}
        for r in roots:
            for n in E.postorder(r, known=done):
                args = tuple(done[a] for a in n.args)
                if n.op == "scale" and args[0].op == "const" and not n.is_scalar:
                    done[n] = _push_scale(args[0], args[1], memo, first)
                else:
                    done[n] = n if args == n.args else E.make(n.op, args, n.attr, n.shape)
        hoisted = [done[r] for r in roots]
        if _dag_cost(hoisted) < cost:
            best, cost = hoisted, _dag_cost(hoisted)
    return best


def ones_like(n: E.Node) -> E.Node | None:
    """The scalar c when n is c·1 (c a plain number or scalar node), ONE for 1 itself."""
    if n.op == "ones":
        return E.const(1)
    if n.op == "scale" and n.args[1].op == "ones" and n.args[0].is_scalar:
        return n.args[0]
    return None


def _outer_with_ones(n: E.Node) -> tuple[E.Node, int] | None:
    """(v, axis) when n is v·1ᵀ (axis 1: v repeated along the rows' length) or 1·vᵀ (axis 0:
    v as every row), v a vector (the constant of c·1 moved onto v)."""
    if n.op != "matmul" or len(n.args) != 2:
        return None
    a, b = n.args
    if a.shape[1] is not E.ONE or b.shape[0] is not E.ONE or a.shape[0] is E.ONE or \
            b.shape[1] is E.ONE:
        return None
    for ones, v, axis in ((b, a, 1), (a, b, 0)):
        c = ones_like(ones)
        if c is not None:
            if not (c.op == "const" and c.attr == 1):
                v = E.make("scale", (c, v), None, v.shape)
            return v, axis
    return None


def _broadcasts(roots: list[E.Node]) -> list[E.Node]:
    """b·1ᵀ and 1·rᵀ as broadcasts (plan nodes `broadcast`, attr the axis the vector is
    repeated along) where every use adds or multiplies them entry by entry with a full matrix:
    W X + b 1ᵀ is W X + b[:, None], (1 1ᵀY) ⊙ S is S * sum(Y, 0); no outer product is formed."""
    parents: dict[E.Node, list[E.Node]] = {}
    seen: set[E.Node] = set()
    for r in roots:
        for n in E.postorder(r, known=seen):
            seen.add(n)
            for a in n.args:
                parents.setdefault(a, []).append(n)
    candidates = {n: o for n in seen if (o := _outer_with_ones(n)) is not None}

    def full(x: E.Node) -> bool:
        return x not in candidates and x.kind == "matrix" and x.op != "ones"

    chosen = {n for n in candidates if n not in roots and parents.get(n) and all(
        p.op in ("add", "hadamard") and any(full(s) for s in p.args if s is not n)
        for p in parents[n])}
    if not chosen:
        return roots
    done: dict[E.Node, E.Node] = {}
    for r in roots:
        for n in E.postorder(r, known=done):
            args = tuple(done[a] for a in n.args)
            if n in chosen:
                v, axis = _outer_with_ones(E.make("matmul", args, None, n.shape))
                done[n] = E.make("broadcast", (v,), axis, n.shape)
                continue
            done[n] = n if args == n.args else E.make(n.op, args, n.attr, n.shape)
    return [done[r] for r in roots]


def softplus_argument(n: E.Node) -> E.Node | None:
    """z when n is softplus(z) or log(exp(z) + 1)."""
    if n.op == "fn" and n.attr == "softplus":
        return n.args[0]
    if n.op == "fn" and n.attr == "log":
        return logistic_argument(n.args[0])
    return None


def summed_square(n: E.Node) -> E.Node | None:
    """u when n is sum(u⊙u), sum(u.^2) or ‖u‖²."""
    if n.op == "pow" and n.args[0].op == "norm2" and n.args[1].op == "const" and \
            n.args[1].attr == 2:
        return n.args[0].args[0]
    if n.op != "sum":
        return None
    x = n.args[0]
    if x.op == "hadamard" and len(x.args) == 2 and x.args[0] is x.args[1]:
        return x.args[0]
    if x.op == "epow" and x.args[1].op == "const" and x.args[1].attr == 2:
        return x.args[0]
    return None


def inverse_of(n: E.Node) -> tuple[E.Node, bool] | None:
    """(X, transposed) when n is X⁻¹ or X⁻ᵀ."""
    if n.op == "inv":
        return n.args[0], False
    if n.op == "transpose" and n.args[0].op == "inv":
        return n.args[0].args[0], True
    return None


def _share_negations(roots: list[E.Node]) -> list[E.Node]:
    """p − q and q − p in one body: the second becomes −(p − q), so one subtraction serves
    both (‖X − UVᵀ‖² and its gradient −2(X − UVᵀ)V, not 2(UVᵀ − X)V); a sign in a product
    leaves it as a scaling (E.matmul), merged with the product's constant (E.scale)."""
    def terms(args) -> frozenset:  # the sum's terms with their counts: x − y + x ≠ x − y
        return frozenset(Counter(args).items())

    seen: dict[frozenset, E.Node] = {}
    done: dict[E.Node, E.Node] = {}
    for r in roots:
        for n in E.postorder(r, known=done):
            args = tuple(done[a] for a in n.args)
            if n.op == "add":
                partner = seen.get(terms(E.neg(t) for t in args))
                if partner is not None:
                    done[n] = E.neg(partner)
                    continue
                done[n] = n if args == n.args else E.make("add", args, n.attr, n.shape)
                seen.setdefault(terms(args), done[n])
            elif args == n.args:
                done[n] = n
            elif n.op == "matmul":
                done[n] = E.matmul(*args)
            elif n.op == "scale":
                done[n] = E.scale(*args)
            else:
                done[n] = E.make(n.op, args, n.attr, n.shape)
    return [done[r] for r in roots]


def _split_log_softmax_dots(roots: list[E.Node]) -> list[E.Node]:
    """c·uᵀlog softmax(z) = c·uᵀz − c·logsumexp(z)·Σu: the cross-entropy −yᵀlog softmax(Wx)
    without the vector z − logsumexp(z); Σy is the one its gradient (Σy)·softmax(z) − y reads,
    and uᵀz stays a binary product (E.make), so that z = Wx is the product softmax reads."""
    done: dict[E.Node, E.Node] = {}

    def split(m: E.Node) -> tuple[E.Node, E.Node] | None:  # (uᵀz, logsumexp(z)·Σu)
        if m.op != "matmul" or len(m.args) != 2 or not m.is_scalar:
            return None
        u, b = m.args
        if u.op != "transpose" or b.op != "fn" or b.attr != "log" or b.args[0].op != "softmax":
            return None
        u, z = done[u], done[b.args[0].args[0]]
        return (E.make("matmul", (u, z), None, m.shape),
                E.scale(E.reduction("sum", u.args[0]), E.reduction("logsumexp", z)))

    for r in roots:
        for n in E.postorder(r, known=done):
            args = tuple(done[a] for a in n.args)
            parts = split(n.args[1]) if n.op == "scale" else split(n)
            if parts is not None:
                c = args[0] if n.op == "scale" else E.const(1)
                terms = [E.scale(c, parts[0]), E.scale(E.neg(c), parts[1])]
                if c.op == "const" and c.attr < 0:  # −yᵀlog softmax(z) = Σy·lse(z) − yᵀz
                    terms.reverse()
                done[n] = E.add(*terms)
                continue
            done[n] = n if args == n.args else E.make(n.op, args, n.attr, n.shape)
    return [done[r] for r in roots]


class Plan:
    """The plan of one function body computing `roots` (f, gradients, …) once."""

    def __init__(self, roots: list[E.Node], labels: dict[E.Node, str]):
        roots = _share_negations(_split_log_softmax_dots(roots))
        # inverses some expression needs whole (not only applied to something)
        parents: dict[E.Node, set[str]] = {}
        original = [n for r in roots for n in E.postorder(r)]
        for n in original:
            for a in n.args:
                parents.setdefault(a, set()).add(n.op)
        self.whole = {inverse_of(n)[0] for n in original if inverse_of(n) is not None and
                      (n in roots or parents.get(n, set()) - {"matmul", "transpose"})}
        self.inverted = {inv[0] for n in original if (inv := inverse_of(n)) is not None}
        self.dets = {n.args[0] for n in original if n.op == "det"}
        self.logdets = {n.args[0] for n in original if n.op == "logdet"} | {
            n.args[0].args[0] for n in original
            if n.op == "fn" and n.attr == "log" and n.args[0].op == "det"}
        self.seeds: dict[tuple, E.Node] = {}
        binarized = self._binarize_all(original, roots)
        seeds = self._shared_pairs()
        if seeds:  # products that several chains share, formed first (K = WₖX, Q = WqX, …)
            kept = (self.products, self.static, self.chains, binarized)
            cost = self._cost(binarized)
            self.seeds = {pair: E.make("matmul", pair, None, (pair[0].shape[0], pair[1].shape[1]))
                          for pair in seeds}
            binarized = self._binarize_all(original, roots)
            if self._cost(binarized) >= cost:
                self.products, self.static, self.chains, binarized = kept
                self.seeds = {}
        self.roots = _broadcasts(_hoist_scalings(binarized))
        self.uses: dict[E.Node, int] = {}
        self.order: list[E.Node] = []
        seen: set[E.Node] = set()
        for r in self.roots:
            for n in E.postorder(r):
                if n not in seen:
                    seen.add(n)
                    self.order.append(n)
                    for a in n.args:
                        self.uses[a] = self.uses.get(a, 0) + 1
        for r in self.roots:
            self.uses[r] = self.uses.get(r, 0) + 2
        for n in self.order:  # 1ᵀB and A1 are sums (body.product): the ones are not read
            if n.op == "matmul" and not any(self.solvable(a) or a.is_scalar for a in n.args):
                a, b = n.args
                if a.op == "ones" and a.shape[0] is E.ONE:
                    self.uses[a] -= 1
                elif b.op == "ones" and b.shape[1] is E.ONE:
                    self.uses[b] -= 1
        self.label_names = {labels[n] for n in self.order if n in labels}
        for n in self.order:  # ‖u‖ and sum(u⊙u) read u twice (np.vdot(u, u)): u once, named
            u = n.args[0] if n.op == "norm2" else summed_square(n)
            if u is not None:
                self.uses[u] = self.uses.get(u, 0) + 1
        # logsumexp(z) (or log softmax(z)) and softmax(z) together: one pass of exponentials
        needs_lse = {n.args[0] for n in self.order if n.op == "logsumexp"} | {
            n.args[0].args[0] for n in self.order
            if n.op == "fn" and n.attr == "log" and n.args[0].op == "softmax"}
        softmax_of = {n.args[0]: n for n in self.order if n.op == "softmax"}
        self.fused_softmax = {z: softmax_of[z] for z in needs_lse & set(softmax_of)}
        # the axis forms the same way: softmax(Z, d) with log softmax(Z, d) ("log") or with
        # logsumexp(Z, d) ("lse"), keyed by (Z, d)
        self.softmax_axis = {(n.args[0], n.attr): n for n in self.order
                             if n.op == "softmax_axis"}
        self.fused_axis: dict[tuple, str] = {}
        for n in self.order:
            if n.op not in ("log_softmax_axis", "logsumexp_axis"):
                continue
            key = (n.args[0], n.attr)
            if key in self.softmax_axis and self.fused_axis.get(key) != "log":
                    self.fused_axis[key] = "log" if n.op == "log_softmax_axis" else "lse"
        # softplus(z) = log(1 + exp(z)) computed here makes σ(z) = exp(z − softplus(z)) one
        # exponential instead of two; such a softplus is named so that σ can read it
        self.softplus: dict[E.Node, E.Node] = {}
        for n in self.order:
            z = softplus_argument(n)
            if z is not None:
                self.softplus.setdefault(z, n)
        for n in self.order:
            if n.op == "fn" and n.attr == "sigmoid" and n.args[0] in self.softplus:
                sp = self.softplus[n.args[0]]
                self.uses[sp] = self.uses.get(sp, 0) + 1

    def _binarize_all(self, original: list[E.Node], roots: list[E.Node]) -> list[E.Node]:
        self.products: dict[tuple, E.Node] = {}  # flat factor list → its binary product
        self.static: dict[E.Node, E.Node] = {}  # chain_by_size → the order chosen statically
        self.chains: dict[tuple, E.Node] = {}  # flat factor list → what chain() made of it
        done: dict[E.Node, E.Node] = {}
        for n in original:
            if n not in done:
                done[n] = self.binarize(n, done)
        return [done[r] for r in roots]

    def _pairable(self, f: E.Node) -> bool:
        return f.kind == "matrix" and f.op != "diag_embed" and not self.solvable(f)

    def _shared_pairs(self) -> set[tuple]:
        """Adjacent factor pairs AB (or their mirror BᵀAᵀ) of two or more products of three
        factors or more."""
        count: dict[tuple, set] = {}
        for key in self.chains:
            if len(key) < 3:
                continue
            for a, b in zip(key, key[1:]):
                if self._pairable(a) and self._pairable(b):
                    mirror = (E.transpose(b), E.transpose(a))
                    pair = min((a, b), mirror, key=lambda p: (p[0].op == "transpose", id(p[0])))
                    count.setdefault(pair, set()).add(key)
        return {pair for pair, keys in count.items() if len(keys) >= 2}

    def _cost(self, roots: list[E.Node]) -> float:
        """_dag_cost with each run-time order counted as its static one."""
        return _dag_cost([self.static_all(r) for r in roots])

    def static_all(self, r: E.Node, memo: dict | None = None) -> E.Node:
        """r with every run-time order replaced by its static one: an expression again."""
        memo = {} if memo is None else memo
        for n in E.postorder(r, known=memo):
            args = tuple(memo[a] for a in n.args)
            if n.op == RUNTIME_ORDER:
                memo[n] = self.static_all(self.static[n], memo)
            else:
                memo[n] = n if args == n.args else E.make(n.op, args, n.attr, n.shape)
        return memo[r]

    def _with_seeds(self, factors: list[E.Node]) -> list[E.Node]:
        """Adjacent factors that form a seeded product (or its mirror) replaced by it."""
        out: list[E.Node] = []
        i = 0
        while i < len(factors):
            if i + 1 < len(factors):
                a, b = factors[i], factors[i + 1]
                seed = self.seeds.get((a, b))
                if seed is not None:
                    out.append(seed)
                    i += 2
                    continue
                seed = self.seeds.get((E.transpose(b), E.transpose(a)))
                if seed is not None:
                    out.append(E.make("transpose", (seed,), None, (seed.shape[1], seed.shape[0])))
                    i += 2
                    continue
            out.append(factors[i])
            i += 1
        return out

    def solvable(self, f: E.Node) -> bool:
        inv = inverse_of(f)
        return inv is not None and inv[0] not in self.whole

    def binarize(self, n: E.Node, done: dict) -> E.Node:
        args = tuple(done[a] for a in n.args)
        if n.op == "matmul":
            return self.chain(self._factors(n, args, done))
        if n.op == "tr" and args[0].op == RUNTIME_ORDER:  # a trace splits a static order
            return E.make("tr", (self.static[args[0]],), None, n.shape)
        if n.op == "scale" and args[1].op == "matmul" and not n.is_scalar:
            # c·(LR): the constant goes on the smallest of LR, L and R (in that order on ties),
            # never inside a product, so that L and R stay shared (X⁻ᵀu in uᵀX⁻¹v and in
            # −X⁻ᵀuvᵀX⁻ᵀ is one solve)
            c, product = args
            left, right = product.args

            def area(x):
                return _size(x.shape[0]) * _size(x.shape[1])
            options = [(area(product), 0)] + [
                (area(x), k) for k, x in ((1, left), (2, right))
                if inverse_of(x) is None and x.op != "diag_embed"]
            pick = min(options)[1]
            if pick:
                operands = [left, right]
                x = operands[pick - 1]
                operands[pick - 1] = E.make("scale", (c, x), None, x.shape)
                return E.make("matmul", tuple(operands), None, product.shape)
        return n if args == n.args else E.make(n.op, args, n.attr, n.shape)

    def _factors(self, n: E.Node, args: tuple, done: dict) -> list[E.Node]:
        """The factors of a product, a transposed product among them spelled out: (WₖX)ᵀWqX
        is XᵀWₖᵀWqX, so that f and a gradient that reads XᵀWₖᵀWqX share one product."""
        out: list[E.Node] = []
        for a, b in zip(n.args, args):
            if a.op == "transpose" and a.args[0].op == "matmul":
                for x in reversed(a.args[0].args):
                    t = E.transpose(x)
                    for m in E.postorder(t, known=done):
                        done[m] = self.binarize(m, done)
                    out.append(done[t])
            else:
                out.append(b)
        return out

    def chain(self, factors: list[E.Node]) -> E.Node:
        key = tuple(factors)
        known = self.chains.get(key)
        if known is None:
            seeded = self._with_seeds(factors) if self.seeds else factors
            known = self.chains[key] = seeded[0] if len(seeded) == 1 else self._chain(seeded)
        return known

    def _chain(self, factors: list[E.Node]) -> E.Node:
        key = tuple(factors)
        known = self.products.get(key)
        if known is not None:
            return known
        mirrored = self.products.get(tuple(E.transpose(f) for f in reversed(factors)))
        if mirrored is not None:  # (S⁻¹CS⁻¹)ᵀ when S⁻¹CᵀS⁻¹ is asked for and S is symmetric
            return E.make("transpose", (mirrored,), None, (mirrored.shape[1], mirrored.shape[0]))
        reaches_vector = any(d is E.ONE for f in factors for d in f.shape)
        if reaches_vector:  # (A + Aᵀ)x → Ax + Aᵀx: matrix-vector products beat the sum
            for i, f in enumerate(factors):
                if f.op == "add" and all(t.kind == "matrix" for t in f.args) and not all(
                        g.op == "ones" for g in factors[:i] + factors[i + 1:]):
                    # (but (A + B)1 is one sum of the rows of A + B, which is at hand)
                    terms = [self.chain(factors[:i] + [t] + factors[i + 1:]) for t in f.args]
                    return E.make("add", tuple(terms), None, terms[0].shape)
        k = len(factors)
        size = [(_size(f.shape[0]), _size(f.shape[1])) for f in factors]
        best: dict[tuple[int, int], tuple[float, int]] = {
            (i, i): (float(size[i][0]) ** 3 if self.solvable(f) else 0.0, i)
            for i, f in enumerate(factors)}
        for length in range(2, k + 1):
            for i in range(k - length + 1):
                j = i + length - 1
                options = []
                for m in range(i, j):
                    left, right = best[(i, m)][0], best[(m + 1, j)][0]
                    rows, inner, cols = size[i][0], size[m][1], size[j][1]
                    if m == i and self.solvable(factors[i]):
                        step, left = inner * inner * cols, 0.0  # X⁻¹·R by a solve
                    elif m + 1 == j and self.solvable(factors[j]):
                        step, right = rows * inner * inner, 0.0  # L·X⁻¹ by a solve
                    else:
                        step = rows * inner * cols
                    # ties go to the rightmost split: ((AX)B)C, the order a person writes,
                    # so equal sub-products in f and the gradients coincide
                    options.append((left + right + step, -m))
                cost, m = min(options)
                # a sub-product computed elsewhere (Xw of softplus(Xw) in yᵀXw) costs nothing
                best[(i, j)] = (0.0 if tuple(factors[i:j + 1]) in self.products else cost, -m)
        chosen = self._tree(factors, best, 0, k - 1)
        if 3 <= k <= RUNTIME_CHAIN_MAX and all(
                f.kind == "matrix" and f.op != "diag_embed" and not self.solvable(f)
                for f in factors):
            orders = cheapest_orders(factors, dp_order(best, 0, k - 1))
            # which order is cheapest depends on the actual sizes; past three candidates the
            # branches would outweigh what they save, and the static order stands
            if 2 <= len(orders) <= 3:
                node = E.make(RUNTIME_ORDER, tuple(factors), tuple(orders), chosen.shape)
                self.static[node] = chosen
                return node
        return chosen

    def _tree(self, factors, best, i: int, j: int) -> E.Node:
        if i == j:
            return factors[i]
        key = tuple(factors[i:j + 1])
        if key in self.products:  # the same sub-product elsewhere: one node, computed once
            return self.products[key]
        mirrored = self.products.get(tuple(E.transpose(f) for f in reversed(key)))
        if mirrored is not None:  # X⁻ᵀu where uᵀX⁻¹ is computed: its transpose
            return E.make("transpose", (mirrored,), None, (mirrored.shape[1], mirrored.shape[0]))
        m = best[(i, j)][1]
        left, right = self._tree(factors, best, i, m), self._tree(factors, best, m + 1, j)
        node = E.make("matmul", (left, right), None, (left.shape[0], right.shape[1]))
        self.products[key] = node
        return node
