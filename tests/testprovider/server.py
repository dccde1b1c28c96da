"""A local OAuth2 authorization server and API over real HTTP on 127.0.0.1 (a ``hub.testing`` simulator).

It behaves like a strict provider: single-use codes bound to redirect URI and PKCE challenge, refresh
tokens that rotate on every use (the old one dies), ``invalid_grant`` for anything stale, Basic client
authentication, and switches for failure modes (``fail_token_with`` a status, ``refresh_delay``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from hub.testing.simulator import Request, Response, Simulator

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


class FakeProvider(Simulator):
    """Start with ``with FakeProvider() as provider:``; ``provider.url`` is its base URL, ``provider.state``
    what it holds; the fault switches of ``hub.testing.simulator.Simulator`` work on it too."""

    def __init__(self) -> None:
        super().__init__()
        self.state = ProviderState()

    def expire_tokens(self) -> int:
        with self.state.lock:
            self.state.access_tokens = dict.fromkeys(self.state.access_tokens, 0.0)
            return len(self.state.access_tokens)

    def _client_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        return base64.b64decode(header[6:]).decode() == f"{CLIENT_ID}:{CLIENT_SECRET}"

    def _bearer_ok(self, request: Request) -> bool:
        expiry = self.state.access_tokens.get(request.bearer or "")
        return expiry is not None and expiry > time.time()

    def handle(self, request: Request) -> Response:
        self.state.requests.append(f"{request.method} {request.path}")
        if request.method == "GET":
            return self._get(request)
        if request.path == "/api/customers/batch":
            return self._customers_batch(request)
        return self._oauth(request)

    def _get(self, request: Request) -> Response:
        st, query = self.state, request.query
        if request.path == "/authorize":
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
            return Response.redirect(f"{redirect}?{urlencode(params)}")
        if request.path == "/api/check-key":
            if request.headers.get("x-api-key") != API_KEY:
                return Response.json({"error": "bad key"}, 401)
            return Response.json({"account_id": "key-account-7", "name": "Keyed Account"})
        if request.path not in ("/api/me", "/api/echo", "/api/payments"):
            return Response.json({"error": "not_found"}, 404)
        if not self._bearer_ok(request):
            return Response.json({"error": "invalid_token"}, 401)
        if request.path == "/api/me":
            return Response.json({"account_id": st.account_id, "name": "Test Account Ltd"})
        if request.path == "/api/echo":
            return Response.json({"echo": query.get("text", "")})
        after, limit = int(query.get("after") or 0), int(query.get("limit") or 100)
        with st.lock:
            page = [p for p in st.payments if p["seq"] > after][:limit]
            more = any(p["seq"] > (page[-1]["seq"] if page else after) for p in st.payments)
            st.payment_reads += 1
            number = st.payment_reads
        if number == st.stall_read:
            st.stalled.set()
            st.release.wait(timeout=60)
        return Response.json({"data": [p for p in page if not p["deleted"]],
                              "deleted": [p["id"] for p in page if p["deleted"]],
                              "next": str(page[-1]["seq"]) if page else str(after), "has_more": more})

    def _customers_batch(self, request: Request) -> Response:
        st = self.state
        if not self._bearer_ok(request):
            return Response.json({"error": "invalid_token"}, 401)
        items = request.json()["BatchItemRequest"]
        time.sleep(st.latency)
        if st.fail_api_with:
            return Response.json({"error": "unavailable"}, st.fail_api_with)
        if len(items) > 30:
            return Response.json({"error": "at most 30 items per batch"}, 400)
        with st.lock:
            st.batch_calls += 1
            number = st.batch_calls
            results = _customers_batch_items(st, items)
        if number == st.stall_batch:  # done at the provider; the caller has not heard back yet
            st.stalled.set()
            st.release.wait(timeout=60)
        return Response.json({"BatchItemResponse": results})

    def _oauth(self, request: Request) -> Response:
        st = self.state
        form = request.form()
        if request.path == "/revoke":
            if not self._client_ok(request):
                return Response.json({"error": "invalid_client"}, 401)
            with st.lock:
                st.revoked.append(form.get("token", ""))
                st.refresh_tokens.discard(form.get("token", ""))
            return Response.json({})
        if request.path != "/token":
            return Response.json({"error": "not_found"}, 404)
        with st.lock:
            st.token_calls += 1
            if form.get("grant_type") == "refresh_token":
                st.refresh_calls += 1
        if st.fail_token_with:
            return Response.json({"error": "server_error"}, st.fail_token_with)
        if not self._client_ok(request):
            return Response.json({"error": "invalid_client"}, 401)
        if form.get("grant_type") == "authorization_code":
            with st.lock:
                grant = st.codes.pop(form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return Response.json({"error": "invalid_grant"}, 400)
            if grant["challenge"]:
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                if digest != grant["challenge"]:
                    return Response.json({"error": "invalid_grant", "error_description": "PKCE mismatch"}, 400)
        elif form.get("grant_type") == "refresh_token":
            time.sleep(st.refresh_delay)
            with st.lock:
                if form.get("refresh_token") not in st.refresh_tokens:
                    return Response.json({"error": "invalid_grant"}, 400)
                st.refresh_tokens.discard(form["refresh_token"])  # rotation: the old one dies
        else:
            return Response.json({"error": "unsupported_grant_type"}, 400)
        access, refresh = "at_" + secrets.token_urlsafe(16), "rt_" + secrets.token_urlsafe(16)
        with st.lock:
            st.issued += [access, refresh]
            st.access_tokens[access] = time.time() + st.access_ttl
            st.refresh_tokens.add(refresh)
        return Response.json({"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
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
