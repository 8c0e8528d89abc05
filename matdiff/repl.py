"""`matdiff repl` (and `matdiff` on a terminal with no arguments): read expressions line by
line, remember `let` declarations, keep history (readline, ~/.matdiff_history)."""

from __future__ import annotations

import os
import re
import shlex
import sys

from .errors import MatdiffError

HELP = """Type an expression to see how it is read, or:
  EXPR wrt X [Y …] [--steps …]  the gradients (same as: grad EXPR --wrt X --wrt Y …)
  let NAME:KIND [NAME:KIND …]  declare kinds for the rest of the session (scalar, vector,
                               matrix, symmetric, spd, probability); `let` alone lists them
  grad|check|codegen|parse|jacobian|hessian|differential|graph …
                               any matdiff command, as on the command line (quote an
                               expression that has spaces with "…")
  help, quit (or Ctrl-D); Ctrl-C clears the line"""

COMMANDS = ("parse", "grad", "check", "codegen", "jacobian", "hessian", "differential", "graph")
_NOT_HERE = ("repl", "serve")  # a REPL inside the REPL, a server that never returns
_WRT = re.compile(r"(?<!\S)wrt(?!\S)")


def _split(text: str) -> list[str]:
    """Split like a shell, but ' is the transpose here: only double quotes group words."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""
    return list(lexer)


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


def to_argv(line: str, lets: dict[str, str] | None = None) -> list[str]:
    """One REPL line as the command line it stands for."""
    first = line.split(None, 1)[0]
    if first in _NOT_HERE:
        raise MatdiffError(f"'{first}' does not run inside the REPL: start 'matdiff {first}' "
                           "from the shell")
    matches = list(_WRT.finditer(line))
    if first in COMMANDS:
        argv = _split(line)
        if "-" in argv[1:]:
            raise MatdiffError("'-' reads standard input, which the REPL uses: type the "
                               "expression")
    elif matches:
        last = matches[-1]
        expr, rest = line[:last.start()].strip(), line[last.end():]
        if not expr:
            raise MatdiffError("type the expression before wrt, e.g. tr(A*X) wrt X")
        if expr == "-":
            raise MatdiffError("'-' reads standard input, which the REPL uses: type the "
                               "expression")
        words = _split(rest.replace(",", " "))
        names = []
        while words and not words[0].startswith("-"):
            names.append(words.pop(0))
        if not names:
            raise MatdiffError("name the variables after wrt, e.g. tr(A*X) wrt X")
        argv = ["grad", expr]
        for name in names:
            argv += ["--wrt", name]
        argv += words  # options after the names: --steps, --format latex, …
    else:
        argv = ["parse", line]
    for name, kind in (lets or {}).items():
        argv += ["--let", f"{name}:{kind}"]
    return argv


def repl(main, stdin=None, out=None, input_fn=None) -> int:
    """The read-eval loop. `input_fn()` returns one line (raising EOFError at the end and
    KeyboardInterrupt on Ctrl-C); by default `input` on a terminal, else lines of stdin."""
    stdin = stdin if stdin is not None else sys.stdin
    out = out or sys.stdout
    if input_fn is None:
        if stdin is None:
            return 0
        if stdin.isatty():
            def input_fn():
                return input("matdiff> ")
        else:
            def input_fn():
                line = stdin.readline()
                if not line:
                    raise EOFError
                return line
    interactive = stdin is not None and stdin.isatty()
    save = _history() if interactive else None
    lets: dict[str, str] = {}
    if interactive:
        out.write("matdiff — type 'help' for help, 'quit' to leave\n")
    try:
        while True:
            try:
                line = input_fn()
            except EOFError:
                if interactive:
                    out.write("\n")
                break
            except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line, as Python does
                out.write("\n")
                continue
            try:
                if not _one_line(main, line, lets, out):
                    break
            except KeyboardInterrupt:  # Ctrl-C during a computation: back to the prompt
                out.write("\n")
    finally:
        if save:
            save()
    return 0


def _one_line(main, line: str, lets: dict[str, str], out) -> bool:
    """Run one line; False when the session ends."""
    line = line.strip()
    if not line or line.startswith("#"):
        return True
    if line in ("quit", "exit"):
        return False
    if line == "help":
        out.write(HELP + "\n")
        return True
    if line == "let" or line.startswith("let "):
        _let(line[3:], lets, out)
        return True
    try:
        argv = to_argv(line)
    except ValueError as e:  # unbalanced quotes
        sys.stderr.write(f"error: {e}\n")
        return True
    except MatdiffError as e:
        sys.stderr.write(e.render() + "\n")
        return True
    # the session's declarations go in apart from the line's own --let, which override them
    # and are the only ones warned about when unused
    main(argv, out=out, session_types=dict(lets))
    return True


def _let(text: str, lets: dict[str, str], out) -> None:
    from .language.shapes import declarations

    items = text.replace(",", " ").split()
    try:
        # a new kind for a declared name replaces it: in a session, that is a change of mind
        lets.update(declarations(items, option="let"))
    except MatdiffError as e:
        sys.stderr.write(e.render() + "\n")
        return
    out.write(", ".join(f"{n}: {k}" for n, k in lets.items()) + "\n" if lets else
              "no declarations\n")
