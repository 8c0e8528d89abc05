"""What the page asks for, answered as JSON-ready dicts: derivations, checks, code and graphs.

Runs inside the server's worker processes (matdiff.web.workers), never in the server's own
process, so a derivation that runs too long can be abandoned by ending its process. Needs
only the core install. Every answer is {"status": HTTP status, "body": dict or str, ...}:
bad input gives status 400 and {"ok": false, "error": {...}} with the same message the CLI
prints and the span to put a caret under."""

from __future__ import annotations

import re
import warnings

MAX_EXPR = 20_000  # characters of an expression or a claim
MAX_LET = 2_000
MAX_WRT = 32

_NAME_LIST = re.compile(r"[\s,;]+")


def handle(job: dict) -> dict:
    """One request, answered. Never raises: a bug becomes a 500 with its message."""
    from ..errors import InternalError, MatdiffError

    kind = job.get("kind")
    field = "expr"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if kind == "ping":
                return {"status": 200, "body": {"ok": True}}
            if kind not in _HANDLERS:
                return _error(400, "usage", f"unknown request {kind!r}", None, None, "expr")
            req = _request(job)
            return _HANDLERS[kind](req)
    except _Field as e:
        return _error(400, "usage", e.message, None, None, e.field)
    except MatdiffError as e:
        from ..errors import ParseError, ShapeError

        source = e.source
        if source is not None and source == job.get("claim") and source != job.get("expr"):
            field = "claim"
        elif e.span is None and "not a variable of the expression" in e.message:
            field = "wrt"
        kind_name = ("syntax" if isinstance(e, ParseError) else
                     "shape" if isinstance(e, ShapeError) else "usage")
        message = e.message + (f" ({e.hint})" if e.hint else "")
        return _error(400, kind_name, message, e.span, e.render(), field)
    except InternalError as e:
        return _error(500, "internal", f"internal error: {e}", None, None, field)
    except RecursionError:
        return _error(400, "syntax", "expression too deeply nested for matdiff", None, None,
                      field)
    except Exception as e:  # a bug in matdiff: say so, keep serving
        return _error(500, "internal", f"internal error: {type(e).__name__}: {e} (this is a "
                                       "bug in matdiff, please report it with the input)",
                      None, None, field)


def _error(status: int, kind: str, message: str, span, rendered, field: str) -> dict:
    return {"status": status, "body": {"ok": False, "error": {
        "message": message, "kind": kind, "span": list(span) if span else None,
        "text": rendered or f"error: {message}", "field": field}}}


class _Field(Exception):
    """Bad input in one field of the form (the page shows it under that box)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _text(job: dict, key: str, limit: int, required: bool = True) -> str:
    value = job.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _Field(key, f"{key} must be text")
    if len(value) > limit:
        raise _Field(key, f"{key} is {len(value):,} characters long; the limit is {limit:,}")
    value = value.strip()
    if required and not value:
        what = {"expr": "an expression, e.g. tr(A*X*B)", "claim": "a claimed gradient, e.g. "
                "A'*B'"}.get(key, key)
        raise _Field(key, f"type {what}")
    return value


def _request(job: dict) -> dict:
    from ..language.shapes import declarations

    req = {"expr": _text(job, "expr", MAX_EXPR)}
    let = _text(job, "let", MAX_LET, required=False)
    try:
        req["types"] = declarations([let], option="let") if let else {}
    except Exception as e:
        raise _Field("let", getattr(e, "message", str(e))) from None
    wrt = job.get("wrt", "")
    if isinstance(wrt, str):
        if len(wrt) > MAX_LET:
            raise _Field("wrt", f"wrt is {len(wrt):,} characters long; the limit is {MAX_LET:,}")
        wrt = [w for w in _NAME_LIST.split(wrt) if w]
    if not isinstance(wrt, list) or not all(isinstance(w, str) for w in wrt):
        raise _Field("wrt", "wrt must be variable names separated by commas")
    if len(wrt) > MAX_WRT:
        raise _Field("wrt", f"at most {MAX_WRT} variables at a time")
    req["wrt"] = list(dict.fromkeys(wrt))
    if job.get("kind") == "check":
        req["claim"] = _text(job, "claim", MAX_EXPR)
    return req


def _wrt_or_all(req: dict) -> list[str]:
    """The variables asked for, or every variable of the expression when none is named."""
    if req["wrt"]:
        return req["wrt"]
    import matdiff

    typed = matdiff.parse(req["expr"], req["types"])
    names = list(typed.variables)
    if not names:
        raise _Field("wrt", "the expression has no variables to differentiate by")
    return names


def _derive(req: dict, steps: bool):
    import matdiff

    from ..derive.gradient import derive

    matdiff.allow_deep_expressions()
    return derive(req["expr"], _wrt_or_all(req), req["types"], steps=steps)


def _grad(req: dict) -> dict:
    from ..api import GradientResult
    from ..ir import expr as E
    from ..present.render import check_line, grad_json, grad_latex, grad_report, grad_text
    from ..printing.latex import to_latex
    from .graph import MAX_NODES, computation_graph, to_svg

    derivation = _derive(req, steps=True)
    result = GradientResult(derivation)
    data = grad_json(derivation, steps=True)
    report = grad_report(derivation, steps=True)
    variables = [{"name": name, "kind": kind, "shape": shape}
                 for name, kind, shape in report.variables]
    try:
        if len(E.postorder(derivation.f)) <= MAX_NODES:
            graph = to_svg(computation_graph(derivation))
        else:
            graph = None
    except Exception:  # the picture is extra: its failure never hides the answer
        graph = None
    body = {
        "ok": True,
        "expression": derivation.typed.source,
        "wrt": list(derivation.wrt),
        "function": report.function,
        "function_latex": "f = " + to_latex(derivation.f),
        "variables": variables,
        "equations": [line for line in grad_latex(derivation).splitlines() if line.strip()],
        "results": report.results,
        "where": report.where,
        "gradients": data["gradients"],
        "checked": bool(derivation.checked),
        "max_relative_error": (float(data["max_relative_error"])
                               if "max_relative_error" in data else None),
        "reason": data.get("reason"),
        "check": check_line(derivation),
        "methods": [{"name": "trace", "title": "differential, trace form",
                     "steps": [{"rule": rule, "line": line} for rule, line in report.steps],
                     "notes": report.notes}] + _other_methods(derivation),
        "text": grad_text(derivation),
        "code": _code(result),
        "graph": graph,
    }
    return {"status": 200, "body": body}


def _other_methods(derivation) -> list[dict]:
    """The notes' other two methods: backprop on the graph, the chain of Jacobians (which says
    why when it does not apply, e.g. for a matrix variable)."""
    from ..present.methods import method_steps

    out = []
    for name, title in (("backprop", "backprop on the computation graph"),
                        ("jacobian", "chain rule, product of Jacobians")):
        method = method_steps(derivation, name)
        out.append({"name": name, "title": title,
                    "steps": [{"rule": rule, "line": line}
                              for rule, line in method.text_lines()],
                    "notes": [method.message] if method.message else []})
    return out


def _code(result) -> dict:
    """Each code target matdiff can emit: NumPy, and any other the API offers."""
    out = {"numpy": result.numpy_source()}
    for target in ("jax", "torch"):
        emit = getattr(result, f"{target}_source", None)
        if callable(emit):
            try:
                out[target] = emit()
            except Exception:
                pass
    return out


def _check(req: dict) -> dict:
    import matdiff

    wrt = req["wrt"]
    if len(wrt) != 1:
        raise _Field("wrt", "check decides one gradient: name exactly one variable in wrt"
                     if wrt else "name the variable the claim is a gradient for (wrt)")
    verdict = matdiff.check(req["expr"], wrt[0], req["claim"], req["types"], steps=False)
    return {"status": 200, "body": {"ok": True, "verdict": verdict.status,
                                    "correct": bool(verdict.correct), "text": verdict.text}}


def _graph(req: dict) -> dict:
    from .graph import computation_graph, to_svg

    derivation = _derive(req, steps=False)
    return {"status": 200, "body": to_svg(computation_graph(derivation)),
            "type": "image/svg+xml"}


def _module(req: dict) -> dict:
    from ..api import GradientResult

    result = GradientResult(_derive(req, steps=False))
    target = "numpy"
    return {"status": 200, "body": _code(result)[target], "type": "text/x-python",
            "filename": "matdiff_grad.py"}


_HANDLERS = {"grad": _grad, "check": _check, "graph": _graph, "module": _module}
