"""`matdiff serve` over real HTTP on 127.0.0.1: answers, errors, limits, CSP, the time limit
and a load test of 200 requests from 8 concurrent clients (issue 17)."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install '.[web]'")
pytest.importorskip("uvicorn", reason="the web extra is not installed: pip install '.[web]'")

from matdiff.web.server import CSP, Running  # noqa: E402


@pytest.fixture(scope="module")
def server():
    running = Running(port=0, workers=2, timeout=30)
    yield running
    running.stop()


def _request(url: str, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def _post(url, path, body, **kw):
    status, headers, payload = _request(url, "POST", path, body, **kw)
    return status, headers, json.loads(payload)


def test_page_and_assets_are_local_with_strict_csp(server):
    status, headers, page = _request(server.url, "GET", "/")
    assert status == 200
    assert headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert headers["x-content-type-options"] == "nosniff"
    text = page.decode()
    # no inline scripts, no inline styles, nothing from another host
    assert not re.search(r"<script(?![^>]*\bsrc=)", text)
    assert "style=" not in text and "<style" not in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    for ref in re.findall(r"(?:src|href)=\"(static/[^\"]+)\"", text):
        status, headers, _ = _request(server.url, "GET", "/" + ref)
        assert status == 200, ref
        assert headers["content-security-policy"] == CSP
    # every font KaTeX's stylesheet asks for first (woff2) ships with the package
    _, _, css = _request(server.url, "GET", "/static/katex/katex.min.css")
    fonts = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css.decode()))
    assert len(fonts) >= 15
    for font in fonts:
        assert _request(server.url, "GET", "/static/katex/" + font)[0] == 200


def test_grad_answer(server):
    status, _, data = _post(server.url, "/api/grad", {"expr": "tr(A*X*B)", "wrt": "X"})
    assert status == 200 and data["ok"]
    # ∂/∂X tr(AXB) = AᵀBᵀ (by hand)
    assert data["gradients"]["X"]["gradient"] == "A'*B'"
    assert data["checked"] is True and data["max_relative_error"] < 1e-6
    assert [v["name"] for v in data["variables"]] == ["A", "X", "B"]
    assert any("\\partial X" in line for line in data["equations"])
    assert data["methods"][0]["steps"] and all(s["rule"] for s in data["methods"][0]["steps"])
    assert "def grad_X" in data["code"]["numpy"]
    assert data["graph"].startswith("<svg") and data["graph"].count('<g class="node"') == 5


def test_latex_input(server):
    status, _, data = _post(server.url, "/api/grad",
                            {"expr": "\\operatorname{tr}(A X B)", "wrt": "X"})
    assert status == 200 and data["gradients"]["X"]["gradient"] == "A'*B'"


def test_all_variables_when_wrt_is_empty(server):
    _, _, data = _post(server.url, "/api/grad", {"expr": "x'*A*x", "wrt": ""})
    assert data["wrt"] == ["x", "A"]
    assert data["gradients"]["x"]["gradient"] == "(A + A')*x"  # (A + Aᵀ)x by hand


def test_bad_input_gets_the_cli_message_and_a_caret(server):
    status, _, data = _post(server.url, "/api/grad", {"expr": "tr(A*X*B", "wrt": "X"})
    assert status == 400 and not data["ok"]
    err = data["error"]
    assert err["field"] == "expr" and err["kind"] == "syntax" and err["span"] == [8, 9]
    assert err["text"].splitlines()[-1].strip() == "^"
    status, _, data = _post(server.url, "/api/grad", {"expr": "tr(A*X*B)", "wrt": "Z"})
    assert status == 400 and data["error"]["field"] == "wrt"
    status, _, data = _post(server.url, "/api/grad", {"expr": "tr(A*X*B)", "let": "A:blob"})
    assert status == 400 and data["error"]["field"] == "let"
    status, _, data = _post(server.url, "/api/check", {"expr": "tr(A*X*B)", "wrt": "X",
                                                        "claim": "B*(A"})
    assert status == 400 and data["error"]["field"] == "claim"


def test_check_wrong_claim_gets_a_diagnosis(server):
    status, _, data = _post(server.url, "/api/check",
                            {"expr": "tr(A*X*B)", "wrt": "X", "claim": "B*A"})
    assert status == 200 and data["verdict"] == "wrong" and not data["correct"]
    assert "transpose" in data["text"]
    _, _, data = _post(server.url, "/api/check",
                       {"expr": "tr(A*X*B)", "wrt": "X", "claim": "A'*B'"})
    assert data["verdict"] == "correct"


def test_size_limits(server):
    status, _, data = _post(server.url, "/api/grad", {"expr": "x" * 20_001, "wrt": "x"})
    assert status == 400 and "limit is 20,000" in data["error"]["message"]
    status, _, data = _request(server.url, "POST", "/api/grad", raw=b"{" + b" " * 70_000 + b"}")
    assert status == 413
    status, _, data = _post(server.url, "/api/grad", {"expr": "x"},
                            headers={"Content-Type": "text/plain"})
    assert status == 415  # a cross-site form cannot post to the API
    status, _, _ = _request(server.url, "POST", "/api/grad", raw=b"not json")
    assert status == 400


def test_only_local_host_names_are_served(server):
    status, _, _ = _request(server.url, "GET", "/", headers={"Host": "evil.example"})
    assert status == 400


def test_svg_and_module_downloads(server):
    q = urllib.parse.urlencode({"expr": "log(det(X))", "wrt": "X"})
    status, headers, svg = _request(server.url, "GET", "/api/graph.svg?" + q)
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert svg.decode().count('<g class="node"') == 3
    status, headers, module = _request(server.url, "GET", "/api/matdiff_grad.py?" + q)
    assert status == 200
    assert headers["content-disposition"] == 'attachment; filename="matdiff_grad.py"'
    compile(module.decode(), "matdiff_grad.py", "exec")  # valid Python (never run here)
    status, _, _ = _request(server.url, "GET", "/api/other.txt")
    assert status == 404


def test_load_200_requests_from_8_clients(server):
    """All answers right, no error responses. d/dX k·tr(AXB) = k·AᵀBᵀ (by hand)."""
    def one(i: int):
        k = i % 25 + 1
        if i % 10 == 9:
            status, _, data = _post(server.url, "/api/check",
                                    {"expr": f"{k}*tr(A*X*B)", "wrt": "X", "claim": "B*A"})
            return status, data.get("verdict"), "wrong"
        status, _, data = _post(server.url, "/api/grad", {"expr": f"{k}*tr(A*X*B)",
                                                           "wrt": "X"})
        expected = "A'*B'" if k == 1 else f"{k}*A'*B'"
        return status, data.get("gradients", {}).get("X", {}).get("gradient"), expected

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(200)))
    elapsed = time.monotonic() - start
    assert [r[0] for r in results] == [200] * 200
    wrong = [(i, got, want) for i, (_, got, want) in enumerate(results) if got != want]
    assert not wrong
    assert elapsed < 120


@pytest.fixture(scope="module")
def strict_server():
    running = Running(port=0, workers=1, timeout=1.0)
    yield running
    running.stop()


def test_a_long_derivation_is_abandoned_and_the_server_recovers(strict_server):
    # about 4 s of work on this machine, under the 20,000-character limit
    slow = " + ".join(f"tr(A{i}*X*B{i}*X')" for i in range(850))
    assert len(slow) < 20_000
    before = set(strict_server.pool.pids())
    start = time.monotonic()
    status, _, data = _post(strict_server.url, "/api/grad", {"expr": slow, "wrt": "X"})
    assert status == 504 and data["error"]["kind"] == "timeout"
    assert "abandoned after 1 s" in data["error"]["message"]
    assert time.monotonic() - start < 15
    # the worker that ran it was ended, not left computing
    for pid in before:
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid)
    # and a fresh worker answers the next request
    status, _, data = _post(strict_server.url, "/api/grad", {"expr": "tr(A*X*B)", "wrt": "X"})
    assert status == 200 and data["gradients"]["X"]["gradient"] == "A'*B'"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][:1] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
