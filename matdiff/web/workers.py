"""Worker processes for the server: every derivation runs in one, under a time limit.

A derivation that runs past the limit is abandoned by ending the worker's process (a thread
cannot be stopped; a process can), and a fresh worker takes its place, so one pathological
input costs one worker for `timeout` seconds and never hangs the server. Each worker also has
an address-space cap, so one input cannot take the machine's memory."""

from __future__ import annotations

import os
import queue
import threading
import time

MEMORY_LIMIT = 3 * 1024**3  # bytes of address space per worker


class Abandoned(Exception):
    """The request did not finish in time (or its worker died); the message says which."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


def main() -> None:
    """A worker (`python -m matdiff.web.workers`): JSON lines in on standard input, JSON
    lines out on standard output; "ready" once warmed up."""
    import json
    import sys

    try:
        import resource

        limit = int(os.environ.get("MATDIFF_WORKER_MEMORY", MEMORY_LIMIT))
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    from .compute import handle

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing printed by accident can break the protocol
    handle({"kind": "grad", "expr": "tr(A*X*B)", "wrt": "X"})  # imports numpy, sympy, lark
    out.write('"ready"\n')
    out.flush()
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line))
        except MemoryError:
            message = "the derivation needed more memory than a request may use"
            answer = {"status": 400, "body": {"ok": False, "error": {
                "message": message, "kind": "usage", "span": None, "field": "expr",
                "text": f"error: {message}"}}}
        except ValueError:
            answer = {"status": 400, "body": {"ok": False, "error": {
                "message": "bad request", "kind": "usage", "span": None, "field": "expr",
                "text": "error: bad request"}}}
        out.write(json.dumps(answer, ensure_ascii=False) + "\n")
        out.flush()


class _Worker:
    """One worker process and its pipes (a process of its own, not multiprocessing: that
    would re-run the caller's main script in each worker)."""

    def __init__(self, memory_limit: int):
        import subprocess
        import sys

        package_root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [package_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["MATDIFF_WORKER_MEMORY"] = str(memory_limit)
        env["PYTHONIOENCODING"] = "utf-8"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "matdiff.web.workers"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0)
        self._buffer = b""

    def send(self, job: dict) -> None:
        import json

        self.process.stdin.write((json.dumps(job, ensure_ascii=False) + "\n").encode())

    def receive(self, timeout: float):
        """The next message, or None when none came within `timeout` seconds."""
        import json
        import select

        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError("the worker ended")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line.decode("utf-8"))

    def wait_ready(self, timeout: float) -> bool:
        try:
            return self.receive(timeout) == "ready"
        except (EOFError, OSError, ValueError):
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(5)
        except Exception:
            pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class Pool:
    """`size` worker processes; `run(job)` blocks the calling thread until the answer."""

    def __init__(self, size: int = 2, timeout: float = 10.0, queue_timeout: float = 30.0,
                 memory_limit: int = MEMORY_LIMIT):
        self.size = max(1, size)
        self.timeout = timeout
        self.queue_timeout = queue_timeout
        self.memory_limit = memory_limit
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()
        self.abandoned = 0  # requests that ran out of time

    def start(self, wait: bool = True) -> None:
        starters = [threading.Thread(target=self._add_worker, daemon=True)
                    for _ in range(self.size)]
        for t in starters:
            t.start()
        if wait:
            for t in starters:
                t.join()

    def _add_worker(self) -> None:
        for _attempt in range(3):
            if self._closed:
                return
            w = _Worker(self.memory_limit)
            with self._lock:
                self._all.add(w)
            if w.wait_ready(120):
                if self._closed:
                    w.stop()
                    return
                self._idle.put(w)
                return
            self._drop(w)
            time.sleep(0.5)

    def _drop(self, w: _Worker) -> None:
        with self._lock:
            self._all.discard(w)
        w.stop()

    def _replace(self, w: _Worker) -> None:
        """End a worker and start another in the background."""
        self._drop(w)
        if not self._closed:
            threading.Thread(target=self._add_worker, daemon=True).start()

    def run(self, job: dict, timeout: float | None = None) -> dict:
        limit = self.timeout if timeout is None else timeout
        try:
            w = self._idle.get(timeout=self.queue_timeout)
        except queue.Empty:
            raise Abandoned(f"the server is busy (every worker was in use for "
                            f"{self.queue_timeout:g} s): try again in a moment", 503) from None
        try:
            w.send(job)
            answer = w.receive(limit)
            if answer is not None:
                self._idle.put(w)
                return answer
        except (EOFError, OSError, ValueError):
            self._replace(w)
            raise Abandoned("the derivation stopped unexpectedly (its worker process ended, "
                            "perhaps out of memory): simplify the expression", 500) from None
        self.abandoned += 1
        self._replace(w)
        raise Abandoned(f"the derivation was abandoned after {limit:g} s (the time limit of "
                        "a request): try a smaller expression, or fewer variables", 504)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.stop()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all]


def default_size() -> int:
    return max(1, min(4, os.cpu_count() or 1))


if __name__ == "__main__":
    main()
