"""A tenant's webhook receiver over real HTTP on 127.0.0.1: records every request and answers as told."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """``with Receiver() as r:``; ``r.url``. Answers come from ``script`` (one per request, in order; after it
    runs out, ``then``). ``hold`` (a ``threading.Event``) makes every request wait until it is set."""

    def __init__(self, script: list[Answer | int] | None = None, then: Answer | int = 200,
                 answer: Callable[[Received], Answer] | None = None) -> None:
        self.script = [a if isinstance(a, Answer) else Answer(a) for a in script or []]
        self.then = then if isinstance(then, Answer) else Answer(then)
        self.answer = answer
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.hold: threading.Event | None = None
        self.waiting = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver.lock:
                    receiver.received.append(request)
                    answer = receiver.answer(request) if receiver.answer else (
                        receiver.script.pop(0) if receiver.script else receiver.then)
                    hold = receiver.hold
                    receiver.waiting += 1
                try:
                    if hold is not None:
                        hold.wait(30)
                finally:
                    with receiver.lock:
                        receiver.waiting -= 1
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()
