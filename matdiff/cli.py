"""The command line (SPEC §2). `main(argv) -> int` is the only place that knows about exit
codes, standard streams and Rich: user errors → one message and exit 2; anything else is a
bug → "internal error, please report" and exit 3."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import InternalError, MatdiffError

EXIT_OK, EXIT_WRONG, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

_VALUE_OPTIONS = {"--wrt", "--let", "--format", "--claim", "--seed", "--along", "--define"}
_FLAG_OPTIONS = {"--steps", "--plain", "--no-check", "--verify", "--hessian", "--jacobian",
                 "--vec", "-h", "--help"}
_COMMANDS = ("parse", "grad", "check", "codegen", "jacobian", "hessian")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, as for every bad input
        raise MatdiffError(f"{message} (see '{self.prog} --help')")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="matdiff", description=(
        "Symbolic matrix calculus: derive gradients of scalar functions of matrices the way "
        "a person does it on paper, check them numerically, and emit NumPy code."),
        epilog="Exit codes: 0 ok, 1 claim is wrong (check), 2 bad input, 3 internal error. "
               "EXPR '-' reads the expression from standard input.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def common(sp):
        sp.add_argument("expr", metavar="EXPR", help="the expression, e.g. \"tr(A*X*B)\"; "
                        "'-' reads it from standard input")
        sp.add_argument("--let", action="append", default=[], metavar="NAME:KIND",
                        help="declare a variable's kind: scalar, vector, matrix, symmetric, spd "
                             "(default: a-g scalar, h-z vector, A-Z matrix, Greek scalar)")
        sp.add_argument("--plain", action="store_true", help="no colours or boxes")

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
    sp.add_argument("--no-check", action="store_true",
                    help="skip the numerical self-check (for benchmarks)")

    sp = sub.add_parser("check", help="check a claimed gradient (homework)",
                        description="Decide whether --claim is ∂f/∂X; exit 0 'correct', "
                                    "exit 1 with a diagnosis, exit 2 if the claim is malformed.")
    common(sp)
    sp.add_argument("--wrt", required=True, metavar="X")
    sp.add_argument("--claim", required=True, metavar="G")
    sp.add_argument("--steps", action="store_true", help="also show matdiff's derivation")

    sp = sub.add_parser("jacobian", help="Jacobian of a vector-valued expression",
                        description="J = ∂f/∂xᵀ in numerator layout (m×n for f: ℝⁿ → ℝᵐ), "
                                    "with df = J dx.")
    common(sp)
    sp.add_argument("--wrt", action="append", required=True, metavar="x")
    sp.add_argument("--format", choices=("text", "latex", "json"), default="text")
    sp.add_argument("--vec", action="store_true",
                    help="the Kronecker form vec(df) = J vec(dX), for matrix-valued "
                         "expressions or matrix variables")

    sp = sub.add_parser("hessian", help="Hessian of a scalar expression",
                        description="H = ∂²f/∂x∂xᵀ for a vector or scalar x; for a matrix X "
                                    "the Hessian applied to a direction V, H[V] "
                                    "(d²f = tr(Vᵀ H[V])).")
    common(sp)
    sp.add_argument("--wrt", action="append", required=True, metavar="x")
    sp.add_argument("--format", choices=("text", "latex", "json"), default="text")

    sp = sub.add_parser("codegen", help="emit a NumPy module for f and its gradients",
                        description="Write a self-contained Python module defining f, "
                                    "grad_X for each --wrt, and f_and_grad.")
    common(sp)
    sp.add_argument("--wrt", action="append", required=True, metavar="X")
    sp.add_argument("--verify", action="store_true",
                    help="check the emitted gradients against finite differences of f")
    sp.add_argument("--hessian", action="store_true",
                    help="also emit hess_NAME (vector and scalar variables) and hvp_NAME(V, …)")
    sp.add_argument("--jacobian", action="store_true",
                    help="for a vector-valued EXPR: emit f and jac_NAME (numerator layout)")
    return p


def _split_argv(argv: list[str]) -> list[str]:
    """Let EXPR and option values begin with '-' (e.g. "-y'*log(softmax(a))") without '--'."""
    if not argv or argv[0] not in _COMMANDS:
        return argv
    options, positional = [argv[0]], []
    i = 1
    while i < len(argv):
        tok = argv[i]
        if tok in _VALUE_OPTIONS and i + 1 < len(argv):
            options.append(f"{tok}={argv[i + 1]}")
            i += 2
            continue
        if tok in _FLAG_OPTIONS or (tok.startswith("--") and "=" in tok
                                    and tok.split("=", 1)[0] in _VALUE_OPTIONS):
            options.append(tok)
        elif tok.startswith("--") and tok[2:3].isalpha() and tok not in ("-",):
            options.append(tok)  # unknown option: let argparse report it
        else:
            positional.append(tok)
        i += 1
    return options + (["--"] + positional if positional else [])


def _declarations(lets: list[str]) -> dict[str, str]:
    types = {}
    for item in lets:
        for part in item.split(","):
            if not part.strip():
                continue
            if ":" not in part:
                raise MatdiffError(f"--let expects NAME:KIND, got {part!r}")
            name, kind = (s.strip() for s in part.split(":", 1))
            types[name] = kind
    from .shapes import check_kinds

    return check_kinds(types)


def _read_expr(expr: str) -> str:
    if expr == "-":
        return sys.stdin.read().strip()
    return expr


def _use_rich(args) -> bool:
    return (not getattr(args, "plain", False) and "NO_COLOR" not in os.environ
            and sys.stdout.isatty())


# ---------------------------------------------------------------- commands


def cmd_parse(args, out) -> int:
    from .printing.tree import plain_tree, variables_table
    from .typecheck import typecheck

    typed = typecheck(_read_expr(args.expr), _declarations(args.let))
    if _use_rich(args):
        from rich.console import Console

        from .printing.tree import rich_tree

        Console().print(rich_tree(typed))
    else:
        out.write(plain_tree(typed) + "\n")
    out.write(variables_table(typed) + "\n")
    return EXIT_OK


def cmd_grad(args, out) -> int:
    from .gradient import derive

    if args.along:
        return cmd_along(args, out)
    if not args.wrt:
        raise MatdiffError("grad needs --wrt X (or --along T with --define NAME=EXPR)")
    result = derive(_read_expr(args.expr), args.wrt, _declarations(args.let),
                    check=not args.no_check, steps=args.steps)
    if args.format == "json":
        from .printing.render import grad_json

        out.write(json.dumps(grad_json(result), ensure_ascii=False, indent=2) + "\n")
    elif args.format == "latex":
        from .printing.render import grad_latex

        out.write(grad_latex(result, steps=args.steps) + "\n")
    else:
        from .printing.render import grad_report, grad_text

        if _use_rich(args):
            _rich_grad(grad_report(result, steps=args.steps))
        else:
            out.write(grad_text(result, steps=args.steps) + "\n")
    return EXIT_OK


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
    parts.append(results)
    if report.check:
        parts.append(Text(report.check, style="dim"))
    Console().print(Panel(Group(*parts), title="matdiff grad", expand=False))


def cmd_check(args, out) -> int:
    from .diagnose import check_claim

    verdict = check_claim(_read_expr(args.expr), args.wrt, args.claim, _declarations(args.let),
                          steps=args.steps)
    out.write(verdict.text + "\n")
    return EXIT_OK if verdict.correct else EXIT_WRONG


def cmd_along(args, out) -> int:
    from .chain import along, parse_definitions
    from .printing.render import along_json, along_text

    if args.wrt:
        raise MatdiffError("--along and --wrt do not go together: --along T differentiates "
                           "along the path")
    result = along(_read_expr(args.expr), args.along, parse_definitions(args.define),
                   _declarations(args.let))
    if args.format == "json":
        out.write(json.dumps(along_json(result), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(along_text(result, latex=args.format == "latex") + "\n")
    return EXIT_OK


def cmd_linear_map(args, out) -> int:
    from .jacobian import hessian, jacobian, vec_jacobian
    from .printing.render import linear_map_json, linear_map_latex, linear_map_text

    build = hessian if args.command == "hessian" else (
        vec_jacobian if getattr(args, "vec", False) else jacobian)
    expr, types = _read_expr(args.expr), _declarations(args.let)
    results = [build(expr, w, types) for w in dict.fromkeys(args.wrt)]
    if args.format == "json":
        out.write(json.dumps(linear_map_json(results), ensure_ascii=False, indent=2) + "\n")
    elif args.format == "latex":
        out.write(linear_map_latex(results) + "\n")
    else:
        out.write(linear_map_text(results) + "\n")
    return EXIT_OK


def cmd_codegen(args, out) -> int:
    from .codegen import numpy_module
    from .gradient import derive
    from .verify import verify_module

    expr, types = _read_expr(args.expr), _declarations(args.let)
    if args.jacobian:
        from .jacobian import jacobian_module, verify_extras

        source, results = jacobian_module(expr, args.wrt, types)
        out.write(source)
        if args.verify:
            report = verify_extras(results, source)
            sys.stderr.write(report.text + "\n")
            return EXIT_OK if report.ok else EXIT_INTERNAL
        return EXIT_OK
    result = derive(expr, args.wrt, types)
    extras = []
    if args.hessian:
        from .jacobian import hessian_extras

        extras = hessian_extras(expr, args.wrt, types)
    source = numpy_module(result, extras)
    if _use_rich(args) and not args.verify:
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(source, "python"))
    else:
        out.write(source)
    if args.verify:
        report = verify_module(result, source)
        sys.stderr.write(report.text + "\n")
        ok = report.ok
        if extras:
            from .jacobian import hessian, verify_extras

            more = verify_extras([hessian(expr, w, types) for w in args.wrt], source)
            sys.stderr.write(more.text + "\n")
            ok = ok and more.ok
        return EXIT_OK if ok else EXIT_INTERNAL
    return EXIT_OK


_COMMAND_FUNCS = {"parse": cmd_parse, "grad": cmd_grad, "check": cmd_check,
                  "codegen": cmd_codegen, "jacobian": cmd_linear_map,
                  "hessian": cmd_linear_map}


def main(argv: list[str] | None = None, out=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    from . import _allow_deep_expressions

    _allow_deep_expressions()
    parser = _build_parser()
    try:
        if not argv:
            if sys.stdin.isatty() and out is sys.stdout:
                from .repl import repl

                return repl(main)
            parser.print_help(out)
            return EXIT_OK
        if argv[0] == "repl":
            from .repl import repl

            return repl(main, out=out)
        args = parser.parse_args(_split_argv(argv))
        if args.command is None:
            parser.print_help(out)
            return EXIT_OK
        return _COMMAND_FUNCS[args.command](args, out)
    except MatdiffError as e:
        _report(e)
        return EXIT_USAGE
    except InternalError as e:
        sys.stderr.write(f"internal error: {e}\n")
        return EXIT_INTERNAL
    except RecursionError:
        sys.stderr.write("error: expression too deeply nested for matdiff\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: say so, without a traceback
        sys.stderr.write(f"internal error: {type(e).__name__}: {e} "
                         "(this is a bug in matdiff, please report it with the command line)\n")
        return EXIT_INTERNAL


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
