"""A base for provider simulators: a real HTTP server on 127.0.0.1 in a thread of the test process, a log
of every request, and faults a test switches on (latency, 429 with Retry-After, 5xx, dropped connections,
token expiry).

A simulator subclasses ``Simulator`` and answers one parsed ``Request`` at a time::

    class AcmeSimulator(Simulator):
        def handle(self, request: Request) -> Response:
            if request.path == "/v1/ping":
                return Response.json({"pong": True})
            return Response.json({"error": "not_found"}, status=404)

    with AcmeSimulator() as acme:
        httpx.get(f"{acme.url}/v1/ping")
        assert acme.calls("/v1/") == 1

Faults are checked before ``handle`` runs, in the order they were planned, each for the requests whose
path starts with its ``path`` prefix (every request when None)::

    acme.throttle_next(retry_after=2)       # the next request gets 429 with Retry-After: 2
    acme.fail_next(503, times=3)            # the three after it get 503
    acme.drop_next(path="/v1/invoices")     # the connection is closed without an answer
    acme.latency = 0.2                      # every request waits 200 ms first
    acme.expire_tokens()                    # every access token issued so far stops working

Each request runs on a thread of its own, so ``handle`` may block (to hold an answer back, say) and must
guard shared state with ``self.lock``.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Fault", "Request", "Response", "Simulator", "TokenStore"]


POLL_SECONDS = 0.05
"""How often a serving thread looks whether it should stop: ``stop()`` waits up to this long (socketserver's
default half second, paid in almost every test's teardown, added up to minutes of the suite)."""


@dataclass(frozen=True)
class Request:
    """One request as it arrived: ``headers`` have lower-case names, ``query`` the first value of each."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, body: Any, status: int = 200, headers: dict[str, str] | None = None,
             content_type: str = "application/json") -> Response:
        return cls(status, json.dumps(body).encode(), {"Content-Type": content_type, **(headers or {})})

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Response:
        return cls(status, b"", {"Location": location})


@dataclass
class Fault:
    """A planned fault: answer ``status`` (with ``retry_after`` as a header) or, with ``drop``, close the
    connection without a word; for the next ``times`` requests whose path starts with ``path``."""

    status: int | None = None
    retry_after: str | None = None
    drop: bool = False
    times: int = 1
    path: str | None = None
    body: bytes | None = None

    def applies(self, request: Request) -> bool:
        return self.path is None or request.path.startswith(self.path)


@dataclass
class Logged:
    """One entry of ``Simulator.requests``: the request and what it got (``None``: the connection was dropped)."""

    request: Request
    status: int | None


class TokenStore:
    """Access tokens a simulator issued: token -> (owner, expiry in epoch seconds). ``owner(token)`` is
    who the token belongs to while it is live; ``expire_all()`` is the token-expiry fault."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, token: str, owner: str, ttl: float) -> str:
        with self._lock:
            self._tokens[token] = (owner, time.time() + ttl)
        return token

    def owner(self, token: str | None) -> str | None:
        with self._lock:
            owner, expiry = self._tokens.get(token or "", (None, 0.0))
        return owner if expiry > time.time() else None

    def expire_all(self) -> int:
        with self._lock:
            self._tokens = {t: (owner, 0.0) for t, (owner, _) in self._tokens.items()}
            return len(self._tokens)

    def revoke_owner(self, owner: str) -> None:
        with self._lock:
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] != owner}

    def get(self, token: str, default: Any = None) -> Any:
        with self._lock:
            return self._tokens.get(token, default)

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return token in self._tokens

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)

    def __bool__(self) -> bool:
        return len(self) > 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    simulator: Simulator

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a client gave up
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Request(self.command, url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                          {k.lower(): v for k, v in self.headers.items()}, body)
        response = self.server.simulator._answer(request)
        if response is None:
            self._drop()
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _drop(self) -> None:
        """Reset the connection (SO_LINGER 0): the client sees it closed without an answer."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class Simulator:
    """Serve ``handle`` on ``url`` (127.0.0.1, a free port unless ``port`` is given) from ``__enter__`` until
    ``__exit__``. ``keep_alive`` answers HTTP/1.1 with persistent connections (fast, for benchmarks); the
    default HTTP/1.0 closes each connection, so no pooled connection outlives the event loop that opened it."""

    keep_alive = False

    def __init__(self, *, port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"protocol_version": "HTTP/1.1" if self.keep_alive else "HTTP/1.0",
                                                 "disable_nagle_algorithm": self.keep_alive})
        self._server = _Server(("127.0.0.1", port), handler)
        self._server.simulator = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                                        daemon=True)
        self.lock = threading.RLock()
        self.requests: list[Logged] = []
        """Every request received, in order, with the status it was answered."""
        self.faults: list[Fault] = []
        self.latency = 0.0
        """Seconds every request waits before it is answered."""
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests that were being answered at once (a concurrency limit held or not)."""

    # -- what a subclass writes ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """The provider's answer to one request."""
        raise NotImplementedError(f"{type(self).__name__} must define handle(request)")

    def fault_response(self, request: Request, fault: Fault) -> Response:
        """The body of a planned error, in the provider's shape (override to match the real one)."""
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is not None:
            return Response(fault.status or 500, fault.body, headers)
        return Response.json({"error": "simulated", "status": fault.status}, fault.status or 500, headers)

    def expire_tokens(self) -> int:
        """Make every access token issued so far expire now (the next API call gets the provider's 401).
        Simulators that issue tokens keep them in a ``TokenStore`` named ``tokens``."""
        tokens = getattr(self, "tokens", None)
        if not isinstance(tokens, TokenStore):
            raise TypeError(f"{type(self).__name__} issues no access tokens (it keeps no TokenStore in .tokens)")
        return tokens.expire_all()

    # -- faults ----------------------------------------------------------------------------------------
    def fail_next(self, status: int = 503, *, times: int = 1, path: str | None = None,
                  retry_after: int | str | None = None, body: bytes | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status`` before the provider sees them."""
        self._plan(Fault(status=status, times=times, path=path, body=body,
                         retry_after=None if retry_after is None else str(retry_after)))

    def throttle_next(self, *, retry_after: int | str = 1, times: int = 1, path: str | None = None) -> None:
        """Answer the next ``times`` matching requests 429 Too Many Requests with ``Retry-After``."""
        self.fail_next(429, times=times, path=path, retry_after=retry_after)

    def drop_next(self, *, times: int = 1, path: str | None = None) -> None:
        """Close the connection of the next ``times`` matching requests without answering them."""
        self._plan(Fault(drop=True, times=times, path=path))

    def _plan(self, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self.faults.append(fault)

    # -- the request log -------------------------------------------------------------------------------
    def calls(self, path: str = "", method: str | None = None) -> int:
        """How many requests were received whose path starts with ``path`` (and of ``method``)."""
        with self.lock:
            return sum(1 for e in self.requests if e.request.path.startswith(path)
                       and (method is None or e.request.method == method))

    def logged(self, predicate: Callable[[Request], bool] = lambda r: True) -> list[Logged]:
        with self.lock:
            return [e for e in self.requests if predicate(e.request)]

    # -- serving ---------------------------------------------------------------------------------------
    def _answer(self, request: Request) -> Response | None:
        with self.lock:
            fault = next((f for f in self.faults if f.applies(request)), None)
            if fault is not None:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
            entry = Logged(request, None)
            self.requests.append(entry)
            latency = self.latency
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if latency:
                time.sleep(latency)
            if fault is not None and fault.drop:
                return None
            response = self.fault_response(request, fault) if fault is not None else self.handle(request)
        finally:
            with self.lock:
                self.in_flight -= 1
        entry.status = response.status
        return response

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

