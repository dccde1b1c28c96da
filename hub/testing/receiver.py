"""A tenant's webhook receiver over real HTTP on 127.0.0.1: records every request, answers as told, and
checks each delivery's Standard Webhooks signature (https://www.standardwebhooks.com) against the
endpoint's secrets, implemented here from the specification rather than with the hub's own signer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hub.testing.simulator import POLL_SECONDS

TOLERANCE_SECONDS = 300


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None = None
    """Whether the signature held for one of the receiver's ``secrets`` (None: it was given none)."""

    @property
    def id(self) -> str | None:
        return self.headers.get("webhook-id")

    def json(self) -> Any:
        return json.loads(self.body)


def signature_holds(secrets: Sequence[str], headers: dict[str, str], body: bytes, *,
                    now: float | None = None, tolerance: float | None = TOLERANCE_SECONDS) -> bool:
    """Standard Webhooks: ``v1,`` base64 HMAC-SHA256 (key: the base64 after ``whsec_``) of
    ``{webhook-id}.{webhook-timestamp}.{body}``, any of the space-separated signatures, timestamp within
    ``tolerance`` seconds of ``now`` (None: no timestamp check)."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit():
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    given = [part.split(",", 1)[1] for part in headers.get("webhook-signature", "").split()
             if part.startswith("v1,")]
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for secret in secrets:
        raw = secret.removeprefix("whsec_")
        expected = base64.b64encode(hmac.new(base64.b64decode(raw + "=" * (-len(raw) % 4)), signed,
                                             hashlib.sha256).digest()).decode()
        if any(hmac.compare_digest(expected, g) for g in given):
            return True
    return False


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """``with Receiver() as r:``; ``r.url``. Answers come from ``script`` (one per request, in order; after it
    runs out, ``then``). ``hold`` (a ``threading.Event``) makes every request wait until it is set.

    Give it the endpoint's signing secrets (``r.secrets = [secret]``, or ``secrets=`` here) and each
    request is checked as it arrives: ``Received.verified``; ``r.deliveries()`` are the verified ones,
    once each (a retry or redelivery carries the same ``webhook-id``), and ``r.unverified()`` the rest.
    ``tolerance`` is the timestamp window (None: a hub on a moved ``Clock`` signs with its own time)."""

    def __init__(self, script: list[Answer | int] | None = None, then: Answer | int = 200,
                 answer: Callable[[Received], Answer] | None = None, *, secrets: Sequence[str] = (),
                 tolerance: float | None = TOLERANCE_SECONDS) -> None:
        self.secrets = list(secrets)
        self.tolerance = tolerance
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
                if receiver.secrets:
                    request.verified = signature_holds(receiver.secrets, request.headers, body,
                                                       tolerance=receiver.tolerance)
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
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def deliveries(self) -> list[Received]:
        """Verified deliveries, the first of each ``webhook-id``, in arrival order."""
        seen: set[str | None] = set()
        with self.lock:
            out = []
            for r in self.received:
                if r.verified and r.id not in seen:
                    seen.add(r.id)
                    out.append(r)
            return out

    def unverified(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if not r.verified]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()
