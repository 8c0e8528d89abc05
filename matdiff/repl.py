"""`matdiff repl` (and `matdiff` on a terminal with no arguments): read expressions line by
line, remember `let` declarations, keep history (readline, ~/.matdiff_history)."""

from __future__ import annotations

import os
import shlex
import sys

HELP = """Type an expression to see how it is read, or:
  EXPR wrt X [Y …]            the gradients (same as: grad EXPR --wrt X --wrt Y)
  let NAME:KIND [NAME:KIND …]  declare kinds for the rest of the session (scalar, vector,
                               matrix, symmetric, spd); `let` alone lists them
  grad|check|codegen|parse …   any matdiff command, as on the command line
  help, quit"""

COMMANDS = ("parse", "grad", "check", "codegen")


def _history():
    try:
        import readline
    except ImportError:  # not on every platform; the REPL works without it
        return None
    path = os.path.expanduser("~/.matdiff_history")
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    return lambda: _save(readline, path)


def _save(readline, path):
    try:
        readline.write_history_file(path)
    except OSError:
        pass


def to_argv(line: str, lets: dict[str, str]) -> list[str]:
    """One REPL line as the command line it stands for."""
    first = line.split(None, 1)[0]
    if first in COMMANDS:
        # split like a shell, but ' is the transpose here: only double quotes group words
        lexer = shlex.shlex(line, posix=True)
        lexer.whitespace_split = True
        lexer.quotes = '"'
        lexer.escape = ""
        argv = list(lexer)
    elif " wrt " in f" {line} ":
        expr, names = line.rsplit(" wrt ", 1) if " wrt " in line else ("", line)
        argv = ["grad", expr.strip()]
        for name in names.replace(",", " ").split():
            argv += ["--wrt", name]
    else:
        argv = ["parse", line]
    for name, kind in lets.items():
        argv += ["--let", f"{name}:{kind}"]
    return argv


def repl(main, stdin=None, out=None) -> int:
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    interactive = stdin.isatty()
    save = _history() if interactive else None
    lets: dict[str, str] = {}
    if interactive:
        out.write("matdiff — type 'help' for help, 'quit' to leave\n")
    try:
        while True:
            if interactive:
                try:
                    line = input("matdiff> ")
                except EOFError:
                    out.write("\n")
                    break
            else:
                line = stdin.readline()
                if not line:
                    break
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line in ("quit", "exit"):
                break
            if line == "help":
                out.write(HELP + "\n")
                continue
            if line == "let" or line.startswith("let "):
                _let(line[3:], lets, out)
                continue
            try:
                argv = to_argv(line, lets)
            except ValueError as e:  # unbalanced quotes
                sys.stderr.write(f"error: {e}\n")
                continue
            main(argv, out=out)
    finally:
        if save:
            save()
    return 0


def _let(text: str, lets: dict[str, str], out) -> None:
    from .errors import MatdiffError
    from .shapes import check_kinds

    items = text.replace(",", " ").split()
    try:
        new = {}
        for item in items:
            if ":" not in item:
                raise MatdiffError(f"let expects NAME:KIND, got {item!r}")
            name, kind = item.split(":", 1)
            new[name] = kind
        lets.update(check_kinds(new))
    except MatdiffError as e:
        sys.stderr.write(e.render() + "\n")
        return
    out.write(", ".join(f"{n}: {k}" for n, k in lets.items()) + "\n" if lets else
              "no declarations\n")
