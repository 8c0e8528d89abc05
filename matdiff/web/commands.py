"""`matdiff graph` and `matdiff serve` for matdiff/cli.py: their options and what they do.
Light to import (argparse only); the server's packages load only when `serve` runs."""

from __future__ import annotations

from ..errors import MatdiffError

# commands whose EXPR may begin with '-' (cli._split_argv handles their options)
COMMANDS_WITH_EXPR = ("graph",)


def add_parsers(sub, common) -> None:
    sp = sub.add_parser("graph", help="draw the computation graph as SVG",
                        description="Draw the expression DAG as an SVG picture: one box per "
                                    "operation with its formula and shape, edges with the "
                                    "forward values' shapes, each box with ∂f/∂node from the "
                                    "backward pass, and the path from f to each --wrt "
                                    "variable highlighted.")
    common(sp)
    sp.add_argument("--wrt", action="append", default=[], metavar="X",
                    help="variable whose path is highlighted (repeatable; default: every "
                         "variable)")
    sp.add_argument("-o", "--output", metavar="FILE",
                    help="write the SVG to FILE (default: standard output)")

    sp = sub.add_parser("serve", help="a local web page: derivations, steps, graph, code, "
                                      "checks (needs matdiff[web])",
                        description="Start a local web server for matdiff's page and print "
                                    "its address. Works offline; binds 127.0.0.1 unless "
                                    "--host says otherwise.")
    sp.add_argument("--port", type=int, default=8765, metavar="N",
                    help="port to listen on (default 8765; 0 picks a free one)")
    sp.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this computer only)")
    sp.add_argument("--open", action="store_true", help="open the page in a web browser")
    sp.add_argument("--workers", type=int, default=None, metavar="N",
                    help="worker processes for derivations (default: cores, at most 4)")
    sp.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                    help="time limit of one request; a longer derivation is abandoned "
                         "(default 10)")
    sp.set_defaults(expr="", let=[], plain=True)


def cmd_graph(args, out) -> int:
    from ..derive.gradient import derive
    from .graph import computation_graph, to_svg

    wrt = list(dict.fromkeys(args.wrt))
    if not wrt:
        import matdiff

        wrt = list(matdiff.parse(args.expr, args.let).variables)
        if not wrt:
            raise MatdiffError("the expression has no variables: nothing to draw a gradient "
                               "for")
    derivation = derive(args.expr, wrt, args.let)
    svg = to_svg(computation_graph(derivation, wrt))
    if not args.output:
        out.write(svg)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="\n") as f:
            f.write(svg)
    except OSError as e:
        raise MatdiffError(f"cannot write {args.output}: {e.strerror or e}") from None
    return 0


def cmd_serve(args, out) -> int:
    if not 0 <= args.port <= 65535:
        raise MatdiffError(f"--port {args.port} is not a port number (0 to 65535)")
    if args.timeout <= 0:
        raise MatdiffError("--timeout must be a positive number of seconds")
    if args.workers is not None and not 1 <= args.workers <= 64:
        raise MatdiffError("--workers must be between 1 and 64")
    try:
        from . import server
    except ImportError as e:
        raise MatdiffError(f"matdiff serve needs the web extra ({e.name} is not installed): "
                           "pip install \"matdiff[web]\"") from None
    try:
        return server.serve(args.host, args.port, args.open, args.workers, args.timeout, out)
    except KeyboardInterrupt:
        return 0


COMMAND_FUNCS = {"graph": cmd_graph, "serve": cmd_serve}
