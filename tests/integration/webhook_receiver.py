"""A real webhook receiver for tests and benchmarks: an HTTP/1.1 server on 127.0.0.1 in a thread.

It records every request it reads (headers, raw body, arrival time) and answers as its `plan` says:
a status, optionally after a delay (longer than the dispatcher's timeout = a timeout), or only
once a threading.Event is set (to hold a request in flight while the test does something).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    path: str
    status: int | None = None  # what the receiver answered (None: no answer yet, or never)

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Reply(NamedTuple):
    status: int = 200
    delay: float = 0.0
    hold: threading.Event | None = None


Plan = Callable[[int, Received], Reply]  # (0-based request number, request) -> reply


def always_ok(_: int, __: Received) -> Reply:
    return Reply()


@dataclass
class Receiver:
    port: int = 0
    plan: Plan = always_ok
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, as real servers do

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = Received({k.lower(): v for k, v in self.headers.items()}, body, time.time(), self.path)
                with receiver._lock:
                    number = len(receiver.received)
                    receiver.received.append(request)
                reply = receiver.plan(number, request)
                if reply.hold is not None:
                    reply.hold.wait(30)
                if reply.delay:
                    time.sleep(reply.delay)
                request.status = reply.status
                try:
                    self.send_response(reply.status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client is gone (timed out, or killed)
                    request.status = None

            def log_message(self, *args: Any) -> None:
                """Keep the test output quiet: no line per request."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        """The requests it answered with 2xx, in arrival order."""
        return [r for r in self.snapshot() if r.ok]

    def delivered_ids(self) -> list[str]:
        return [r.json["id"] for r in self.delivered()]


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0, what: str = "") -> None:
    """Wait until `check()` is true (polling), or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        await asyncio.sleep(0.02)
