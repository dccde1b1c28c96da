"""A local OAuth2 authorization server and API over real HTTP on 127.0.0.1.

It behaves like a strict provider: single-use codes bound to redirect URI and PKCE challenge, refresh
tokens that rotate on every use (the old one dies), ``invalid_grant`` for anything stale, Basic client
authentication, and switches for failure modes (``fail_token_with`` a status, ``refresh_delay``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-client-secret-do-not-log"
API_KEY = "tk_live_valid_key_123456"


@dataclass
class ProviderState:
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch)
    refresh_tokens: set[str] = field(default_factory=set)
    revoked: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    """Every code, access token and refresh token ever handed out."""
    refresh_calls: int = 0
    token_calls: int = 0
    requests: list[str] = field(default_factory=list)
    fail_token_with: int | None = None
    refresh_delay: float = 0.0
    access_ttl: int = 3600
    account_id: str = "acct-42"
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The accounting-like API: customers written in batches (idempotent by requestid), payments read in pages.
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_calls: int = 0
    latency: float = 0.0
    fail_api_with: int | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    payment_seq: int = 0
    replayed: int = 0
    """Batch items answered from the idempotency cache: a client repeated a request it had sent before."""
    stall_batch: int | None = None
    """Process batch number N, then hold its response until ``release`` is set (a crash test's window)."""
    stall_read: int | None = None
    """Answer payments read number N, then hold the response until ``release`` is set (the read has made
    its provider call; the hub has not heard back yet)."""
    payment_reads: int = 0
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def put_payment(self, payment_id: str, amount: str, *, deleted: bool = False, **extra: Any) -> None:
        """Add or change a payment; it moves to the end of the change order."""
        with self.lock:
            self.payment_seq += 1
            self.payments = [p for p in self.payments if p["id"] != payment_id]
            self.payments.append({"id": payment_id, "amount": amount, "seq": self.payment_seq,
                                  "deleted": deleted, **extra})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

    def _client_ok(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        return base64.b64decode(header[6:]).decode() == f"{CLIENT_ID}:{CLIENT_SECRET}"

    def _bearer_ok(self) -> bool:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        expiry = self.server.state.access_tokens.get(token)
        return expiry is not None and expiry > time.time()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        st = self.server.state
        st.requests.append(f"GET {url.path}")
        if url.path == "/authorize":
            # The user's consent screen: ?decision=deny simulates the user saying no.
            redirect = query["redirect_uri"]
            if query.get("decision") == "deny":
                params = {"error": "access_denied", "state": query["state"]}
            else:
                code = secrets.token_urlsafe(16)
                with st.lock:
                    st.issued.append(code)
                    st.codes[code] = {
                        "redirect_uri": redirect, "challenge": query.get("code_challenge"),
                        "method": query.get("code_challenge_method"), "client_id": query.get("client_id"),
                    }
                params = {"code": code, "state": query["state"], "account": st.account_id}
            self._send(302, headers={"Location": f"{redirect}?{urlencode(params)}"})
        elif url.path == "/api/me":
            if not self._bearer_ok():
                return self._send(401, {"error": "invalid_token"})
            self._send(200, {"account_id": st.account_id, "name": "Test Account Ltd"})
        elif url.path == "/api/echo":
            if not self._bearer_ok():
                return self._send(401, {"error": "invalid_token"})
            self._send(200, {"echo": query.get("text", "")})
        elif url.path == "/api/payments":
            if not self._bearer_ok():
                return self._send(401, {"error": "invalid_token"})
            after, limit = int(query.get("after") or 0), int(query.get("limit") or 100)
            with st.lock:
                page = [p for p in st.payments if p["seq"] > after][:limit]
                more = any(p["seq"] > (page[-1]["seq"] if page else after) for p in st.payments)
                st.payment_reads += 1
                number = st.payment_reads
            if number == st.stall_read:
                st.stalled.set()
                st.release.wait(timeout=60)
            self._send(200, {"data": [p for p in page if not p["deleted"]],
                             "deleted": [p["id"] for p in page if p["deleted"]],
                             "next": str(page[-1]["seq"]) if page else str(after), "has_more": more})
        elif url.path == "/api/check-key":
            if self.headers.get("X-Api-Key") != API_KEY:
                return self._send(401, {"error": "bad key"})
            self._send(200, {"account_id": "key-account-7", "name": "Keyed Account"})
        else:
            self._send(404, {"error": "not_found"})

    def _customers_batch(self) -> None:
        st = self.server.state
        if not self._bearer_ok():
            return self._send(401, {"error": "invalid_token"})
        length = int(self.headers.get("Content-Length") or 0)
        items = json.loads(self.rfile.read(length))["BatchItemRequest"]
        time.sleep(st.latency)
        if st.fail_api_with:
            return self._send(st.fail_api_with, {"error": "unavailable"})
        if len(items) > 30:
            return self._send(400, {"error": "at most 30 items per batch"})
        with st.lock:
            st.batch_calls += 1
            number = st.batch_calls
            results = _customers_batch_items(st, items)
        if number == st.stall_batch:  # done at the provider; the caller has not heard back yet
            st.stalled.set()
            st.release.wait(timeout=60)
        self._send(200, {"BatchItemResponse": results})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        st = self.server.state
        st.requests.append(f"POST {url.path}")
        if url.path == "/api/customers/batch":
            return self._customers_batch()
        form = self._form()
        if url.path == "/revoke":
            if not self._client_ok():
                return self._send(401, {"error": "invalid_client"})
            with st.lock:
                st.revoked.append(form.get("token", ""))
                st.refresh_tokens.discard(form.get("token", ""))
            return self._send(200, {})
        if url.path != "/token":
            return self._send(404, {"error": "not_found"})
        with st.lock:
            st.token_calls += 1
            if form.get("grant_type") == "refresh_token":
                st.refresh_calls += 1
        if st.fail_token_with:
            return self._send(st.fail_token_with, {"error": "server_error"})
        if not self._client_ok():
            return self._send(401, {"error": "invalid_client"})
        if form.get("grant_type") == "authorization_code":
            with st.lock:
                grant = st.codes.pop(form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return self._send(400, {"error": "invalid_grant"})
            if grant["challenge"]:
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                if digest != grant["challenge"]:
                    return self._send(400, {"error": "invalid_grant", "error_description": "PKCE mismatch"})
        elif form.get("grant_type") == "refresh_token":
            time.sleep(st.refresh_delay)
            with st.lock:
                if form.get("refresh_token") not in st.refresh_tokens:
                    return self._send(400, {"error": "invalid_grant"})
                st.refresh_tokens.discard(form["refresh_token"])  # rotation: the old one dies
        else:
            return self._send(400, {"error": "unsupported_grant_type"})
        access, refresh = "at_" + secrets.token_urlsafe(16), "rt_" + secrets.token_urlsafe(16)
        with st.lock:
            st.issued += [access, refresh]
            st.access_tokens[access] = time.time() + st.access_ttl
            st.refresh_tokens.add(refresh)
        self._send(200, {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                         "expires_in": st.access_ttl, "scope": "read write"})


def _customers_batch_items(st: ProviderState, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    for item in items:
        key = item.get("requestid")
        if key and key in st.batch_results:  # a repeated request gets the first answer, nothing new
            st.replayed += 1
            results.append(st.batch_results[key])
            continue
        customer = item["customer"]
        if customer.get("DisplayName", "").startswith("REJECT"):
            result = {"bId": item["bId"], "Fault": {"Error": [{"Message": "Duplicate Name Exists Error"}]}}
        elif item["operation"] == "update" and item.get("id") not in st.customers:
            result = {"bId": item["bId"], "Fault": {"Error": [{"Message": "Object Not Found"}]}}
        elif item["operation"] == "update" and customer.get("SyncToken") != st.customers[item["id"]]["SyncToken"]:
            result = {"bId": item["bId"], "Fault": {"Error": [{"Message": "Stale Object Error", "code": "5010"}]}}
        else:
            customer_id = item.get("id") or str(len(st.customers) + 1)
            token = str(int(st.customers[customer_id]["SyncToken"]) + 1) if customer_id in st.customers else "0"
            st.customers[customer_id] = {**customer, "SyncToken": token}
            result = {"bId": item["bId"], "Customer": {"Id": customer_id, **customer, "SyncToken": token}}
        if key:
            st.batch_results[key] = result
        results.append(result)
    return results


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ProviderState

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a killed client
            super().handle_error(request, client_address)


class FakeProvider:
    """Start with ``with FakeProvider() as provider:``; ``provider.url`` is its base URL."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = ProviderState()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def state(self) -> ProviderState:
        return self._server.state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
