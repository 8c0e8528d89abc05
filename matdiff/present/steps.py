"""Derivations a student can follow, in the lecture notes' methods (issue 12).

A derivation is a list of `Step`s. Every step holds IR nodes for its two sides, so it prints in
each notation (Unicode, LaTeX, the JSON's before/after) and can be evaluated: tests check that
each step is a true equation at random points with random differentials.

The differential and trace method (`trace_method`), as the notes do it by hand:
- intermediates a person names (a₁ = W₁x, h₁ = σ(a₁), a₂ = W₂h₁) cut f into short segments;
  the derivation runs backwards through them: ∂f/∂a₂ first, then ∂f/∂W₂ and ∂f/∂h₁, …
- in each segment the differential is expanded top down, one rule per step, with d(·) of the
  parts not yet expanded written out; then the trace tricks move every dX to the right, one
  trick per step; like terms are collected in a step of their own; then G is read off.

Nodes that stand for names are variables with internal names (§…); `Method.names` says how
each notation prints them. A pending differential d(sub) is a dvar with an internal name whose
meaning is `Method.pending[node]`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..derive.differential import RULES
from ..derive.simplify import simplify
from ..derive.traceform import PEEL
from ..ir import expr as E
from ..printing.base import negative_part
from ..printing.latex import LatexPrinter
from ..printing.unicode import UnicodePrinter

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_counter = itertools.count(1)


@dataclass
class Step:
    rule: str
    before: E.Node | None  # None: a definition or a heading
    after: E.Node
    kind: str = "equation"  # "equation" | "define" | "readoff" | "partial"
    continues: bool = False  # before is the previous step's after: print "= after"


@dataclass
class Method:
    """One derivation: steps plus what its internal names stand for."""

    method: str
    steps: list[Step] = field(default_factory=list)
    unicode: dict[E.Node, str] = field(default_factory=dict)  # node → printed name
    latex: dict[E.Node, str] = field(default_factory=dict)
    definitions: dict[E.Node, E.Node] = field(default_factory=dict)  # name var → primal node
    pending: dict[E.Node, E.Node] = field(default_factory=dict)  # d(sub) dvar → sub
    symbols: dict[E.Node, tuple[str, E.Node | str]] = field(default_factory=dict)
    # symbol var (∂f/∂a₂) → ("name", primal node) or ("variable", variable name)
    message: str = ""  # a method that does not apply says why here

    # ---------------------------------------------------------------- printing

    def text_lines(self) -> list[tuple[str, str]]:
        """(rule, line) pairs; a continued chain prints '= after' under the previous line."""
        p = UnicodePrinter(self.unicode)
        out = []
        for s in self.steps:
            if s.before is None:
                line = p.doc(s.after) if s.kind == "heading" else None
                out.append((s.rule, line if line is not None else p.doc(s.after)))
            elif s.continues:
                out.append((s.rule, f"  = {p.doc(s.after)}"))
            else:
                out.append((s.rule, f"{p.doc(s.before)} = {p.doc(s.after)}"))
        return out

    def json_steps(self) -> list[dict]:
        p = UnicodePrinter(self.unicode)
        return [{"before": "" if s.before is None else p.doc(s.before),
                 "after": p.doc(s.after), "rule": s.rule} for s in self.steps]

    def latex_lines(self) -> list[str]:
        p = LatexPrinter(self.latex)
        out = []
        for s in self.steps:
            rule = _latex_text(s.rule)
            if s.before is None:
                out.append(rf"& {p.doc(s.after)} && \text{{{rule}}}")
            elif s.continues:
                out.append(rf"&= {p.doc(s.after)} && \text{{{rule}}}")
            else:
                out.append(rf"{p.doc(s.before)} &= {p.doc(s.after)} && \text{{{rule}}}")
        return out

    def latex_block(self) -> str:
        return "\\begin{align*}\n" + " \\\\\n".join(self.latex_lines()) + "\n\\end{align*}"


# Unicode in a rule's citation, as LaTeX maths (pdflatex and KaTeX's strict mode reject raw ᵀ)
_UNICODE_MATH = {
    "ᵀ": "^{\\top}", "⁻¹": "^{-1}", "⁻ᵀ": "^{-\\top}", "·": "\\cdot ", "⊙": "\\odot ",
    "⊘": "\\oslash ", "⊗": "\\otimes ", "×": "\\times ", "⇒": "\\Rightarrow ", "∂": "\\partial ",
    "σ": "\\sigma", "−": "-", "‖": "\\|", "Σ": "\\Sigma ", "λ": "\\lambda ",
    "∘": "\\circ ", "≠": "\\neq ", "≤": "\\le ", "≥": "\\ge ", "→": "\\to ",
    "⟨": "\\langle ", "⟩": "\\rangle ", "ᵏ": "^{k}", "ʲ": "^{j}", "ⱼ": "_{j}", "ᵢ": "_{i}",
    "₁": "_{1}", "₂": "_{2}", "²": "^{2}", "³": "^{3}", "ᵇ": "^{b}",
}


def _latex_text(rule: str) -> str:
    """A rule's citation for \\text{…}: TeX specials escaped, and each Unicode symbol as inline
    maths ($^{\\top}$ for ᵀ), so the block compiles with pdflatex and KaTeX's strict mode."""
    out = rule.replace("′", "'")
    for a, b in (("\\", r"\textbackslash{}"), ("{", r"\{"), ("}", r"\}"), ("_", r"\_"),
                 ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("$", r"\$"), ("^", r"\^{}")):
        out = out.replace(a, b)
    for symbol in sorted(_UNICODE_MATH, key=len, reverse=True):
        out = out.replace(symbol, "$" + _UNICODE_MATH[symbol].strip() + "$")
    # anything left outside ASCII (a rare symbol) is dropped to '?' rather than breaking TeX
    return "".join(c if ord(c) < 128 else "?" for c in out)


# ---------------------------------------------------------------- names


def trivial(n: E.Node) -> bool:
    if n.op in ("var", "const", "ones", "eye", "zero", "dvar"):
        return True
    if n.op in ("transpose", "inv") and trivial(n.args[0]):
        return True
    return n.op == "scale" and n.args[0].op == "const" and trivial(n.args[1])


def _is_layer(n: E.Node) -> bool:
    return n.op == "matmul" or (n.op == "add" and any(t.op == "matmul" for t in n.args))


def choose_names(f: E.Node, wrt: set[str]) -> list[E.Node]:
    """The intermediates the notes name, in forward order: pre-activations (a = Wx), the
    activations of named pre-activations (h = σ(a)), and values used more than once."""
    order = E.postorder(f)
    parents: dict[E.Node, int] = {}
    for n in order:
        for a in set(n.args):
            parents[a] = parents.get(a, 0) + 1
    activated = {p.args[0] for p in order if p.op in ("fn", "softmax")}
    chosen: list[E.Node] = []
    for n in order:
        if n is f or trivial(n) or n.op == "transpose" or n.is_scalar:
            continue
        if not (E.free_vars(n) & wrt):
            continue
        pre = n in activated and _is_layer(n)
        act = n.op == "fn" and n.args[0] in chosen
        if parents.get(n, 0) >= 2 or pre or act:
            chosen.append(n)
    if not chosen:
        return []
    if len(chosen) < 2 and not any(parents.get(n, 0) >= 2 for n in chosen):
        return []
    return chosen


def _letter(n: E.Node) -> str:
    if _is_layer(n):
        return "a"
    return {"fn": "h", "softmax": "s", "add": "r"}.get(n.op, "t")


class Namer:
    """Variables standing for named values, their differentials and ∂f/∂ symbols."""

    def __init__(self, m: Method, variables: dict[str, E.Node]):
        self.m = m
        self.variables = variables
        self.up = UnicodePrinter()
        self.lp = LatexPrinter()
        self.counters: dict[str, int] = {}

    def name(self, primal: E.Node, letter: str | None = None) -> E.Node:
        letter = letter or _letter(primal)
        self.counters[letter] = self.counters.get(letter, 0) + 1
        k = self.counters[letter]
        v = E.var(f"§{letter}{k}#{next(_counter)}", primal.kind, primal.shape)
        self.m.unicode[v] = f"{letter}{str(k).translate(_SUB)}"
        self.m.latex[v] = f"{letter}_{{{k}}}"
        dv = E.dvar(v.attr[0], v.shape)
        self.m.unicode[dv] = f"d{self.m.unicode[v]}"
        self.m.latex[dv] = rf"\mathrm{{d}}{self.m.latex[v]}"
        self.m.definitions[v] = primal
        return v

    def unconstrained(self, s: E.Node) -> None:
        """Print the symbol s as G₀ (see is_symmetric)."""
        self.m.unicode[s], self.m.latex[s] = "G₀", "G_0"

    def symbol(self, of: E.Node) -> E.Node:
        """∂f/∂(of) as a variable of the shape of `of` (a name var or a variable)."""
        s = E.var(f"§∂{of.attr[0]}#{next(_counter)}", of.kind, of.shape)
        if of in self.m.definitions:
            self.m.unicode[s] = f"∂f/∂{self.m.unicode[of]}"
            self.m.latex[s] = rf"\frac{{\partial f}}{{\partial {self.m.latex[of]}}}"
            self.m.symbols[s] = ("name", self.m.definitions[of])
        else:
            self.m.unicode[s] = f"∂f/∂{self.up.var_name(of.attr[0])}"
            self.m.latex[s] = rf"\frac{{\partial f}}{{\partial {self.lp.var_name(of.attr[0])}}}"
            self.m.symbols[s] = ("variable", of.attr[0])
        return s

    def pending(self, sub: E.Node, printed_as: tuple[str, str] | None = None) -> E.Node:
        """d(sub), not yet expanded."""
        d = E.dvar(f"§d{next(_counter)}", sub.shape)
        if printed_as is None:
            u = UnicodePrinter(self.m.unicode).doc(sub)
            t = LatexPrinter(self.m.latex).doc(sub)
            printed_as = (f"d({u})", rf"\mathrm{{d}}\left({t}\right)")
        self.m.unicode[d], self.m.latex[d] = printed_as
        self.m.pending[d] = sub
        return d


# ---------------------------------------------------------------- citations

CONSTANT_FACTOR = "a constant factor: d(cX) = c·dX"
CONSTANT_MATRIX = "rule 2 with a constant matrix: d(a·C) = da·C"
QUOTIENT = "quotient rule: d(u/v) = (v·du − u·dv)/v²"
NORM_SQUARED = "‖r‖² = rᵀr, so by rules 2 and 3: d‖r‖² = 2rᵀdr"
LOG_SOFTMAX = "softmax(a) = exp(a)/(1ᵀexp(a)), so log softmax(a) = a − 1·log(1ᵀexp(a))"
ONES_HADAMARD = "1ᵀ(u ⊙ v) = uᵀv"
SOFTMAX_DEF = "softmax(a) = exp(a)/(1ᵀexp(a))"
COLLECT = "collect like terms: tr(Aᵀ dX) + tr(Bᵀ dX) = tr((A + B)ᵀ dX)"
READ_OFF = "read off: df = tr(Gᵀ dX) ⇒ ∂f/∂X = G"
SYMMETRIC_PART = ("{name} is {kind}: take the symmetric part (G₀ + G₀ᵀ)/2 (matdiff's "
                  "convention; the Matrix Cookbook's 2G₀ − diag(G₀) differs)")


def is_symmetric(v: E.Node) -> bool:
    """A symmetric (or spd) variable: what every method reads off is G₀, the gradient for v
    taken as unconstrained, and ∂f/∂v is its symmetric part, the last step (two different
    "∂f/∂S =" lines would contradict each other)."""
    return v.attr[1] in ("symmetric", "spd")


def symmetric_part(namer: Namer, v: E.Node, gradient: E.Node) -> Step:
    """The last step for a symmetric variable v: ∂f/∂v = (G₀ + G₀ᵀ)/2."""
    return Step(SYMMETRIC_PART.format(name=v.attr[0], kind=v.attr[1]), namer.symbol(v),
                gradient, kind="symmetric")
CYCLIC = "trick 12: tr(AB) = tr(BA)"
REGROUP = "transpose of a product: Gᵀ·P = (PᵀG)ᵀ"
CANCEL = "cancel a scalar: u⁻¹·u = 1"
LOG_SCALAR = "rule 8 for a scalar: d log u = du/u"
SUM_USES = "gradients add where a value is used more than once"


# ---------------------------------------------------------------- the trace method


class TraceDerivation:
    def __init__(self, result, method: str = "trace"):
        self.result = result
        self.wrt = list(result.wrt)
        self.m = Method(method)
        self.namer = Namer(self.m, result.typed.variables)

    # one level of the differential: d(child) as a dvar, zero or a pending d(child)
    def _d_child(self, c: E.Node, live: set[str]) -> E.Node:
        if c.op == "var":
            return E.dvar(c.attr[0], c.shape) if c.attr[0] in live else E.zero(c.shape)
        if not (E.free_vars(c) & live):
            return E.zero(c.shape)
        return self.namer.pending(c)

    def expand(self, sub: E.Node, live: set[str]) -> tuple[str, E.Node]:
        """d(sub) by one rule, its children's differentials left pending."""
        d = lambda c: self._d_child(c, live)  # noqa: E731
        if sub.op == "pow" and sub.args[0].op == "norm2" and E.is_const(sub.args[1], 2) \
                and not (E.free_vars(sub.args[1]) & live):
            r = sub.args[0].args[0]
            return NORM_SQUARED, E.scale(E.const(2), E.inner(r, d(r)))
        if sub.op == "scale" and sub.is_scalar and sub.args[0].op == "pow" \
                and E.is_const(sub.args[0].args[1], -1):
            v, u = sub.args[0].args[0], sub.args[1]
            if E.free_vars(v) & live and E.free_vars(u) & live:
                top = E.sub(E.scale(v, d(u)), E.scale(u, d(v)))
                return QUOTIENT, E.scale(E.power(v, E.const(-2)), top)
        if sub.op == "fn" and sub.attr == "log" and sub.args[0].op == "softmax" \
                and sub.args[0].args[0].shape[1] is E.ONE:
            a = sub.args[0].args[0]
            ones = E.ones(a.shape)
            lse = E.fn("log", E.reduction("sum", E.fn("exp", a)))
            return LOG_SOFTMAX, self.namer.pending(E.sub(a, E.scale(lse, ones)))
        if sub.op == "fn" and sub.attr == "log" and sub.args[0].is_scalar:
            u = sub.args[0]
            return LOG_SCALAR, E.scale(E.power(u, E.const(-1)), d(u))
        if sub.op == "scale":
            c, x = sub.args
            if not (E.free_vars(c) & live):
                return CONSTANT_FACTOR, E.scale(c, d(x))
            if not (E.free_vars(x) & live):  # d(c·1) = dc·1: the matrix is the constant
                return CONSTANT_MATRIX, E.scale(d(c), x)
        if sub.op == "add" and any(negative_part(t) is not None for t in sub.args):
            # d(a − b) = da − db: the minus stays outside d(·)
            parts = [d(t) if negative_part(t) is None else E.neg(d(negative_part(t)))
                     for t in sub.args]
            return RULES["add"].label, E.add(*parts)
        rule = RULES[sub.op]
        label = rule.label
        if sub.op == "fn":
            label = _rule8(sub.attr)
        return label, rule.apply(None, sub, d)

    def chain(self, start: E.Node, live: set[str], first_before: E.Node | None = None,
              continues: bool = False):
        """Expand every pending d(·) in `start`, outermost first; returns the last node."""
        expr = start
        before = first_before
        while True:
            todo = [n for n in E.walk(expr) if n in self.m.pending]
            if not todo:
                break
            pd = todo[0]
            label, d = self.expand(self.m.pending[pd], live)
            new = E.substitute(expr, {pd: d})
            self.m.steps.append(Step(label, before if before is not None else expr, new,
                                     continues=continues))
            before, continues = new, True
            expr = new
        expr = self._rewrite(expr, before, continues)
        return expr

    def _rewrite(self, expr, before, continues):
        """1ᵀ(u ⊙ dv) = uᵀdv, then exp(a)ᵀdv/(1ᵀexp(a)) = softmax(a)ᵀdv (the notes' example 1)."""
        for label, find in ((ONES_HADAMARD, _ones_hadamard), (SOFTMAX_DEF, _softmax_ratio),
                            (CANCEL, _cancel)):
            mapping = {n: r for n in E.walk(expr) if (r := find(n)) is not None}
            if mapping:
                new = E.substitute(expr, mapping)
                if new is not expr:
                    self.m.steps.append(Step(label, before if before is not None else expr, new,
                                             continues=continues))
                    before, continues, expr = new, True, new
        self._last = (before, continues)
        return expr

    # ---- the trace tricks
    def peel(self, expr: E.Node, before, continues) -> list[tuple[E.Node, E.Node]]:
        pairs = [(E.const(1), expr)]
        p = UnicodePrinter(self.m.unicode)
        shown = p.doc(_pairs_node(pairs)).replace(" ", "")
        cur = before if before is not None else expr
        while True:
            idx = [i for i, (g, lin) in enumerate(pairs) if lin.op != "dvar"]
            if not idx:
                break
            i = idx[0]
            g, lin = pairs[i]
            rule = PEEL[lin.op]
            res = [(cg, child) for child, cg in rule.apply(lin, g)]
            pairs = pairs[:i] + res + pairs[i + 1:]
            node = _pairs_node(pairs)
            text = p.doc(node).replace(" ", "")
            if text == shown or not rule.label:
                continue
            label = rule.label
            if lin.op == "matmul":
                k = [j for j, a in enumerate(lin.args) if E.has_differential(a)][0]
                label = CYCLIC if k < len(lin.args) - 1 else REGROUP
            if ("trace" in label or "tr(" in label) and "tr(" not in text + shown:
                # df of a scalar f is its own trace: the notes' tricks read tr(df) = df
                label += " (a scalar is its own trace: tr(a) = a)"
            self.m.steps.append(Step(label, cur, node, continues=continues))
            cur, continues, shown = node, True, text
        # collect like terms
        grouped: dict[E.Node, list[E.Node]] = {}
        for g, lin in pairs:
            grouped.setdefault(lin, []).append(g)
        if any(len(gs) > 1 for gs in grouped.values()):
            pairs = [(E.add(*gs), lin) for lin, gs in grouped.items()]
            node = _pairs_node(pairs)
            self.m.steps.append(Step(COLLECT, cur, node, continues=continues))
        return pairs

    # ---- the whole derivation
    def run(self) -> Method:
        r = self.result
        wrt = set(self.wrt)
        f = r.f
        primals = choose_names(f, wrt)
        names: dict[E.Node, E.Node] = {}  # primal → name var
        defs: list[tuple[E.Node, E.Node]] = []  # (name var, definition in names)
        for n in primals:
            body = E.substitute(n, dict(names)) if names else n
            v = self.namer.name(n)
            names[n] = v
            defs.append((v, body))
            self.m.steps.append(Step("name an intermediate", v, body, kind="define"))
        top = E.substitute(f, dict(names)) if names else f
        fvar = E.var("§f", "scalar", E.SCALAR)
        self.m.unicode[fvar], self.m.latex[fvar] = "f", "f"
        self.m.steps.append(Step("the function" + (" in the named values" if names else ""),
                                 fvar, top, kind="define"))
        live_names = {v.attr[0] for v, _ in defs}
        live = wrt | live_names
        # segments: the function, then each name backwards
        segments = [(None, top)] + [(v, body) for v, body in reversed(defs)]
        uses = {}
        for _, body in segments:
            for name in E.free_vars(body) & live:
                uses[name] = uses.get(name, 0) + 1
        contributions: dict[str, list[E.Node]] = {}
        symbols: dict[str, E.Node] = {}
        unconstrained: dict[str, str] = {}  # symmetric S read off as G₀ first

        def read_off(name: str) -> str:
            x = unconstrained.get(name)
            return READ_OFF if x is None else \
                f"read off: df = tr(G₀ᵀ d{x}) ⇒ G₀, the gradient for {x} taken as unconstrained"

        def symbol_of(name):
            if name not in symbols:
                node = next((v for v, _ in defs if v.attr[0] == name), None)
                if node is None:
                    node = r.typed.variables[name]
                symbols[name] = self.namer.symbol(node)
                if name in self.wrt and is_symmetric(node):
                    self.namer.unconstrained(symbols[name])
                    unconstrained[name] = self.namer.up.var_name(name)
            return symbols[name]

        for var, body in segments:
            if var is None:
                start = self.namer.pending(body, ("df", r"\mathrm{d}f"))
                fd = E.dvar("§df", E.SCALAR)
                self.m.unicode[fd], self.m.latex[fd] = "df", r"\mathrm{d}f"
                self.m.pending[fd] = body
                expr = self.chain(start, live, first_before=fd)
                before, continues = self._last
                before = before if before is not None else fd
            else:
                name = var.attr[0]
                gs = contributions.get(name, [])
                sym = symbol_of(name)
                if not gs:
                    continue
                if len(gs) > 1:
                    self.m.steps.append(Step(SUM_USES, sym, E.add(*gs), kind="readoff"))
                dv = E.dvar(name, var.shape)
                head = E.inner(sym, dv)
                inner = E.inner(sym, self.namer.pending(body))
                self.m.steps.append(Step(f"{self.m.unicode[var]} = "
                                         f"{UnicodePrinter(self.m.unicode).doc(body)}",
                                         head, inner))
                expr = self.chain(inner, live, first_before=inner, continues=True)
                before, continues = self._last
                before = before if before is not None else inner
                continues = True
            pairs = self.peel(expr, before, continues)
            for g, lin in pairs:
                name = lin.attr
                contributions.setdefault(name, []).append(simplify(g))
                sym = symbol_of(name)
                if uses.get(name, 0) == 1:
                    self.m.steps.append(Step(read_off(name), sym, simplify(g), kind="readoff"))
                else:
                    self.m.steps.append(Step("read off this use's part (" + READ_OFF + ")",
                                             sym, simplify(g), kind="partial"))
        for name in self.wrt:
            v = r.typed.variables[name]
            gs = contributions.get(name, [])
            sym = symbol_of(name)
            if uses.get(name, 0) > 1 and gs:
                self.m.steps.append(Step(SUM_USES, sym, simplify(E.add(*gs)), kind="readoff"))
            if not gs:
                self.m.steps.append(Step("f does not depend on it", sym, E.zero(v.shape),
                                         kind="readoff"))
            if is_symmetric(v):
                self.m.steps.append(symmetric_part(self.namer, v, r.gradients[name]))
        return self.m


def _rule8(name: str) -> str:
    """Rule 8 cited with the step's own function and its f′: d exp(X) = exp(X) ⊙ dX,
    d tanh(X) = (1 − tanh(X)^∘2) ⊙ dX, dσ(X) = σ'(X) ⊙ dX (the notes' dσ(X) = σ′(X) ⊙ dX)."""
    if name == "log":
        return "rule 8: d log(X) = dX ⊘ X"
    shape = (E.Dim("m"), E.Dim("n"))
    x, dx = E.var("X", "matrix", shape), E.dvar("X", shape)
    p = UnicodePrinter()
    try:
        fx = E.fn(name, x)
        f = p.doc(fx)
        sep = " " if f[:2].isalpha() else ""  # d tanh(X), dσ(X), d|X|
        return f"rule 8: d{sep}{f} = {p.doc(RULES['fn'].apply(None, fx, lambda c: dx))}"
    except Exception:  # a function without a printable f′: the notes' template
        return "rule 8: dσ(X) = σ′(X) ⊙ dX"


def _pairs_node(pairs) -> E.Node:
    terms = [_pair(g, lin) for g, lin in pairs]
    return terms[0] if len(terms) == 1 else E.add(*terms)


def _pair(g: E.Node, lin: E.Node) -> E.Node:
    """tr(Gᵀ L) as a person writes it: L, g·l, mᵀl with m = Gᵀ moved to the front, tr(M L)."""
    if g.is_scalar:
        return lin if E.is_const(g, 1) else E.scale(simplify(g), lin)
    if g.op == "eye":
        return E.trace(lin)
    if lin.shape[0] is E.ONE and lin.shape[1] is not E.ONE:  # rows: l gᵀ
        return _with_coef(_shortest(simplify(E.transpose(g)), E.transpose(simplify(g))),
                          lambda m: _product(lin, m))
    m = _shortest(simplify(E.transpose(g)), E.transpose(simplify(g)))
    if lin.shape[1] is E.ONE:
        return _with_coef(m, lambda m: _product(m, lin))
    return _with_coef(m, lambda m: E.trace(_product(m, lin)))


def _shortest(*nodes: E.Node) -> E.Node:
    p = UnicodePrinter()
    return min(nodes, key=lambda n: len(p.doc(n)))


def _with_coef(m: E.Node, build) -> E.Node:
    """A scalar factor in front of the whole pairing: −yᵀda, not (−y)ᵀda or + −yᵀ."""
    if m.op == "scale":
        return E.scale(m.args[0], build(m.args[1]))
    return build(m)


def _product(a: E.Node, b: E.Node) -> E.Node:
    args = (a.args if a.op == "matmul" else (a,)) + (b.args if b.op == "matmul" else (b,))
    return E.matmul(*args)


def _ones_hadamard(n: E.Node):
    if n.op == "sum" and n.args[0].op == "hadamard" and n.args[0].shape[1] is E.ONE \
            and len(n.args[0].args) == 2:
        u, v = n.args[0].args
        if E.has_differential(u):
            u, v = v, u
        if E.has_differential(v):
            return E.matmul(E.transpose(u), v)
    return None


def _softmax_ratio(n: E.Node):
    # k·(1ᵀexp(a))⁻¹·(exp(a)ᵀ dv) → k·softmax(a)ᵀ dv
    if n.op != "scale":
        return None
    for c, m in (n.args, tuple(reversed(n.args))):
        k, p = _split_coef(c, lambda p: p.op == "pow" and E.is_const(p.args[1], -1)
                           and p.args[0].op == "sum" and p.args[0].args[0].op == "fn"
                           and p.args[0].args[0].attr == "exp")
        if p is None or m.op != "matmul":
            continue
        e = p.args[0].args[0]
        if m.args[0].op == "transpose" and m.args[0].args[0] is e:
            out = E.matmul(E.transpose(E.softmax(e.args[0])), *m.args[1:])
            return out if k is None else E.scale(k, out)
    return None


def _split_coef(c: E.Node, match):
    """c = p or k·p with match(p): (k or None, p), else (None, None)."""
    if match(c):
        return None, c
    if c.op == "scale":
        for k, p in (c.args, tuple(reversed(c.args))):
            if match(p):
                return k, p
    return None, None


def _cancel(n: E.Node):
    # u⁻¹·(u·M) → M for a scalar u (d log det X = det(X)⁻¹·det(X)·tr(X⁻¹dX))
    if n.op != "scale" or n.args[0].op != "scale":
        return None
    a, b = n.args[0].args
    for p, u in ((a, b), (b, a)):
        if p.op == "pow" and E.is_const(p.args[1], -1) and p.args[0] is u:
            return n.args[1]
    return None


def trace_method(result) -> Method:
    return TraceDerivation(result).run()
