"""Cosmetic algebra that brings results to textbook form. Never needed for correctness: every
rewrite is an identity, and the numerical self-check runs on the simplified result.

Passes to a fixed point, each bottom-up and memoised per node (shared subexpressions are
simplified once):
- scalar coefficients become monomials: 2·‖r‖·‖r‖⁻¹ → 2, det(X)/det(X) → 1;
- transposes are pushed through products: (AXB)ᵀ → BᵀXᵀAᵀ, so (AᵀBᵀ)ᵀ reads BA (and
  through a sum only inside a sum, where the terms may collect: (UVᵀ − Y)ᵀU stays);
- like terms are collected: AᵀBᵀ + AᵀBᵀ → 2AᵀBᵀ; scalars folded;
- a factor common to every term of a sum is pulled out: Ax + Aᵀx → (A + Aᵀ)x;
- positive terms are written first."""

from __future__ import annotations

from fractions import Fraction

from ..ir import expr as E

Monomial = tuple[Fraction, tuple[tuple[E.Node, Fraction], ...]]


MAX_PASSES = 32  # a safety bound; every corpus expression settles in at most 3 passes


def simplify(node: E.Node) -> E.Node:
    """The fixed point of the rewrite rules: passes (each with a fresh memo) until one changes
    nothing, so simplify(simplify(x)) is simplify(x)."""
    for _ in range(MAX_PASSES):
        again = Simplifier()(node)
        if again is node:
            return node
        node = again
    return node


def simplify_many(nodes: list[E.Node]) -> list[E.Node]:
    """simplify of each node, as one fixed point over all of them: each pass shares one memo
    across the nodes, so their common subexpressions are rewritten once per pass."""
    nodes = list(nodes)
    for _ in range(MAX_PASSES):
        rewrite = Simplifier()
        again = [rewrite(n) for n in nodes]
        if all(a is n for a, n in zip(again, nodes)):
            return nodes
        nodes = again
    return nodes


class Simplifier:
    """One bottom-up pass. Its memo (node → simplified node) belongs to the pass; a rule that
    builds a new expression simplifies it with the same pass (self(...)), so shared
    subexpressions are rewritten once."""

    def __init__(self):
        self.done: dict[E.Node, E.Node] = {}

    def __call__(self, node: E.Node) -> E.Node:
        done = self.done
        for n in E.postorder(node, known=done):
            if n in done:
                continue
            rebuilt = E.rebuild(n, (done[a] for a in n.args)) if n.args else n
            rule = RULES.get(rebuilt.op)
            out = rule(self, rebuilt) if rule is not None else rebuilt
            done[n] = out
            done.setdefault(rebuilt, out)
        return done[node]

    def _transpose(self, node: E.Node) -> E.Node:
        x = node.args[0]
        if x.op == "matmul":
            return self(E.matmul(*[self(E.transpose(f)) for f in reversed(x.args)]))
        if x.op == "matpow":  # (Xᵏ)ᵀ = (Xᵀ)ᵏ, so that XᵀXᵀ and (X²)ᵀ collect
            return E.matpow(self(E.transpose(x.args[0])), x.attr)
        if x.op == "kron":  # (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ
            return self(E.kron(*[self(E.transpose(f)) for f in x.args]))
        if x.op == "add":  # (A + Aᵀ)ᵀ = A + Aᵀ: a sum that its transpose maps onto itself
            flipped = [self(E.transpose(t)) for t in x.args]
            if set(flipped) == set(x.args):
                return x
            if node.shape[1] is E.ONE and node.shape[0] is not E.ONE:
                # a column that is a transposed sum of rows, (c·xᵀ + d·xᵀAᵀ)ᵀ: c·x + d·Ax
                return self(E.add(*flipped))
        return node

    def _vec_trick(self, prev: E.Node, f: E.Node) -> E.Node | None:
        """(P ⊗ Q)·vec(M) = vec(Q M Pᵀ), vec(M)ᵀ(P ⊗ Q) = vec(Qᵀ M P)ᵀ (when the shapes fit)."""
        if prev.op == "kron" and f.op == "vec":
            (p, q), m = prev.args, f.args[0]
            if m.shape == (q.shape[1], p.shape[1]):
                return self(E.vec(self(E.matmul(q, m, E.transpose(p)))))
        if f.op == "kron" and prev.op == "transpose" and prev.args[0].op == "vec":
            (p, q), m = f.args, prev.args[0].args[0]
            if m.shape == (q.shape[0], p.shape[0]):
                return E.transpose(self(E.vec(self(E.matmul(E.transpose(q), m, p)))))
        return None

    def _matmul(self, node: E.Node) -> E.Node:
        """X·X → X², X²·X → X³; diag(v)·w → v ⊙ w and wᵀ·diag(v) → (w ⊙ v)ᵀ for vectors w."""
        out: list[E.Node] = []
        changed = False
        for f in node.args:
            base, k = (f.args[0], f.attr) if f.op == "matpow" else (f, 1)
            if out:
                prev = out[-1]
                pbase, pk = (prev.args[0], prev.attr) if prev.op == "matpow" else (prev, 1)
                if pbase is base and base.shape[0] is base.shape[1]:
                    out[-1] = E.matpow(base, pk + k)
                    changed = True
                    continue
                if prev.op == "diag_embed" and f.shape[1] is E.ONE:
                    out[-1] = self(E.hadamard(prev.args[0], f))
                    changed = True
                    continue
                if f.op == "diag_embed" and prev.shape[0] is E.ONE:
                    out[-1] = self(E.transpose(E.hadamard(E.transpose(prev), f.args[0])))
                    changed = True
                    continue
                if prev.op == "ones" and f.op == "ones" and prev.shape[1] is E.ONE and \
                        len(node.args) == 2:
                    out[-1] = E.ones((prev.shape[0], f.shape[1]))  # 1·1ᵀ is all-ones
                    changed = True
                    continue
                trick = self._vec_trick(prev, f)
                if trick is not None:
                    out[-1] = trick
                    changed = True
                    continue
            out.append(f)
        if changed:
            return self(E.matmul(*out))
        if node.is_scalar:  # a scalar is its own transpose: xᵀAᵀx → xᵀAx (fewer transposes)
            flipped = E.matmul(*[E.transpose(f) for f in reversed(node.args)])
            if (self._transposes(flipped), _names(flipped)) < \
                    (self._transposes(node), _names(node)):
                return flipped  # and between xᵀy and yᵀx the one read first: like terms meet
        return node

    def _transposes(self, node: E.Node) -> int:
        return sum(1 for f in node.args if f.op == "transpose") if node.op == "matmul" else 0

    def _diag_extract(self, node: E.Node) -> E.Node:
        """diag(u·rᵀ) = u ⊙ r for a column u and a row rᵀ; diag(Xᵀ) = diag(X)."""
        x = node.args[0]
        if x.op == "transpose":
            return self(E.diag_extract(x.args[0]))
        if x.op == "matmul" and x.args[0].shape[1] is E.ONE:
            u = x.args[0]
            row = E.matmul(*x.args[1:])
            return self(E.hadamard(u, E.transpose(row)))
        return node

    def _vec_sum(self, node: E.Node) -> E.Node | None:
        """vec(A) + c·vec(B) → vec(A + c·B), when every term is a (scaled) vec of one shape."""
        inner = []
        for term in node.args:
            number, atoms, body = split(term)
            if body.op != "vec" or (inner and body.args[0].shape != inner[0][2].shape):
                return None
            inner.append((number, atoms, body.args[0]))
        return E.vec(self(E.add(*[assemble(*t) for t in inner])))

    def _add(self, node: E.Node) -> E.Node:
        collected = self._vec_sum(node)
        if collected is not None:
            return self(collected)
        terms: dict[tuple, list] = {}
        for term in self._expanded_terms(node):
            number, atoms, body = split(term)
            key = (frozenset(atoms.items()), body)
            if key in terms:
                terms[key][0] += number
            else:
                terms[key] = [number, atoms, body]
        parts = [assemble(number, atoms, body) for number, atoms, body in terms.values()
                 if number != 0]
        if not parts:
            return E.zero(node.shape)
        if len(parts) > 1:
            pulled = self._common_denominator(parts)
            if pulled is None:
                pulled = self._common_coefficient(parts)
            if pulled is not None:
                return pulled
        bodies = {split(t)[2] for t in parts}

        def order(t):  # positive terms first (stable), and A before Aᵀ: A + Aᵀ, not Aᵀ + A
            number, _, body = split(t)
            return number < 0, body.op == "transpose" and body.args[0] in bodies

        parts.sort(key=order)
        if len(parts) > 1 and all(split(t)[0] < 0 for t in parts):  # −a − b → −(a + b)
            return E.neg(self._add(E.add(*[self(E.neg(t)) for t in parts])))
        total = E.add(*parts)
        return self._factor(total) if total.op == "add" else total

    def _common_denominator(self, parts: list[E.Node]) -> E.Node | None:
        """a/D + b·c/D² → (a·D + b·c)/D²: a scalar divisor D of every term comes out at its
        highest power (the quotient rule's form, (2(xᵀAx)x − (xᵀx)(A + Aᵀ)x)/(xᵀAx)²)."""
        splits = [split(t) for t in parts]
        first = splits[0][1]
        for atom in sorted(first, key=lambda a: _atom_order((a, first[a]))):
            exponents = [atoms.get(atom, 0) for _, atoms, _ in splits]
            if all(e < 0 for e in exponents):
                low = min(exponents)
                inner = [assemble(number, {**atoms, atom: atoms[atom] - low}, body)
                         for number, atoms, body in splits]
                return E.scale(E.power(atom, E.const(low)), self(E.add(*inner)))
        return None

    def _common_coefficient(self, parts: list[E.Node]) -> E.Node | None:
        """c·A + c·B → c·(A + B) for the terms that share a scalar factor c (the same scalar
        atoms, or, without atoms, the same number up to sign): when they are the whole sum
        (2Ax − 2y → 2(Ax − y)), or when their sum collects or factors to one term
        (c + (xᵀx)·Aᵀx + (xᵀx)·Ax → c + (xᵀx)·(A + Aᵀ)x)."""
        groups: dict[object, list[int]] = {}
        splits = [split(t) for t in parts]
        for i, (number, atoms, _) in enumerate(splits):
            key = frozenset(atoms.items()) if atoms else abs(number)
            groups.setdefault(key, []).append(i)
        for key, members in groups.items():
            if len(members) < 2 or key == 1:
                continue
            if isinstance(key, frozenset):
                coef = coefficient(Fraction(1), dict(key))
                rests = [assemble(splits[i][0], {}, splits[i][2]) for i in members]
            else:
                coef = E.const(key)
                rests = [assemble(splits[i][0] / key, {}, splits[i][2]) for i in members]
            inner = self(E.add(*rests))
            if len(members) < len(parts) and inner.op == "add":
                continue
            if len(members) < len(parts) and split(inner)[2].op == "add":
                continue
            pulled = self(E.scale(coef, inner))
            rest = [parts[i] for i in range(len(parts)) if i not in members]
            if not rest:
                return pulled
            return self(E.add(*rest, pulled))
        return None

    def _scale(self, node: E.Node) -> E.Node:
        """−2Aᵀ(y − Ax) → 2Aᵀ(Ax − y): a minus sign and a difference inside cancel, so that
        (y − Ax)ᵀ(y − Ax) and (Ax − y)ᵀ(Ax − y) print the same gradient."""
        out = _scale(node)
        number, atoms, body = split(out)
        if number >= 0:
            return out
        factors = body.args if body.op == "matmul" else (body,)
        flips = [i for i, f in enumerate(factors) if _difference(f)]
        if len(flips) != 1:
            return out
        i = flips[0]
        flipped = self(E.add(*[self(E.neg(t)) for t in factors[i].args]))
        rebuilt = flipped if body.op != "matmul" else \
            E.matmul(*factors[:i], flipped, *factors[i + 1:])
        return assemble(-number, atoms, rebuilt)

    def _expanded_terms(self, node: E.Node):
        """The terms of a sum, with scaled sums inside it multiplied out: a + c(b + d) → a, cb,
        cd."""
        for term in node.args:
            number, atoms, body = split(term)
            if body.op == "add":
                for inner in body.args:
                    yield E.scale(coefficient(number, atoms), inner)
            elif body.op == "transpose" and body.args[0].op == "add":  # (A + B)ᵀ → Aᵀ + Bᵀ here
                for inner in body.args[0].args:
                    yield E.scale(coefficient(number, atoms), self(E.transpose(inner)))
            else:
                yield term

    def _common_number(self, node: E.Node) -> E.Node:
        """½A + ½B → ½(A + B) when every term has the same numeric factor."""
        numbers = {abs(split(t)[0]) for t in node.args}
        if len(numbers) != 1:
            return node
        (k,) = numbers
        if k == 1:
            return node
        inv_k = E.const(1 / k)
        return E.scale(E.const(k), E.add(*[self(E.scale(inv_k, t)) for t in node.args]))

    def _factor(self, node: E.Node) -> E.Node:
        """Pull out a matrix factor shared by every term (only when each term keeps a factor)."""
        split_terms = [split(t) for t in node.args]
        bodies = [b for _, _, b in split_terms]
        if any(b.op != "matmul" for b in bodies):
            return node
        for side in (-1, 0):
            common = bodies[0].args[side]
            if all(b.args[side] is common for b in bodies):
                rests = [assemble(num, atoms,
                                  E.matmul(*(b.args[:-1] if side == -1 else b.args[1:])))
                         for (num, atoms, _), b in zip(split_terms, bodies)]
                inner = self(E.add(*rests))
                inner = self._common_number(inner) if inner.op == "add" else inner
                return E.matmul(inner, common) if side == -1 else E.matmul(common, inner)
        return node


# ---------------------------------------------------------------- scalar coefficients


def split(node: E.Node) -> tuple[Fraction, dict[E.Node, Fraction], E.Node]:
    """node = number · Π atomᵉ · body, with body non-scalar (or 1 for a scalar node)."""
    number = Fraction(1)
    atoms: dict[E.Node, Fraction] = {}
    body = E.const(1)
    stack = [node]
    while stack:
        n = stack.pop()
        if n.op == "scale":
            stack.extend(reversed(n.args))  # left to right, so factors keep their order
        elif not n.is_scalar:
            body = n
        elif n.op == "const":
            number *= n.attr
        elif n.op == "pow" and n.args[1].op == "const":
            atoms[n.args[0]] = atoms.get(n.args[0], Fraction(0)) + n.args[1].attr
        else:
            atoms[n] = atoms.get(n, Fraction(0)) + 1
    return number, {a: e for a, e in atoms.items() if e != 0}, body


def _names(node: E.Node) -> tuple:
    """A deterministic order of products: the names of the factors (an operator's name for a
    factor that is not a variable or a transposed one)."""
    if node.op != "matmul":
        return ()
    out = []
    for f in node.args:
        g = f.args[0] if f.op == "transpose" else f
        out.append(g.attr[0] if g.op == "var" else "~" + g.op)
    return tuple(out)


def _atom_order(item):
    atom, exponent = item
    # variables first (by name), then other factors; divisors last
    return (exponent < 0, atom.op != "var", atom.attr[0] if atom.op == "var" else "")


def coefficient(number: Fraction, atoms: dict[E.Node, Fraction]) -> E.Node:
    factors = [E.power(a, E.const(e)) for a, e in sorted(atoms.items(), key=_atom_order)
               if e > 0]
    divisors = [E.power(a, E.const(-e)) for a, e in sorted(atoms.items(), key=_atom_order)
                if e < 0]
    coef = E.const(number)
    for f in factors:
        coef = E.scale(coef, f) if not E.is_const(coef, 1) else f
    for d in divisors:
        coef = E.scale(coef, E.power(d, E.const(-1))) if not E.is_const(coef, 1) else \
            E.power(d, E.const(-1))
    return coef


def _logistic_atoms(atoms: dict[E.Node, Fraction]) -> dict[E.Node, Fraction]:
    """exp(z)·(exp(z) + 1)⁻¹ → σ(z) (scalar case)."""
    for a, e in list(atoms.items()):
        z = logistic_argument(a)
        if z is not None and e == -1 and atoms.get(E.fn("exp", z)) == 1:
            atoms = dict(atoms)
            del atoms[a], atoms[E.fn("exp", z)]
            atoms[E.fn("sigmoid", z)] = atoms.get(E.fn("sigmoid", z), Fraction(0)) + 1
            return atoms
    return atoms


def logistic_argument(denominator: E.Node) -> E.Node | None:
    """z when denominator is exp(z) + 1 (in either order), else None."""
    if denominator.op != "add" or len(denominator.args) != 2:
        return None
    a, b = denominator.args
    if b.op == "exp" or (b.op == "fn" and b.attr == "exp"):
        a, b = b, a
    if a.op == "fn" and a.attr == "exp" and b.op in ("ones", "const") and \
            (b.op == "ones" or b.attr == 1):
        return a.args[0]
    return None


def _hadamard(node: E.Node) -> E.Node:
    """exp(z) ⊙ (1 ⊘ (exp(z) + 1)) → σ(z): the logistic function, as the notes write it."""
    factors = list(node.args)
    for i, f in enumerate(factors):
        if f.op == "hdiv" and f.args[0].op == "ones":
            z = logistic_argument(f.args[1])
            if z is not None and E.fn("exp", z) in factors:
                rest = [g for j, g in enumerate(factors) if j != i and g is not E.fn("exp", z)]
                return E.hadamard(*rest, E.fn("sigmoid", z))
    return node


def assemble(number: Fraction, atoms: dict[E.Node, Fraction], body: E.Node) -> E.Node:
    atoms = _logistic_atoms(atoms)
    if number == 0:
        return E.zero(body.shape)
    coef = coefficient(number, atoms)
    if body.is_scalar:  # a scalar-valued body (e.g. yᵀx) is one more factor
        return coef if E.is_const(body, 1) else E.scale(coef, body)
    return E.scale(coef, body) if not E.is_const(coef, 1) else body


def _difference(node: E.Node) -> bool:
    """node is a − b: a sum of one positive and one negative term."""
    return node.op == "add" and len(node.args) == 2 and \
        [split(t)[0] < 0 for t in node.args] == [False, True]


def _scale(node: E.Node) -> E.Node:
    return assemble(*split(node))


def _pow(node: E.Node) -> E.Node:
    base, expo = node.args
    if expo.op == "const" and base.op in ("scale",):
        number, atoms, _ = split(base)
        e = expo.attr
        if e.denominator == 1:
            return assemble(number ** int(e), {a: x * e for a, x in atoms.items()}, E.const(1))
    return node


# ---------------------------------------------------------------- transposes


# ---------------------------------------------------------------- sums


def _sum(node: E.Node) -> E.Node:
    """1ᵀsoftmax(z) = 1; the entries of softmax(Z, 1) add up to its number of columns."""
    x = node.args[0]
    if x.op == "softmax" and x.shape[1] is E.ONE:
        return E.const(1)
    if x.op == "softmax_axis":
        from ..ops import axes

        return axes.size(x, 2 if x.attr == 1 else 1)
    return node


RULES = {  # op → rule(simplifier, node)
    "sum": lambda s, node: _sum(node),
    "matmul": Simplifier._matmul,
    "diag_extract": Simplifier._diag_extract,
    "hadamard": lambda s, node: _hadamard(node),
    "scale": Simplifier._scale,
    "pow": lambda s, node: _pow(node),
    "transpose": Simplifier._transpose,
    "add": Simplifier._add,
}


def assume_sums_to_one(node: E.Node, names) -> E.Node:
    """The node with 1ᵀy replaced by 1 for each probability vector y in `names` (declared
    `--let y:probability`: a one-hot label or a distribution), then simplified. Valid at every
    point where the assumption holds, which is where such a gradient is used."""
    names = frozenset(names)
    if not names:
        return node
    ones = {}
    for n in E.walk(node):
        if n.op == "sum" and n.args[0].op == "var" and n.args[0].attr[0] in names:
            ones[n] = E.const(1)
    return simplify(E.substitute(node, ones)) if ones else node


# ---------------------------------------------------------------- stable forms (issue 14)


def _exp_argument(node: E.Node) -> E.Node | None:
    return node.args[0] if node.op == "fn" and node.attr == "exp" else None


def _stable_log(node: E.Node) -> E.Node | None:
    """log(1ᵀexp(Z)) → logsumexp(Z, 1), log(exp(Z)1) → logsumexp(Z, 2), log(sum(exp(z))) →
    logsumexp(z), log(softmax(Z, d)) → the log-softmax: the forms a person writes by hand,
    read as the operators whose values (and emitted code) are max-shifted."""
    from ..ops import axes

    x = node.args[0]
    if x.op == "softmax_axis":
        return axes.log_softmax(x.args[0], x.attr)
    if x.op == "sum":
        z = _exp_argument(x.args[0])
        return None if z is None else E.reduction("logsumexp", z)
    if x.op == "matmul" and len(x.args) == 2:
        first, second = x.args
        z = _exp_argument(second)
        if first.op == "ones" and z is not None and first.shape[0] is E.ONE:
            return axes.logsumexp(z, 1)
        z = _exp_argument(first)
        if second.op == "ones" and z is not None and second.shape[1] is E.ONE:
            return axes.logsumexp(z, 2)
    return None


def _stable_scale(node: E.Node) -> E.Node | None:
    """exp(z)/sum(exp(z)) → softmax(z) for a column vector z."""
    coef, x = node.args
    z = _exp_argument(x)
    if z is None or z.shape[1] is not E.ONE or coef.op != "pow" or \
            not E.is_const(coef.args[1], -1):
        return None
    total = coef.args[0]
    return E.softmax(z) if total.op == "sum" and total.args[0] is x else None


_STABLE = {"fn": lambda n: _stable_log(n) if n.attr == "log" else None,
           "scale": _stable_scale}


def stable_form(node: E.Node) -> E.Node:
    """node, or the operator it spells by hand when it is one of the log-sum-exp and softmax
    forms (only node itself is looked at: typecheck applies this to each node it builds, so
    f, its gradient and the emitted code all use the stable forms)."""
    rule = _STABLE.get(node.op)
    found = rule(node) if rule is not None else None
    return node if found is None else found
