"""The page of `matdiff serve` driven in headless Chromium through Playwright (issue 17).

Needs the web and browser extras and Debian's chromium (/usr/bin/chromium, or
MATDIFF_CHROMIUM). Without them the tests skip with the reason, unless
MATDIFF_REQUIRE_BROWSER=1 (set by .ci/run once it has installed the browser), where a missing
browser is a failure. Screenshots are test artifacts: MATDIFF_ARTIFACTS, or pytest's tmp dir."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path

import pytest

REQUIRED = os.environ.get("MATDIFF_REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("MATDIFF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing() -> str | None:
    for module in ("starlette", "uvicorn", "playwright"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install '.[web,browser]')"
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


_REASON = _missing()
if _REASON and REQUIRED:
    raise RuntimeError(f"MATDIFF_REQUIRE_BROWSER=1 but {_REASON}")
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


@pytest.fixture(scope="module")
def server():
    from matdiff.web.server import Running

    running = Running(port=0, workers=2, timeout=30)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A page that records console errors, CSP violations and every request it makes."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.problems = []
    pg.requests = []
    pg.on("console", lambda m: m.type in ("error", "warning") and pg.problems.append(m.text))
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("response", lambda r: r.status >= 400 and r.status not in (400, 504)
          and pg.problems.append(f"{r.status} {r.url}"))
    yield pg
    context.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("MATDIFF_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def expect(locator):
    from playwright.sync_api import expect as _expect

    return _expect(locator)


def _only_local(page, server):
    assert page.requests and all(u.startswith(server.url) for u in page.requests), \
        [u for u in page.requests if not u.startswith(server.url)]
    assert not page.problems, page.problems  # no CSP violation, no script error


def test_type_an_expression_and_read_the_gradient(page, server, artifacts):
    page.goto(server.url)
    page.fill("#wrt", "X")
    page.fill("#expr", "")
    page.type("#expr", "tr(A*X*B)", delay=20)  # typed key by key: debounced, one answer
    expect(page.locator(".gradient-text")).to_have_count(1)  # X alone, not every variable
    expect(page.locator(".gradient-text[data-wrt=X] code")).to_have_text("A'*B'")
    eq = page.locator(".equation[data-kind=gradient]").first
    assert "A^{\\top} B^{\\top}" in eq.get_attribute("data-latex")
    assert eq.locator(".katex").count() == 1  # rendered by the bundled KaTeX
    assert "∂f/∂X = AᵀBᵀ" in page.locator("#gradients").inner_text()
    assert "checked against central finite differences" in page.inner_text("#selfcheck")
    assert "expr=tr%28A*X*B%29" in page.url or "expr=tr(A*X*B)" in urllib.parse.unquote(
        page.url)
    page.screenshot(path=str(artifacts / "result.png"))
    assert (artifacts / "result.png").stat().st_size > 10_000
    _only_local(page, server)


def test_a_wrong_claim_in_the_check_tab(page, server, artifacts):
    page.goto(server.url + "#expr=tr(A*X*B)&wrt=X")
    page.wait_for_selector(".gradient-text[data-wrt=X]")
    page.click("[data-tab=check]")
    assert page.is_visible("#panel-check") and not page.is_visible("#panel-result")
    page.fill("#claim", "B*A")
    page.click("#check-button")
    page.wait_for_selector("#verdict[data-verdict=wrong]")
    text = page.inner_text("#verdict")
    assert "off by a transpose" in text and "AᵀBᵀ" in text
    page.screenshot(path=str(artifacts / "check.png"))
    _only_local(page, server)


def test_a_shared_url_restores_the_state(page, server):
    state = urllib.parse.urlencode({"expr": "log(det(X))", "wrt": "X", "tab": "steps",
                                    "claim": "inv(X)"}, quote_via=urllib.parse.quote)
    page.goto(server.url + "#" + state)
    page.wait_for_selector("ol.steps li")
    assert page.input_value("#expr") == "log(det(X))"
    assert page.input_value("#claim") == "inv(X)"
    assert page.is_visible("#panel-steps")
    steps = page.inner_text("#steps")
    assert "d(det(X))" in steps or "det" in steps
    rules = page.locator("ol.steps .rule").all_inner_texts()
    assert len(rules) >= 3 and all(rules)
    # ∂/∂X log det X = X⁻ᵀ (by hand)
    assert page.locator(".gradient-text[data-wrt=X] code").inner_text() == "inv(X)'"
    _only_local(page, server)


def test_syntax_error_shows_a_caret_under_the_box(page, server):
    page.goto(server.url + "#expr=tr(A*X*B)&wrt=X")
    page.wait_for_selector(".gradient-text[data-wrt=X]")
    page.fill("#expr", "tr(A*X*B")
    page.wait_for_selector("#error-expr:not([hidden])")
    lines = page.inner_text("#error-expr").splitlines()
    assert lines[0].startswith("error:") and lines[-1].strip() == "^"
    assert page.get_attribute("#expr", "aria-invalid") == "true"
    page.fill("#expr", "tr(A*X*B)")
    page.wait_for_selector("#error-expr", state="hidden")


def test_graph_and_code_tabs(page, server, artifacts):
    page.goto(server.url + "#expr=" + urllib.parse.quote("-y'*log(softmax(W2*σ(W1*x)))")
              + "&wrt=W1,W2&tab=graph")
    page.wait_for_selector("#graph svg g.node")
    assert page.locator("#graph svg g.node").count() == 13
    page.screenshot(path=str(artifacts / "graph.png"), full_page=True)
    page.click("[data-tab=code]")
    code = page.inner_text("#code")
    assert "def grad_W1" in code and "def grad_W2" in code
    href = page.get_attribute("#download-code", "href")
    assert href.startswith("api/matdiff_grad.py?")
    _only_local(page, server)
