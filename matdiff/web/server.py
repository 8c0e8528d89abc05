"""`matdiff serve`: a local web page for derivations, code, homework checks and graphs.

Starlette + uvicorn (the `web` extra). The page and every asset (KaTeX included) ship in the
package, so it works offline. Security: binds 127.0.0.1 unless told otherwise, answers only
requests addressed to a local host name (no DNS rebinding), takes JSON bodies only (no
cross-site form posts), limits the size of every request, runs each derivation in a worker
process with a time limit (matdiff.web.workers), never executes user code or writes files,
and sends a strict Content-Security-Policy with every response."""

from __future__ import annotations

import json
import socket
import threading
from collections import OrderedDict
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .compute import MAX_EXPR
from .workers import Abandoned, Pool, default_size

MAX_BODY = 64 * 1024  # bytes of a request body (an expression and a claim of 20,000 characters)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


class _SecurityHeaders:
    """Pure ASGI middleware: the headers above on every response, static files included."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode("latin-1").lower() not in HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                if scope["path"].startswith("/api/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Cache:
    """The answers to the last requests (typing revisits states; a class loads one page)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


def _error(status: int, message: str, kind: str = "usage", field: str = "expr") -> JSONResponse:
    return JSONResponse({"ok": False, "error": {"message": message, "kind": kind, "span": None,
                                                "text": f"error: {message}", "field": field}},
                        status_code=status)


async def _read_json(request: Request) -> dict | Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _error(415, "send the request as JSON (Content-Type: application/json)")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return _error(413, f"the request is too large (at most {MAX_BODY // 1024} KB; an "
                           f"expression may have up to {MAX_EXPR:,} characters)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _error(413, f"the request is too large (at most {MAX_BODY // 1024} KB)")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _error(400, "the request body is not JSON text")
    if not isinstance(data, dict):
        return _error(400, "the request body must be a JSON object")
    return data


def _job(kind: str, data) -> dict:
    job = {"kind": kind}
    for key in ("expr", "wrt", "let", "claim"):
        if key in data:
            job[key] = data[key]
    return job


def create_app(pool: Pool, allowed_hosts: list[str] | None = None) -> Starlette:
    cache = _Cache()
    static = resources.files("matdiff.web") / "static"
    index = (static / "index.html").read_bytes()

    async def compute(job: dict) -> dict:
        key = json.dumps(job, sort_keys=True, ensure_ascii=False)
        answer = cache.get(key)
        if answer is None:
            try:
                answer = await run_in_threadpool(pool.run, job)
            except Abandoned as e:
                return {"status": e.status, "body": {"ok": False, "error": {
                    "message": e.message, "kind": "timeout" if e.status == 504 else "server",
                    "span": None, "text": f"error: {e.message}", "field": "expr"}}}
            if answer["status"] in (200, 400):  # deterministic answers only
                cache.put(key, answer)
        return answer

    async def page(request: Request) -> Response:
        return Response(index, media_type="text/html; charset=utf-8")

    async def api_post(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("grad", "check"):
            return _error(404, f"no such request: /api/{kind}")
        data = await _read_json(request)
        if isinstance(data, Response):
            return data
        answer = await compute(_job(kind, data))
        return JSONResponse(answer["body"], status_code=answer["status"])

    async def api_get(request: Request) -> Response:
        name = request.path_params["name"]
        kinds = {"graph.svg": "graph", "matdiff_grad.py": "module"}
        if name not in kinds:
            return _error(404, f"no such file: /api/{name}")
        if len(request.url.query) > MAX_BODY:
            return _error(413, f"the request is too large (at most {MAX_BODY // 1024} KB)")
        answer = await compute(_job(kinds[name], request.query_params))
        if answer["status"] != 200:
            return JSONResponse(answer["body"], status_code=answer["status"])
        headers = {}
        if answer.get("filename"):
            headers["content-disposition"] = f'attachment; filename="{answer["filename"]}"'
        return Response(answer["body"], media_type=answer["type"], headers=headers)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "workers": len(pool.pids())})

    routes = [
        Route("/", page),
        Route("/healthz", health),
        Route("/api/{kind}", api_post, methods=["POST"]),
        Route("/api/{name}", api_get, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]
    middleware = [Middleware(_SecurityHeaders),
                  Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOCAL_HOSTS)]
    return Starlette(routes=routes, middleware=middleware)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _hosts_for(host: str) -> list[str]:
    hosts = list(LOCAL_HOSTS)
    if host not in ("127.0.0.1", "localhost", "::1"):
        hosts.append(host.strip("[]"))
        if host in ("0.0.0.0", "::"):
            hosts = ["*"]  # the user asked to be reachable by any name
    return hosts


class Running:
    """A server in a background thread (for tests and the screenshot script)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", workers: int = 2,
                 timeout: float = 10.0):
        import uvicorn

        self.pool = Pool(workers, timeout)
        self.pool.start(wait=True)
        self.sock = bind(host, port)
        self.url = url_of(self.sock)
        app = create_app(self.pool, _hosts_for(host))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        import time

        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.pool.close()
        self.sock.close()


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False,
          workers: int | None = None, timeout: float = 10.0, out=None) -> int:
    import sys

    import uvicorn

    from ..errors import MatdiffError

    out = out or sys.stdout
    try:
        sock = bind(host, port)
    except OSError as e:
        raise MatdiffError(f"cannot listen on {host}:{port}: {e.strerror or e} (is another "
                           "server using the port? try --port 0 for a free one)") from None
    pool = Pool(workers or default_size(), timeout)
    pool.start(wait=False)
    url = url_of(sock)
    app = create_app(pool, _hosts_for(host))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    out.write(f"matdiff serve: {url}  (Ctrl-C to stop)\n")
    if host not in ("127.0.0.1", "localhost", "::1"):
        out.write(f"warning: listening on {host}, not only this machine\n")
    out.flush()
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, (url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        pool.close()
        sock.close()
    return 0
