"""The command line (SPEC §2). `main(argv) -> int` is the only place that knows about exit
codes, standard streams and Rich: user errors → one message and exit 2; anything else is a
bug → "internal error, please report" and exit 3."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings

from .errors import InternalError, MatdiffError, ParseError, ShapeError

EXIT_OK, EXIT_WRONG, EXIT_USAGE, EXIT_INTERNAL, EXIT_UNPROVED = 0, 1, 2, 3, 4

_VALUE_OPTIONS = {"--wrt", "--let", "--format", "--claim", "--seed", "--along", "--define",
                  "-o", "--output", "--input", "--layout", "--convention", "--batch", "--target",
                  "--method", "--claim-differential"}
_FLAG_OPTIONS = {"--steps", "--plain", "--no-check", "--verify", "--hessian", "--jacobian",
                 "--vec", "-h", "--help"}
_COMMANDS = ("parse", "grad", "check", "codegen", "jacobian", "hessian", "graph", "differential")
_JSON_COMMANDS = ("grad", "check", "jacobian", "hessian", "differential")
# what looks like an option: --name or --name=value (anything else is an expression, "--x'*x")
_OPTION_LIKE = re.compile(r"--[A-Za-z][A-Za-z0-9-]*(=.*)?", re.S)


class _IOFailure(MatdiffError):
    """Standard input or output (or the -o file) could not be used: not a bug in matdiff."""


def version() -> str:
    """The installed distribution's version; the package's own when not installed."""
    try:
        from importlib.metadata import version as dist_version

        return dist_version("matdiff")
    except Exception:  # not installed (a source checkout on sys.path)
        from . import __version__

        return __version__


class _StoreOnce(argparse.Action):
    """An option with one value, refused when given twice (argparse keeps the last one:
    `--layout numerator --layout denominator` would silently flip a verdict)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_options_given", set())
        if self.dest in given:
            parser.error(f"{option_string} given twice: give it once")
        given.add(self.dest)
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        # No prefixes (--out for --output): _split_argv pairs an option with its value by its
        # full name, so an abbreviation would lose its value; a typo is named instead.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_argument(self, *names, **kwargs):
        if names and names[0].startswith("-") and kwargs.get("action") in (None, "store"):
            kwargs["action"] = _StoreOnce
        return super().add_argument(*names, **kwargs)

    def error(self, message):  # one line and exit 2, as for every bad input
        if message.startswith("unrecognized arguments"):
            import difflib

            words = message.split(":", 1)[1].split()
            known = sorted(_VALUE_OPTIONS | _FLAG_OPTIONS | {"--version"})
            for w in words:
                close = difflib.get_close_matches(w.split("=", 1)[0], known, n=1)
                if w.startswith("--") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
        raise MatdiffError(f"{message} (see '{self.prog} --help')")


def _unknown_options(parser, args, extras: list[str]) -> str:
    """What is wrong with options the command does not take: an option of another command
    (--steps on hessian) is said so, with the command's own options; a typo gets the nearest."""
    import difflib

    sub = None
    for action in parser._actions:  # argparse keeps its subparsers here
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices.get(args.command)
    own = sorted(k for k in (sub._option_string_actions if sub else {}) if k.startswith("--"))
    prog = f"matdiff {args.command}" if args.command else "matdiff"
    for w in extras:
        name = w.split("=", 1)[0]
        if not name.startswith("-"):
            continue
        if name in _VALUE_OPTIONS | _FLAG_OPTIONS | {"--target", "--method", "--input"}:
            return (f"{name} is not an option of '{prog}' (its options: {', '.join(own)}; "
                    f"see '{prog} --help')")
        close = difflib.get_close_matches(name, own, n=1)
        if close:
            return f"unknown option {name} for '{prog}': did you mean {close[0]}?"
    return f"unrecognized arguments: {' '.join(extras)} (see '{prog} --help')"


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="matdiff", description=(
        "Symbolic matrix calculus: derive gradients of scalar functions of matrices the way "
        "a person does it on paper, check them numerically, and emit NumPy code."),
        epilog="Exit codes: 0 ok, 1 claim is wrong (check), 2 bad input, 3 internal error, 4 "
               "claim agrees but is not proved (check, piecewise claims). "
               "EXPR '-' reads the expression from standard input.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def common(sp, optional=False):
        sp.add_argument("expr", metavar="EXPR", nargs="?" if optional else None,
                        help="the expression, e.g. \"tr(A*X*B)\" or LaTeX "
                        "\"\\operatorname{tr}(AXB)\"; '-' reads it from standard input")
        sp.add_argument("--let", action="append", default=[], metavar="NAME:KIND",
                        help="declare a variable's kind: scalar, vector, matrix, symmetric, spd, "
                             "probability (a vector summing to 1: one-hot or a distribution) "
                             "(default: a-g scalar, h-z vector, A-Z and capital Greek matrix, "
                             "lower-case Greek scalar; a scalar-default name takes the "
                             "kind its context needs)")
        sp.add_argument("--plain", action="store_true", help="no colours or boxes")
        sp.add_argument("--input", choices=("auto", "text", "latex"), default="auto",
                        help="how EXPR (and --claim) are read: auto (LaTeX when the text has a "
                             "backslash and is not plain matdiff), text, or latex")

    sub.add_parser("repl", help="interactive mode (also: matdiff with no arguments)",
                   description="Read expressions line by line; 'help' inside lists what it "
                               "understands.")
    sp = sub.add_parser("parse", help="show how the expression was read (kinds and shapes)",
                        description="Print the typed tree: every node with its kind and shape.")
    common(sp)

    sp = sub.add_parser("grad", help="derive gradients",
                        description="Derive ∂f/∂X for each --wrt variable: the differential "
                                    "df = tr(Gᵀ dX) and the gradient G (shape of X).")
    common(sp)
    sp.add_argument("--wrt", action="append", metavar="X",
                    help="variable to differentiate by (repeatable)")
    sp.add_argument("--along", metavar="T",
                    help="total derivative df/dT along a path given by --define (chain rule)")
    sp.add_argument("--define", action="append", default=[], metavar="NAME=EXPR",
                    help="an inner function for --along, e.g. --define x=A*u")
    sp.add_argument("--format", choices=("text", "latex", "json"), default="text")
    sp.add_argument("--steps", action="store_true", help="show the derivation rule by rule")
    sp.add_argument("--method", choices=("trace", "backprop", "jacobian"), default=None,
                    help="the derivation's method (implies --steps): the differential and trace "
                         "method (default), backprop on the computation graph, or the chain of "
                         "Jacobians")
    sp.add_argument("--no-check", action="store_true",
                    help="skip the numerical self-check (for benchmarks)")

    sp = sub.add_parser("check", help="check a claimed gradient (homework)",
                        description="Decide whether --claim is ∂f/∂X; exit 0 'correct', "
                                    "exit 1 with a diagnosis, exit 2 if the claim is malformed.")
    common(sp, optional=True)
    sp.add_argument("--wrt", action="append", default=[], metavar="X",
                    help="the variable the claim is a gradient for (one per check)")
    sp.add_argument("--claim", action="append", default=[], metavar="G",
                    help="the claimed gradient ∂f/∂X, in the same expression language or in "
                         "LaTeX, e.g. \"A'*B'\" (one per check; it may begin with -)")
    sp.add_argument("--steps", action="store_true",
                    help="also show matdiff's derivation and how the verdict was decided")
    sp.add_argument("--format", choices=("text", "json"), default="text",
                    help="json: {\"verdict\", \"correct\", \"text\"}")
    sp.add_argument("--layout", choices=("denominator", "numerator"), default="denominator",
                    help="numerator: the claim is ∂f/∂Xᵀ (a row for a vector x), as in "
                         "numerator-layout courses; default: the shape of X")
    sp.add_argument("--convention", choices=("matdiff", "cookbook"), default="matdiff",
                    help="cookbook: for symmetric/spd X the claim is the Matrix Cookbook's "
                         "2G − diag(G)")
    sp.add_argument("--jacobian", action="store_true",
                    help="the claim is the Jacobian J = ∂f/∂xᵀ of a vector-valued EXPR (m×n)")
    sp.add_argument("--hessian", action="store_true",
                    help="the claim is the Hessian H = ∂²f/∂x∂xᵀ of a scalar EXPR")
    sp.add_argument("--claim-differential", metavar="DF",
                    help="a claimed differential dF of a matrix- or vector-valued EXPR, linear "
                         "in dX, e.g. \"dX*X + X*dX\" for X^2")
    sp.add_argument("--batch", metavar="FILE",
                    help="grade a file of answers: CSV or JSONL with columns id, expression, "
                         "wrt, claim[, let]; prints a table (or JSON) of verdicts")

    sp = sub.add_parser("jacobian", help="Jacobian of a vector-valued expression",
                        description="J = ∂f/∂xᵀ in numerator layout (m×n for f: ℝⁿ → ℝᵐ), "
                                    "with df = J dx.")
    common(sp)
    sp.add_argument("--wrt", action="append", required=True, metavar="x",
                    help="the variable to differentiate with respect to")
    sp.add_argument("--format", choices=("text", "latex", "json"), default="text")
    sp.add_argument("--vec", action="store_true",
                    help="the Kronecker form vec(df) = J vec(dX), for matrix-valued "
                         "expressions or matrix variables")

    sp = sub.add_parser("differential", help="dF of a matrix- or vector-valued expression as "
                                             "a linear map in dX",
                        description="dF as a linear expression in dX (X³ → dX X² + X dX X + "
                                    "X² dX), its Kronecker form vec(dF) = J vec(dX) where one "
                                    "exists, checked as a directional derivative.")
    common(sp)
    sp.add_argument("--wrt", action="append", required=True, metavar="X",
                    help="the variable of dX")
    sp.add_argument("--format", choices=("text", "latex", "json"), default="text")

    sp = sub.add_parser("hessian", help="Hessian of a scalar expression",
                        description="H = ∂²f/∂x∂xᵀ for a vector or scalar x; for a matrix X "
                                    "the Hessian applied to a direction V, H[V] "
                                    "(d²f = tr(Vᵀ H[V])).")
    common(sp)
    sp.add_argument("--wrt", action="append", required=True, metavar="x",
                    help="the variable of the Hessian (a vector or scalar; a matrix gives H[V])")
    sp.add_argument("--format", choices=("text", "latex", "json"), default="text")

    sp = sub.add_parser("codegen", help="emit a NumPy, JAX or PyTorch module for f and its "
                                        "gradients",
                        description="Write a self-contained Python module defining f, "
                                    "grad_X for each --wrt, and f_and_grad (NumPy, JAX or "
                                    "PyTorch: --target).")
    common(sp)
    sp.add_argument("--wrt", action="append", required=True, metavar="X",
                    help="a variable to emit grad_X for (repeat for several)")
    sp.add_argument("--verify", action="store_true",
                    help="check the emitted gradients against finite differences of f")
    sp.add_argument("--hessian", action="store_true",
                    help="also emit hess_NAME (vector and scalar variables) and hvp_NAME(V, …)")
    sp.add_argument("--jacobian", action="store_true",
                    help="for a vector-valued EXPR: emit f and jac_NAME (numerator layout)")
    sp.add_argument("-o", "--output", metavar="FILE",
                    help="write the module to FILE instead of standard output")
    sp.add_argument("--target", choices=("numpy", "jax", "torch"), default="numpy",
                    help="the array library of the module (default numpy); jax: traceable "
                         "under jit/vmap, with f_custom (custom_vjp); torch: any device, with "
                         "MatdiffF (autograd.Function)")
    from .web.commands import add_parsers  # graph and serve (issue 17); argparse only

    add_parsers(sub, common)
    return p


def _split_argv(argv: list[str]) -> list[str]:
    """Let EXPR and option values begin with '-' (e.g. "-y'*log(softmax(a))") without '--'."""
    if not argv or argv[0] not in _COMMANDS:
        return argv
    options, positional, unknown = [argv[0]], [], []
    i = 1
    while i < len(argv):
        tok = argv[i]
        if tok == "--":  # the usual end of options: everything after it is positional
            positional += argv[i + 1:]
            break
        if tok in _VALUE_OPTIONS and i + 1 < len(argv):
            options.append(f"{tok}={argv[i + 1]}")
            i += 2
            continue
        if tok in _FLAG_OPTIONS or (tok.startswith("--") and "=" in tok
                                    and tok.split("=", 1)[0] in _VALUE_OPTIONS):
            options.append(tok)
        elif _OPTION_LIKE.fullmatch(tok):
            options.append(tok)  # unknown option: let argparse report it
            unknown.append(tok)
        else:
            positional.append(tok)
        i += 1
    if unknown and not positional:
        raise MatdiffError(f"unknown option {unknown[0]} and no EXPR: if {unknown[0]} is the "
                           "expression, EXPR may not begin with -- (write -(-…) instead, or "
                           f"put it last after --) (see 'matdiff {argv[0]} --help')")
    return options + (["--"] + positional if positional else [])


from .language.shapes import declarations  # noqa: E402  (NAME:KIND parsing lives with the kinds)

_declarations = declarations


def _read_expr(expr: str) -> str:
    if expr != "-":
        return expr
    stdin = sys.stdin
    if stdin is None or getattr(stdin, "closed", False):
        raise _IOFailure("EXPR '-' reads the expression from standard input, but standard "
                         "input is closed: pass the expression as an argument or pipe it in")
    try:
        if (hasattr(stdin, "reconfigure") and
                (getattr(stdin, "encoding", "") or "").lower().replace("-", "") != "utf8"):
            stdin.reconfigure(encoding="utf-8", errors="replace")
        text = stdin.read()
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise _IOFailure(f"cannot read the expression from standard input: {reason}") from None
    text = text.strip()
    if re.search("[\udc80-\udcff\ufffd]", text):
        raise _IOFailure("standard input is not UTF-8 text: save the expression as UTF-8")
    if not text:
        raise ParseError("standard input held no expression (EXPR '-' reads it from there)")
    depth = 0
    for k, ch in enumerate(text):
        depth += (ch in "([{") - (ch in ")]}")
        if ch != "\n" or depth > 0:  # a break inside brackets continues the expression
            continue
        before, after = text[:k].rstrip(), text[k + 1:].lstrip()
        # a line break with no operator on either side would multiply the two lines
        if re.search(r"[\w)'ᵀ⊤¹|‖}\]]$", before) and re.match(r"[\w(|‖\\]", after):
            line = text.count("\n", 0, k) + 2
            raise ParseError(f"standard input holds more than one expression (line {line} "
                             f"follows line {line - 1} with no operator between them)",
                             (len(before), len(before) + 1), text.replace("\n", " "),
                             hint="give one expression per call; to multiply them, end the "
                                  "line with *")
    return text


_NAME = re.compile(r"[^\W\d]\w*")


def _validate(args) -> None:
    """Options are honoured or refused, never silently dropped (issue 19)."""
    cmd = args.command
    if cmd == "check":
        if args.jacobian and args.hessian:
            raise MatdiffError("--jacobian and --hessian do not go together: a claim is one of "
                               "them; run check once for each")
        if args.batch:
            if args.expr or args.wrt or args.claim:
                raise MatdiffError("--batch FILE reads each expression, variable and claim from "
                                   "the file: drop EXPR, --wrt and --claim")
            args.let = declarations(args.let)
            return
        if args.claim_differential is not None:
            if args.claim or args.batch or args.jacobian or args.hessian:
                raise MatdiffError("--claim-differential is a claim of its own: drop --claim, "
                                   "--batch, --jacobian and --hessian")
            args.claim = [args.claim_differential]
        if not args.expr:
            raise MatdiffError("check needs EXPR, --wrt X and --claim G (or --batch FILE)")
        for option, values in (("--wrt", args.wrt), ("--claim", args.claim)):
            if not values:
                raise MatdiffError(f"check needs {option} (see 'matdiff check --help')")
            distinct = list(dict.fromkeys(values))
            if len(distinct) > 1:
                what = "variable" if option == "--wrt" else "claim"
                raise MatdiffError(f"{option} given {len(values)} times ({', '.join(distinct)}):"
                                   f" check decides one {what} at a time; run matdiff check "
                                   f"once per {what}")
        args.wrt, args.claim = args.wrt[0], args.claim[0]
    if cmd == "codegen" and args.jacobian and args.hessian:
        raise MatdiffError("--jacobian and --hessian do not go together (a module holds either "
                           "jac_NAME for a vector-valued EXPR or hess_NAME for a scalar one): "
                           "run codegen once for each")
    if cmd == "grad":
        if args.define and not args.along:
            raise MatdiffError("--define gives an inner function for --along: add --along T "
                               "(the path parameter), or drop --define")
        if args.along and args.steps:
            raise MatdiffError("--steps does not go with --along: the chain-rule output already "
                               "shows each Jacobian factor; drop --steps")
        if args.along and (args.method or args.no_check):
            option = "--method" if args.method else "--no-check"
            raise MatdiffError(f"{option} does not go with --along: the chain-rule output is "
                               f"its own derivation and is always checked; drop {option}")
    args.let = declarations(args.let)


def _warn_unused(args) -> None:
    """A declared name that appears in none of the inputs: probably a typo."""
    texts = [args.expr]
    if getattr(args, "claim", None):
        texts.append(args.claim if isinstance(args.claim, str) else " ".join(args.claim))
    texts += list(getattr(args, "define", None) or [])
    if getattr(args, "along", None):
        texts.append(args.along)
    used = set()
    for text in texts:
        used.update(_NAME.findall(text))
    for name, kind in args.let.items():
        if name not in used:
            sys.stderr.write(f"warning: {name} is declared but not used (--let {name}:{kind})\n")


def _use_rich(args) -> bool:
    return (not getattr(args, "plain", False) and "NO_COLOR" not in os.environ
            and sys.stdout.isatty())


# ---------------------------------------------------------------- commands


def cmd_parse(args, out) -> int:
    from .language.typecheck import typecheck
    from .present.tree import plain_tree, variables_table

    typed = typecheck(args.expr, args.let)
    if _use_rich(args):
        from rich.console import Console

        from .present.tree import rich_tree

        Console().print(rich_tree(typed))
    else:
        out.write(plain_tree(typed) + "\n")
    out.write(variables_table(typed) + "\n")
    return EXIT_OK


def cmd_grad(args, out) -> int:
    from .derive.gradient import derive

    if args.along:
        return cmd_along(args, out)
    if not args.wrt:
        raise MatdiffError("grad needs --wrt X (or --along T with --define NAME=EXPR)")
    method = args.method or "trace"
    args.steps = args.steps or args.method is not None
    result = derive(args.expr, args.wrt, args.let,
                    check=not args.no_check, steps=args.steps)
    _assume_probability(result, args.let)
    if args.format == "json":
        from .present.render import grad_json

        out.write(json.dumps(grad_json(result, steps=args.steps, method=method), ensure_ascii=False,
                             indent=2) + "\n")
    elif args.format == "latex":
        from .present.render import grad_latex

        out.write(grad_latex(result, steps=args.steps, method=method) + "\n")
    else:
        from .present.render import grad_report, grad_text

        if _use_rich(args):
            _rich_grad(grad_report(result, steps=args.steps, method=method))
        else:
            out.write(grad_text(result, steps=args.steps, method=method) + "\n")
    return EXIT_OK


def _assume_probability(result, types) -> None:
    """Variables declared probability vectors: 1ᵀy = 1 in the gradients and the where block."""
    from .derive.simplify import assume_sums_to_one
    from .language.shapes import probability_names

    names = probability_names(types) & set(result.typed.variables)
    if not names:
        return
    for table in (result.gradients, result.adjoints):
        for key, node in list(table.items()):
            table[key] = assume_sums_to_one(node, names)


def _rich_grad(report) -> None:
    """The answer as a panel: shapes table, numbered derivation, results, where block."""
    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    # Text, not markup: derivation steps contain brackets such as [d(XY) = …]
    table = Table("variable", "kind", "shape", box=None, header_style="bold")
    for row in report.variables:
        table.add_row(*row)
    parts = [Text(report.function, style="bold"), table]
    if report.steps:
        steps = Text()
        for i, (rule, line) in enumerate(report.steps, 1):
            steps.append(f"{i:3d}. {line}\n")
            steps.append(f"     {rule}\n", style="dim")
        for note in report.notes:
            steps.append(f"note: {note}\n", style="yellow")
        parts.append(Panel(steps, title="derivation", expand=False))
    results = Text()
    for line in report.results:
        results.append(line + "\n", style="bold green" if line.startswith("∂") else "")
    if report.where:
        results.append("where\n")
        for w in report.where:
            results.append(f"  {w}\n")
    for note in report.conditions:
        results.append(f"note: {note}\n", style="yellow")
    parts.append(results)
    if report.check:
        parts.append(Text(report.check, style="dim"))
    Console().print(Panel(Group(*parts), title="matdiff grad", expand=False))


def cmd_check(args, out) -> int:
    from .oracles.diagnose import check_claim

    target = "jacobian" if args.jacobian else "hessian" if args.hessian else "gradient"
    if args.claim_differential is not None:
        from .derive.differential_map import check_differential

        verdict = check_differential(args.expr, args.wrt, args.claim, args.let)
    elif args.batch:
        return _check_batch(args, out, target)
    else:
        verdict = check_claim(args.expr, args.wrt, args.claim, args.let,
                              steps=args.steps, layout=args.layout,
                              convention=args.convention, target=target, prove="auto")
    if args.format == "json":
        out.write(json.dumps({"verdict": verdict.status, "correct": bool(verdict.correct),
                              "text": verdict.text}, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(verdict.text + "\n")
    # "unproved" (agrees everywhere it was evaluated, piecewise, no proof) is neither: its own
    # exit code, so that a script never reads it as "correct"
    if verdict.status == "unproved":
        return EXIT_UNPROVED
    return EXIT_OK if verdict.correct else EXIT_WRONG


def _check_batch(args, out, target) -> int:
    """Grade a file of answers: a table (or JSON) of verdicts with a summary. Exit 0 when every
    row ran, whatever the verdicts; a bad row is reported in its place."""
    from collections import Counter

    from .oracles.diagnose import grade_batch

    rows = grade_batch(args.batch, args.let, steps=args.steps, layout=args.layout,
                       convention=args.convention, target=target, prove="auto")
    counts = Counter(r.verdict for r in rows)
    order = ("correct", "unproved", "wrong", "error")
    summary = {k: counts.get(k, 0) for k in order}
    if args.format == "json":
        out.write(json.dumps({"rows": [{"line": r.line, "id": r.id, "verdict": r.verdict,
                                        "correct": r.verdict == "correct", "text": r.text}
                                       for r in rows],
                              "summary": {"rows": len(rows), **summary}},
                             ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    width = max([len(r.id) for r in rows] + [2])
    out.write(f"{'id'.ljust(width)}  {'line':>4}  {'verdict':<9} diagnosis\n")
    for r in rows:
        first, *rest = r.text.splitlines() or [""]
        out.write(f"{r.id.ljust(width)}  {r.line:>4}  {r.verdict:<9} {first}\n")
        for more in rest:
            out.write(f"{'':{width}}  {'':>4}  {'':<9} {more}\n")
    out.write(f"{len(rows)} answers: " + ", ".join(f"{summary[k]} {k}" for k in order) + "\n")
    return EXIT_OK


def cmd_along(args, out) -> int:
    from .derive.chain_rule import along, parse_definitions
    from .present.render import along_json, along_text

    if args.wrt:
        raise MatdiffError("--along and --wrt do not go together: --along T differentiates "
                           "along the path")
    result = along(args.expr, args.along, parse_definitions(args.define),
                   args.let)
    if args.format == "json":
        out.write(json.dumps(along_json(result), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(along_text(result, latex=args.format == "latex") + "\n")
    return EXIT_OK


def cmd_linear_map(args, out) -> int:
    from .derive.jacobian import hessian, jacobian, vec_jacobian
    from .present.render import linear_map_json, linear_map_latex, linear_map_text

    build = hessian if args.command == "hessian" else (
        vec_jacobian if getattr(args, "vec", False) else jacobian)
    expr, types = args.expr, args.let
    results = [build(expr, w, types) for w in dict.fromkeys(args.wrt)]
    if args.format == "json":
        out.write(json.dumps(linear_map_json(results), ensure_ascii=False, indent=2) + "\n")
    elif args.format == "latex":
        out.write(linear_map_latex(results) + "\n")
    else:
        out.write(linear_map_text(results) + "\n")
    return EXIT_OK


def cmd_codegen(args, out) -> int:
    from .codegen import extras_module, module_source
    from .codegen.verify import require, verify_module
    from .derive.gradient import derive

    expr, types = args.expr, args.let
    target = getattr(args, "target", "numpy")
    if args.verify:
        require(target)  # exit 2 naming the missing package, before anything is written
    if args.jacobian:
        from .derive.jacobian import extras_for, jacobian, verify_extras

        results = [jacobian(expr, w, types) for w in dict.fromkeys(args.wrt)]
        source = extras_module(results[0].typed, extras_for(results), target)
        _emit_module(args, source, out)
        if args.verify:
            report = verify_extras(results, source)
            sys.stderr.write(report.text + "\n")
            return EXIT_OK if report.ok else EXIT_INTERNAL
        return EXIT_OK
    result = derive(expr, args.wrt, types)
    extras = []
    if args.hessian:
        from .derive.jacobian import hessian_extras

        extras = hessian_extras(expr, args.wrt, types)
    source = module_source(result, extras, target)
    if _use_rich(args) and not args.verify and not args.output:
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(source, "python"))
    else:
        _emit_module(args, source, out)
    if args.verify:
        report = verify_module(result, source)
        sys.stderr.write(report.text + "\n")
        if not report.checked:  # no point where the gradient exists: not a bug, not a pass
            return EXIT_USAGE
        ok = report.ok
        if extras:
            from .derive.jacobian import hessian, verify_extras

            more = verify_extras([hessian(expr, w, types) for w in dict.fromkeys(args.wrt)],
                                  source)
            sys.stderr.write(more.text + "\n")
            ok = ok and more.ok
        return EXIT_OK if ok else EXIT_INTERNAL
    return EXIT_OK


def _emit_module(args, source: str, out) -> None:
    """The module on standard output, or in the -o FILE (UTF-8; written whole or not at all
    as far as the file system allows)."""
    if not args.output:
        out.write(source)
        return
    try:
        with open(args.output, "w", encoding="utf-8", newline="\n") as f:
            f.write(source)
    except OSError as e:
        reason = e.strerror or str(e)
        raise _IOFailure(f"cannot write {args.output}: {reason}") from None


def cmd_differential(args, out) -> int:
    from .derive.differential_map import (
        differential_json,
        differential_latex,
        differential_map,
        differential_text,
    )

    results = [differential_map(args.expr, w, args.let) for w in dict.fromkeys(args.wrt)]
    if args.format == "json":
        out.write(json.dumps(differential_json(results), ensure_ascii=False, indent=2) + "\n")
    elif args.format == "latex":
        out.write(differential_latex(results) + "\n")
    else:
        out.write(differential_text(results) + "\n")
    return EXIT_OK


_COMMAND_FUNCS = {"parse": cmd_parse, "grad": cmd_grad, "check": cmd_check,
                  "codegen": cmd_codegen, "jacobian": cmd_linear_map,
                  "hessian": cmd_linear_map, "differential": cmd_differential}


def _web_command(args, out) -> int:
    from .web.commands import COMMAND_FUNCS

    return COMMAND_FUNCS[args.command](args, out)


_COMMAND_FUNCS.update(graph=_web_command, serve=_web_command)


class _WriteFailed(Exception):
    """Writing the answer failed (a full disk, a closed pipe): told apart from OSErrors that
    are bugs (e.g. a package file missing)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _Output:
    """The output stream, with its write errors turned into _WriteFailed."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        try:
            return self.stream.write(text)
        except OSError as e:
            raise _WriteFailed(e) from None

    def flush(self):
        flush = getattr(self.stream, "flush", None)
        if flush is None:
            return None
        try:
            return flush()
        except OSError as e:
            raise _WriteFailed(e) from None

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main(argv: list[str] | None = None, out=None, session_types=None) -> int:
    """Run one command line; `session_types` are the REPL's `let` declarations."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _utf8_streams()
    raw = out or sys.stdout
    out = _Output(raw)
    from . import allow_deep_expressions

    allow_deep_expressions()
    json_errors = _wants_json(argv)
    try:
        # a safety net: NumPy/SciPy warnings (RuntimeWarning and its subclasses LinAlgWarning
        # and ComplexWarning) never reach the user raw; the answer or the error says it all
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            code = _dispatch(argv, out, session_types or {})
            _flush(out)  # a full disk or a closed pipe shows up here, not at interpreter exit
        return code
    except MatdiffError as e:
        kind = ("syntax" if isinstance(e, ParseError) else
                "shape" if isinstance(e, ShapeError) else "usage")
        return _fail(e.render(), _message(e), kind, e.span, EXIT_USAGE, json_errors, out,
                     error=e)
    except InternalError as e:
        return _fail(f"internal error: {e}", str(e), "internal", None, EXIT_INTERNAL,
                     json_errors, out)
    except RecursionError:
        msg = "expression too deeply nested for matdiff"
        return _fail(f"error: {msg}", msg, "syntax", None, EXIT_USAGE, json_errors, out)
    except KeyboardInterrupt:
        return 130
    except _WriteFailed as failed:
        _drop_stdout(raw)
        if isinstance(failed.error, BrokenPipeError):  # `matdiff … | head`: say nothing
            return EXIT_OK
        msg = f"cannot write the output: {failed.error.strerror or failed.error}"
        sys.stderr.write(f"error: {msg}\n")
        return EXIT_USAGE
    except BrokenPipeError:  # the same, from Rich writing to the terminal's pipe
        _drop_stdout(raw)
        return EXIT_OK
    except Exception as e:  # a bug: say so, without a traceback
        msg = (f"{type(e).__name__}: {e} (this is a bug in matdiff, please report it with the "
               "command line)")
        return _fail(f"internal error: {msg}", msg, "internal", None, EXIT_INTERNAL,
                     json_errors, out)


REPL_HELP = "usage: matdiff repl\n\nInteractive mode; inside it:\n"


def _dispatch(argv: list[str], out, session: dict) -> int:
    parser = _build_parser()
    if not argv:
        if sys.stdin is not None and sys.stdin.isatty() and out.stream is sys.stdout:
            from .repl import repl

            return repl(main)
        parser.print_help(out)
        return EXIT_OK
    if argv[0] == "repl":
        from .repl import HELP, repl

        if len(argv) > 1:
            if argv[1] in ("-h", "--help"):
                out.write(REPL_HELP + HELP + "\n")
                return EXIT_OK
            raise MatdiffError(f"repl takes no arguments, got {' '.join(argv[1:])!r} "
                               "(see 'matdiff repl --help')")
        return repl(main, out=out)
    args, extras = parser.parse_known_args(_split_argv(argv))
    if extras:
        raise MatdiffError(_unknown_options(parser, args, extras))
    if getattr(args, "version", False) and args.command is None:
        out.write(f"matdiff {version()}\n")
        return EXIT_OK
    if args.command is None:
        parser.print_help(out)
        return EXIT_OK
    if args.expr is not None:
        args.expr = _read_expr(args.expr)
    _validate(args)
    if args.expr is not None:
        _warn_unused(args)
    args.let = {**session, **args.let}
    from .language.reader import INPUT_MODE

    mode = INPUT_MODE.set(getattr(args, "input", "auto"))
    try:
        return _COMMAND_FUNCS[args.command](args, out)
    finally:
        INPUT_MODE.reset(mode)


def _wants_json(argv: list[str]) -> bool:
    if not argv or argv[0] not in _JSON_COMMANDS:
        return False
    return "--format=json" in argv or any(
        a == "--format" and b == "json" for a, b in zip(argv, argv[1:]))


def _message(e: MatdiffError) -> str:
    return e.message + (f" ({e.hint})" if e.hint else "")


def _fail(text: str, message: str, kind: str, span, code: int, json_errors: bool, out,
          error: MatdiffError | None = None) -> int:
    """The error on stderr (always: people read it there) and, with --format json, also as
    {"error": {...}} on standard output for programs."""
    if error is not None:
        _report(error)
    else:
        sys.stderr.write(text + "\n")
    if json_errors:
        payload = {"error": {"message": message, "kind": kind,
                             "span": list(span) if span is not None else None,
                             "exit_code": code}}
        if span is not None and error is not None and error.source is not None:
            payload["error"]["source"] = error.source  # the text span indexes (EXPR or claim)
        try:
            out.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
            _flush(out)
        except (_WriteFailed, OSError):
            _drop_stdout(getattr(out, "stream", out))
    return code


def _flush(stream) -> None:
    flush = getattr(stream, "flush", None)
    if flush is not None:
        flush()


def _drop_stdout(out) -> None:
    """After a failed write, point standard output at the null device, so the interpreter's
    final flush does not fail a second time with "Exception ignored"."""
    if out is not sys.stdout:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _utf8_streams() -> None:
    """Output is UTF-8 whatever the locale (PYTHONIOENCODING=cp1252, a Windows redirect):
    ᵀ, ∂ and ⊙ must not turn into UnicodeEncodeError."""
    import codecs

    for stream in (sys.stdout, sys.stderr):
        if stream is None or not hasattr(stream, "reconfigure"):
            continue
        try:
            if codecs.lookup(stream.encoding or "ascii").name != "utf-8":
                stream.reconfigure(encoding="utf-8", errors="backslashreplace")
        except (LookupError, ValueError, OSError, AttributeError, TypeError):
            pass


def _report(error: MatdiffError) -> None:
    """The error on stderr: one line, then the input with a caret; in colour on a terminal."""
    text = error.render()
    if sys.stderr.isatty() and "NO_COLOR" not in os.environ:
        from rich.console import Console
        from rich.text import Text

        first, _, rest = text.partition("\n")
        styled = Text(first, style="bold red")
        if rest:
            excerpt, _, caret = rest.rpartition("\n")
            styled.append("\n" + excerpt + "\n")
            styled.append(caret, style="bold red")
        Console(stderr=True, highlight=False).print(styled)
    else:
        sys.stderr.write(text + "\n")


def run() -> None:
    sys.exit(main())
