"""Make the README's pictures of `matdiff serve` and `matdiff graph`.

    pip install ".[web,browser]"     # and Debian's chromium: apt-get install chromium
    python docs/screenshots.py       # writes docs/images/serve.png and docs/images/graph.png

Starts the server on a free local port, drives the page in headless Chromium (the system
browser, through Playwright) and screenshots the result tab and the computation graph."""

from __future__ import annotations

import os
import shutil
import sys
import urllib.parse
from pathlib import Path

OUT = Path(__file__).resolve().parent / "images"
EXPR = "-y'*log(softmax(W2*σ(W1*x)))"
CHROMIUM = os.environ.get("MATDIFF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    from playwright.sync_api import sync_playwright

    from matdiff.web.server import Running

    OUT.mkdir(parents=True, exist_ok=True)
    server = Running(port=0, workers=1, timeout=30)
    state = urllib.parse.urlencode({"expr": EXPR, "wrt": "W1, W2"},
                                   quote_via=urllib.parse.quote)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 820})
            page.goto(server.url + "#" + state)
            page.wait_for_selector(".gradient-text[data-wrt=W2]")
            page.wait_for_timeout(300)  # fonts
            page.screenshot(path=str(OUT / "serve.png"))
            # the graph as `matdiff graph` draws it: the SVG alone, at its own size
            response = page.goto(server.url + "api/graph.svg?" + state.replace(" ", ""))
            assert response is not None and response.ok, "the server did not draw the graph"
            width, height = (int(float(v)) for v in page.evaluate(
                "[document.documentElement.getAttribute('width'),"
                " document.documentElement.getAttribute('height')]"))
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(OUT / "graph.png"))
            browser.close()
    finally:
        server.stop()
    for name in ("serve.png", "graph.png"):
        print(f"{OUT / name}: {(OUT / name).stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
