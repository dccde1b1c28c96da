"""A local Stripe over real HTTP on 127.0.0.1, written from Stripe's API reference, on the hub's simulator
base (request log and faults: ``throttle_next``, ``fail_next``, ``drop_next``, ``latency``).

What it does as Stripe documents it:

- secret keys as ``Authorization: Bearer sk_...`` (or HTTP Basic with the key as user name); a bad key is
  401 ``invalid_request_error``; ``Stripe-Account: acct_...`` acts on a connected account of the key's
  platform (anything else: 403 ``account_invalid``);
- form-encoded POST bodies in Stripe's bracket notation (``metadata[invoice_id]=...``,
  ``payment_method_types[0]=card``);
- ``Idempotency-Key`` on POSTs, scoped to the account: the same key with the same parameters replays the
  first response (``Idempotent-Replayed: true``), with other parameters it is 400 ``idempotency_error``;
  a key over 255 characters is refused;
- errors as ``{"error": {"type", "code", "message", "param", "decline_code", "payment_intent"}}`` with
  Stripe's statuses (400, 401, 402 card errors, 403, 404 ``resource_missing``, 429 ``rate_limit``);
- lists as ``{"object": "list", "data", "has_more", "url"}`` with ``limit`` (1-100, default 10) and
  ``starting_after``; a ``Request-Id`` header on every answer;
- customers, payment intents (create, confirm — with ``confirm=true`` or ``/confirm`` — retrieve, list),
  setup intents, payment methods (list, attach, retrieve; the test-mode ``pm_card_visa``,
  ``pm_card_mastercard``, ``pm_card_chargeDeclined``, ``pm_usBankAccount``), accounts and account links;
- events, signed like Stripe signs webhooks: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
  "<t>.<body>">`` with one ``v1`` per active endpoint secret (several during a rotation). Events are kept
  in ``events``; ``signed(event)`` builds the request, and ``forward_to(url, ...)`` also posts them,
  from a thread, to a running hub (demo mode).

An account link's URL is the onboarding page: visiting it completes onboarding at once (charges enabled,
``account.updated`` emitted) and redirects to the link's ``return_url``, so no browser is needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from hub.testing.simulator import Fault, Request, Response, Simulator

API_KEY = "sk_test_own0123456789abcdefghij"
"""The secret key of ``OWN_ACCOUNT``, a Stripe account of its own (the "own key" way to connect)."""
OWN_ACCOUNT = "acct_1OwnAccount000001"
PLATFORM_KEY = "sk_test_platform0123456789abcdef"
"""The operator's platform key: it creates connected accounts and acts on them with ``Stripe-Account``."""
PLATFORM_ACCOUNT = "acct_1Platform00000001"
WEBHOOK_SECRET = "whsec_own0123456789abcdefghijklmn"
"""The own account's webhook endpoint secret."""
CONNECT_WEBHOOK_SECRET = "whsec_connect0123456789abcdefghij"
"""The platform's Connect endpoint secret (events of connected accounts)."""
API_VERSION = "2026-10-29.clover"

TEST_CARDS = {
    "pm_card_visa": ("visa", "4242", False),
    "pm_card_mastercard": ("mastercard", "4444", False),
    "pm_card_chargeDeclined": ("visa", "0002", True),
}
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                "xaf", "xof", "xpf"}
RATE_LIMIT_PER_SECOND = 100
"""Live mode's documented limit: 100 read and 100 write requests per second."""


class StripeFault(Exception):
    def __init__(self, status: int, type: str, message: str, *, code: str | None = None, param: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = {"type": type, "message": message, **({"code": code} if code else {}),
                      **({"param": param} if param else {}), **extra}
        if code:
            self.error["doc_url"] = f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}"


def missing(kind: str, object_id: str, param: str = "id") -> StripeFault:
    return StripeFault(404, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing",
                       param=param)


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's bracket notation into nested dicts and lists: ``a[b][0]=x`` -> ``{"a": {"b": ["x"]}}``."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        match = re.fullmatch(r"([^\[]+)((?:\[[^\]]*\])*)", key)
        if match is None:
            raise StripeFault(400, "invalid_request_error", f"Invalid parameter name: {key}")
        parts = [match[1], *re.findall(r"\[([^\]]*)\]", match[2])]
        node: Any = result
        for part, following in zip(parts, parts[1:] + [None], strict=True):
            child: Any = value if following is None else ([] if following == "" or following.isdigit() else {})
            if isinstance(node, list):
                index = len(node) if part == "" else int(part) if part.isdigit() else -1
                if index < 0:
                    raise StripeFault(400, "invalid_request_error", f"Invalid array parameter: {key}")
                node.extend([None] * (index + 1 - len(node)))
                if node[index] is None or following is None:
                    node[index] = child
                node = node[index]
            elif isinstance(node, dict):
                if following is None:
                    node[part] = child
                node = node.setdefault(part, child)
            else:
                raise StripeFault(400, "invalid_request_error", f"Invalid parameter: {key}")
    return result


def sign_payload(body: bytes, timestamp: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secrets_: list[str], timestamp: int | None = None) -> str:
    """``t=...,v1=...[,v1=...]``: one v1 per secret, as Stripe signs while an endpoint secret rotates."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={sign_payload(body, t, s)}" for s in secrets_)])


@dataclass
class Account:
    id: str
    key: str | None
    platform: str | None = None
    """The platform a connected account belongs to."""
    data: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """kind ("customer", "payment_intent" ...) -> id -> object, in creation order."""

    def kind(self, name: str) -> dict[str, dict[str, Any]]:
        return self.objects.setdefault(name, {})


@dataclass
class Endpoint:
    url: str
    secrets: list[str]
    connect: bool


class StripeSimulator(Simulator):
    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self._ids = itertools.count(1)
        self.accounts: dict[str, Account] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, Response]] = {}
        """(account, key) -> (fingerprint of the request, the first response)."""
        self.events: list[dict[str, Any]] = []
        self.endpoints: list[Endpoint] = []
        self.webhook_secrets = [WEBHOOK_SECRET]
        """The own account endpoint's secrets, newest last; Stripe signs with every one during a rotation."""
        self.connect_webhook_secrets = [CONNECT_WEBHOOK_SECRET]
        self.rate_limit = RATE_LIMIT_PER_SECOND
        self._recent: dict[str, deque[float]] = {}
        self._request: dict[str, Any] | None = None
        self._lost: list[list[Any]] = []
        self._links: dict[str, tuple[str, str, str | None, float]] = {}
        self.add_account(OWN_ACCOUNT, API_KEY, name="Own Key Builders")
        self.add_account(PLATFORM_ACCOUNT, PLATFORM_KEY, name="Hub Platform")

    # -- state a test or the demo sets up -------------------------------------------------------------
    def add_account(self, account_id: str, key: str | None, *, name: str, platform: str | None = None,
                    **data: Any) -> Account:
        with self.lock:
            account = Account(account_id, key, platform, {
                "id": account_id, "object": "account", "type": "standard", "country": "US",
                "default_currency": "usd", "charges_enabled": platform is None, "payouts_enabled": platform is None,
                "details_submitted": platform is None, "email": None, "metadata": {},
                "business_profile": {"name": name}, "settings": {"dashboard": {"display_name": name}},
                "created": int(time.time()), **data,
            })
            self.accounts[account_id] = account
            return account

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}{secrets.token_hex(6)}"

    def objects(self, kind: str, account: str = OWN_ACCOUNT) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.accounts[account].kind(kind).values())

    def add_payment_method(self, customer: str, kind: str = "card", *, account: str = OWN_ACCOUNT,
                           brand: str = "visa", last4: str = "4242", exp: tuple[int, int] = (12, 2030),
                           bank_name: str | None = "STRIPE TEST BANK") -> dict[str, Any]:
        """A payment method the customer saved (as a setup intent completed in the browser would leave)."""
        with self.lock:
            pm = self._payment_method(kind, brand=brand, last4=last4, exp=exp, bank_name=bank_name)
            pm["customer"] = customer
            self.accounts[account].kind("payment_method")[pm["id"]] = pm
            return pm

    def create_payment_intent(self, amount: int, currency: str = "usd", *, account: str = OWN_ACCOUNT,
                              **params: Any) -> dict[str, Any]:
        """A payment intent made directly (as the dashboard or another app of the account would)."""
        with self.lock:
            response = self._create_intent({"amount": str(amount), "currency": currency, **params},
                                            self.accounts[account])
            return json.loads(response.body)

    def confirm(self, intent_id: str, payment_method: str = "pm_card_visa", *, account: str = OWN_ACCOUNT
                ) -> dict[str, Any]:
        """The customer confirms the intent in the browser (Stripe.js): it succeeds or fails, and Stripe
        emits ``payment_intent.succeeded`` or ``payment_intent.payment_failed``."""
        with self.lock:
            acct = self.accounts[account]
            intent = acct.kind("payment_intent").get(intent_id)
            if intent is None:
                raise KeyError(intent_id)
            try:
                self._confirm(acct, intent, payment_method)
            except StripeFault:
                pass
            return dict(intent)

    def forward_to(self, url: str, secrets_: list[str] | None = None, *, connect: bool = False) -> None:
        """Post every future event to ``url`` (from a thread), as a webhook endpoint would receive it:
        the own account's events, or with ``connect`` the connected accounts' ones."""
        default = self.connect_webhook_secrets if connect else self.webhook_secrets
        with self.lock:
            self.endpoints.append(Endpoint(url, list(secrets_ or default), connect))

    def signed(self, event: dict[str, Any], secrets_: list[str] | None = None, *, timestamp: int | None = None
               ) -> tuple[bytes, dict[str, str]]:
        """The webhook request Stripe would send for ``event``: the JSON body and its headers."""
        if secrets_ is None:
            secrets_ = self.connect_webhook_secrets if event.get("account") else self.webhook_secrets
        body = json.dumps(event, indent=2).encode()
        return body, {"content-type": "application/json; charset=utf-8",
                      "stripe-signature": signature_header(body, secrets_, timestamp),
                      "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}

    def events_of(self, type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["type"] == type]

    def lose_next_responses(self, *, times: int = 1, path: str | None = None) -> None:
        """Stripe does the next ``times`` matching requests, but their answers never arrive (the connection
        is reset after the work is done): what a client sees when it dies, or the network fails, after Stripe
        has charged."""
        with self.lock:
            self._lost.append([path, times])

    def _answer(self, request: Request) -> Response | None:
        response = super()._answer(request)
        with self.lock:
            lost = next((f for f in self._lost if f[0] is None or request.path.startswith(f[0])), None)
            if lost is None or response is None:
                return response
            lost[1] -= 1
            if lost[1] == 0:
                self._lost.remove(lost)
        return None

    # -- the API ---------------------------------------------------------------------------------------
    def fault_response(self, request: Request, fault: Fault) -> Response:
        status = fault.status or 500
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if status == 429:
            error = {"type": "invalid_request_error", "code": "rate_limit",
                     "message": "Too many requests hit the API too quickly. We recommend an exponential backoff "
                                "of your requests."}
        else:
            error = {"type": "api_error", "message": "An unknown error occurred"}
        return Response.json({"error": error}, status, headers | {"Request-Id": self.new_id("req")})

    def handle(self, request: Request) -> Response:
        request_id = self.new_id("req")
        try:
            if request.method == "GET" and request.path.startswith("/setup/"):
                return self._onboarding(request)
            account, key = self._authenticate(request)
            if not self._admit(key):
                raise StripeFault(429, "invalid_request_error", "Too many requests hit the API too quickly.",
                                  code="rate_limit")
            if request.method == "POST":
                return self._post(request, account, request_id)
            response = self._route(request.method, request.path, dict(request.query), account, request_id)
        except StripeFault as fault:
            response = Response.json({"error": fault.error}, fault.status)
        response.headers.setdefault("Request-Id", request_id)
        response.headers.setdefault("Stripe-Version", API_VERSION)
        return response

    def _authenticate(self, request: Request) -> tuple[Account, str]:
        header = request.headers.get("authorization", "")
        key = ""
        if header.lower().startswith("bearer "):
            key = header[7:].strip()
        elif header.lower().startswith("basic "):
            try:
                key = base64.b64decode(header[6:]).decode().partition(":")[0]
            except ValueError:
                key = ""
        if not key:
            raise StripeFault(401, "invalid_request_error",
                              "You did not provide an API key. You need to provide your API key in the "
                              "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
        with self.lock:
            owner = next((a for a in self.accounts.values() if a.key == key), None)
            if owner is None:
                raise StripeFault(401, "invalid_request_error",
                                  f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}")
            target = request.headers.get("stripe-account")
            if not target:
                return owner, key
            connected = self.accounts.get(target)
            if connected is None or (connected.platform != owner.id and connected.id != owner.id):
                raise StripeFault(403, "invalid_request_error",
                                  f"The provided key '{key[:8]}{'*' * 8}{key[-4:]}' does not have access to account "
                                  f"'{target}' (or that account does not exist). Application access may have been "
                                  "revoked.", code="account_invalid")
            return connected, key

    def _admit(self, key: str) -> bool:
        now = time.monotonic()
        with self.lock:
            recent = self._recent.setdefault(key, deque())
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= self.rate_limit:
                return False
            recent.append(now)
            return True

    def _post(self, request: Request, account: Account, request_id: str) -> Response:
        key = request.headers.get("idempotency-key")
        params = decode_form(request.body)
        if key is None:
            return self._answer_post(request, account, params, request_id, None)
        if len(key) > 255:
            raise StripeFault(400, "invalid_request_error",
                              "Idempotency keys must be no longer than 255 characters.", param="Idempotency-Key")
        fingerprint = hashlib.sha256(request.method.encode() + request.path.encode() + b"?" + request.body).hexdigest()
        with self.lock:  # one request per key at a time, so a concurrent repeat replays rather than races
            seen = self.idempotency.get((account.id, key))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise StripeFault(
                        400, "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.")
                first = seen[1]
                return Response(first.status, first.body, first.headers | {"Idempotent-Replayed": "true"})
            response = self._answer_post(request, account, params, request_id, key)
            if response.status < 400 or response.status == 402:  # it ran: validation errors are not kept
                self.idempotency[(account.id, key)] = (fingerprint, response)
            return response

    def _answer_post(self, request: Request, account: Account, params: dict[str, Any], request_id: str,
                     key: str | None) -> Response:
        with self.lock:
            self._request = {"id": request_id, "idempotency_key": key}
            try:
                return self._route("POST", request.path, params, account, request_id)
            except StripeFault as fault:
                return Response.json({"error": fault.error}, fault.status, {"Request-Id": request_id})
            finally:
                self._request = None

    def _route(self, method: str, path: str, params: dict[str, Any], account: Account, request_id: str) -> Response:
        parts = path.strip("/").split("/")
        if parts[0] != "v1" or len(parts) < 2:
            raise StripeFault(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
        resource, rest = parts[1], parts[2:]
        with self.lock:
            if resource == "account" and not rest and method == "GET":
                return Response.json(account.data)
            if resource == "accounts":
                return self._accounts(method, rest, params, account)
            if resource == "account_links" and method == "POST" and not rest:
                return self._account_link(params, account)
            if resource == "customers":
                return self._customers(method, rest, params, account)
            if resource == "payment_intents":
                return self._payment_intents(method, rest, params, account)
            if resource == "setup_intents":
                return self._setup_intents(method, rest, params, account)
            if resource == "payment_methods":
                return self._payment_methods(method, rest, params, account)
        raise StripeFault(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    # -- accounts --------------------------------------------------------------------------------------
    def _accounts(self, method: str, rest: list[str], params: dict[str, Any], account: Account) -> Response:
        if method == "POST" and not rest:
            if account.platform is not None:
                raise StripeFault(400, "invalid_request_error",
                                  "Only platforms can create connected accounts.")
            kind = params.get("type")
            if kind not in ("standard", "express", "custom"):
                raise StripeFault(400, "invalid_request_error", "Missing required param: type.", param="type",
                                  code="parameter_missing")
            name = (params.get("business_profile") or {}).get("name") or ""
            created = self.add_account(self.new_id("acct"), None, name=name, platform=account.id, type=kind,
                                       email=params.get("email"), metadata=dict(params.get("metadata") or {}),
                                       country=params.get("country", "US"))
            return Response.json(created.data)
        if method == "GET" and len(rest) == 1:
            found = self.accounts.get(rest[0])
            if found is None or (found.platform != account.id and found.id != account.id):
                raise missing("account", rest[0], "account")
            return Response.json(found.data)
        raise StripeFault(404, "invalid_request_error", "Unrecognized request URL.")

    def _account_link(self, params: dict[str, Any], account: Account) -> Response:
        for name in ("account", "type", "return_url", "refresh_url"):
            if not params.get(name) and not (name == "refresh_url" and params.get("type") != "account_onboarding"):
                raise StripeFault(400, "invalid_request_error", f"Missing required param: {name}.", param=name,
                                  code="parameter_missing")
        target = self.accounts.get(params["account"])
        if target is None or target.platform != account.id:
            raise missing("account", params["account"], "account")
        token = secrets.token_urlsafe(12)
        self._links[token] = (target.id, params["return_url"], params.get("refresh_url"), time.time() + 300)
        now = int(time.time())
        return Response.json({"object": "account_link", "created": now, "expires_at": now + 300,
                              "url": f"{self.url}/setup/s/{target.id}/{token}"})

    def _onboarding(self, request: Request) -> Response:
        """The hosted onboarding page: the account holder finishes it at once; then back to return_url."""
        token = request.path.rsplit("/", 1)[-1]
        with self.lock:
            link = self._links.pop(token, None)
            if link is None:
                return Response(404, b"This link has expired or was already used.", {"Content-Type": "text/plain"})
            account_id, return_url, refresh_url, expires = link
            if time.time() > expires:
                return Response.redirect(refresh_url or return_url)
            self.complete_onboarding(account_id)
        return Response.redirect(return_url)

    def complete_onboarding(self, account_id: str, *, charges_enabled: bool = True) -> dict[str, Any]:
        with self.lock:
            data = self.accounts[account_id].data
            previous = {"charges_enabled": data["charges_enabled"], "details_submitted": data["details_submitted"]}
            data.update(charges_enabled=charges_enabled, payouts_enabled=charges_enabled, details_submitted=True)
            return self._emit("account.updated", data, self.accounts[account_id], previous=previous)

    # -- customers -------------------------------------------------------------------------------------
    def _customers(self, method: str, rest: list[str], params: dict[str, Any], account: Account) -> Response:
        customers = account.kind("customer")
        if method == "POST" and not rest:
            customer = {"id": self.new_id("cus"), "object": "customer", "created": int(time.time()),
                        "email": params.get("email"), "name": params.get("name"),
                        "description": params.get("description"), "phone": params.get("phone"),
                        "metadata": dict(params.get("metadata") or {}), "livemode": False}
            customers[customer["id"]] = customer
            return Response.json(customer)
        if method == "GET" and not rest:
            return self._list(list(customers.values()), params, "/v1/customers")
        if rest and rest[0] not in customers:
            raise missing("customer", rest[0])
        if method == "GET" and len(rest) == 1:
            return Response.json(customers[rest[0]])
        if method == "POST" and len(rest) == 1:
            customer = customers[rest[0]]
            for name in ("email", "name", "description", "phone"):
                if name in params:
                    customer[name] = params[name] or None
            customer["metadata"].update(params.get("metadata") or {})
            return Response.json(customer)
        if method == "GET" and len(rest) == 2 and rest[1] == "payment_methods":
            return self._list_payment_methods(account, rest[0], params, f"/v1/customers/{rest[0]}/payment_methods")
        raise StripeFault(404, "invalid_request_error", "Unrecognized request URL.")

    # -- payment methods -------------------------------------------------------------------------------
    def _payment_method(self, kind: str, *, brand: str = "visa", last4: str = "4242", exp: tuple[int, int] = (12, 2030),
                        bank_name: str | None = "STRIPE TEST BANK") -> dict[str, Any]:
        pm: dict[str, Any] = {"id": self.new_id("pm"), "object": "payment_method", "type": kind, "customer": None,
                              "created": int(time.time()), "livemode": False, "metadata": {}}
        if kind == "card":
            pm["card"] = {"brand": brand, "last4": last4, "exp_month": exp[0], "exp_year": exp[1], "funding": "credit",
                          "country": "US"}
        else:
            pm["us_bank_account"] = {"bank_name": bank_name, "last4": last4, "account_type": "checking",
                                     "account_holder_type": "individual", "routing_number": "110000000"}
        return pm

    def _resolve_payment_method(self, account: Account, pm_id: str, param: str = "payment_method") -> dict[str, Any]:
        methods = account.kind("payment_method")
        if pm_id in methods:
            return methods[pm_id]
        if pm_id in TEST_CARDS:  # test mode: a fresh card from the well-known token each time
            brand, last4, _ = TEST_CARDS[pm_id]
            pm = self._payment_method("card", brand=brand, last4=last4)
            pm["_declines"] = TEST_CARDS[pm_id][2]
            methods[pm["id"]] = pm
            return pm
        if pm_id == "pm_usBankAccount":
            pm = self._payment_method("us_bank_account", last4="6789")
            methods[pm["id"]] = pm
            return pm
        raise missing("PaymentMethod", pm_id, param)

    def _payment_methods(self, method: str, rest: list[str], params: dict[str, Any], account: Account) -> Response:
        if method == "GET" and not rest:
            customer = params.get("customer")
            if not customer:
                raise StripeFault(400, "invalid_request_error", "Missing required param: customer.", param="customer",
                                  code="parameter_missing")
            return self._list_payment_methods(account, customer, params, "/v1/payment_methods")
        if not rest:
            raise StripeFault(404, "invalid_request_error", "Unrecognized request URL.")
        pm = self._resolve_payment_method(account, rest[0], "id")
        if method == "GET" and len(rest) == 1:
            return Response.json(_public(pm))
        if method == "POST" and rest[1:] == ["attach"]:
            customer = params.get("customer")
            if customer not in account.kind("customer"):
                raise missing("customer", str(customer), "customer")
            if pm["customer"] not in (None, customer):
                raise StripeFault(400, "invalid_request_error",
                                  "The payment method you provided has already been attached to a customer.",
                                  code="payment_method_unexpected_state")
            pm["customer"] = customer
            return Response.json(_public(pm))
        raise StripeFault(404, "invalid_request_error", "Unrecognized request URL.")

    def _list_payment_methods(self, account: Account, customer: str, params: dict[str, Any], url: str) -> Response:
        if customer not in account.kind("customer"):
            raise missing("customer", customer, "customer")
        kind = params.get("type")
        found = [_public(pm) for pm in account.kind("payment_method").values()
                 if pm["customer"] == customer and (kind is None or pm["type"] == kind)]
        return self._list(found, params, url)

    # -- payment intents -------------------------------------------------------------------------------
    def _payment_intents(self, method: str, rest: list[str], params: dict[str, Any], account: Account) -> Response:
        intents = account.kind("payment_intent")
        if method == "POST" and not rest:
            return self._create_intent(params, account)
        if method == "GET" and not rest:
            found = [i for i in intents.values() if not params.get("customer") or i["customer"] == params["customer"]]
            return self._list(found, params, "/v1/payment_intents")
        if rest[0] not in intents:
            raise missing("payment_intent", rest[0], "intent")
        intent = intents[rest[0]]
        if method == "GET" and len(rest) == 1:
            return Response.json(intent)
        if method == "POST" and rest[1:] == ["confirm"]:
            pm = params.get("payment_method") or intent["payment_method"]
            if params.get("off_session") in ("true", "one_off", "recurring"):
                intent["_off_session"] = True
            self._confirm(account, intent, pm)
            return Response.json(intent)
        raise StripeFault(404, "invalid_request_error", "Unrecognized request URL.")

    def _create_intent(self, params: dict[str, Any], account: Account) -> Response:
        amount, currency = params.get("amount"), (params.get("currency") or "").lower()
        if amount is None:
            raise StripeFault(400, "invalid_request_error", "Missing required param: amount.", param="amount",
                              code="parameter_missing")
        if not currency:
            raise StripeFault(400, "invalid_request_error", "Missing required param: currency.", param="currency",
                              code="parameter_missing")
        if not re.fullmatch(r"\d+", str(amount)):
            raise StripeFault(400, "invalid_request_error", "Invalid integer: " + str(amount), param="amount",
                              code="parameter_invalid_integer")
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise StripeFault(400, "invalid_request_error", f"Invalid currency: {currency}.", param="currency")
        minimum = 50 if currency not in ZERO_DECIMAL else 1
        if int(amount) < minimum:
            raise StripeFault(400, "invalid_request_error", "Amount must be at least $0.50 usd", param="amount",
                              code="amount_too_small")
        customer = params.get("customer")
        if customer is not None and customer not in account.kind("customer"):
            raise missing("customer", customer, "customer")
        confirm = params.get("confirm") == "true"
        off_session = params.get("off_session") in ("true", "one_off", "recurring")
        if off_session and not confirm:
            raise StripeFault(400, "invalid_request_error",
                              "The parameter off_session can only be passed when confirm=true.", param="off_session")
        pm_id = params.get("payment_method")
        if pm_id is not None:
            pm = self._resolve_payment_method(account, pm_id)
            if customer and pm["customer"] not in (None, customer):
                raise StripeFault(400, "invalid_request_error",
                                  "The provided PaymentMethod belongs to another Customer.", param="payment_method")
            pm_id = pm["id"]
        automatic = params.get("automatic_payment_methods") or {}
        types = params.get("payment_method_types") or (["card", "link"] if automatic.get("enabled") != "true"
                                                         else ["card", "us_bank_account"])
        intent_id = self.new_id("pi")
        intent = {
            "id": intent_id, "object": "payment_intent", "amount": int(amount), "amount_received": 0,
            "currency": currency, "customer": customer, "description": params.get("description"),
            "metadata": dict(params.get("metadata") or {}), "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}", "payment_method": pm_id,
            "payment_method_types": types, "latest_charge": None, "last_payment_error": None,
            "automatic_payment_methods": {"enabled": True} if automatic.get("enabled") == "true" else None,
            "capture_method": "automatic", "confirmation_method": "automatic", "created": int(time.time()),
            "livemode": False, "_off_session": off_session,
        }
        if pm_id is not None:
            intent["status"] = "requires_confirmation"
        account.kind("payment_intent")[intent_id] = intent
        self._emit("payment_intent.created", intent, account)
        if confirm:
            self._confirm(account, intent, pm_id)
        return Response.json(_public(intent))

    def _confirm(self, account: Account, intent: dict[str, Any], pm_id: str | None) -> None:
        if intent["status"] == "succeeded":
            raise StripeFault(400, "invalid_request_error",
                              "You cannot confirm this PaymentIntent because it has already succeeded after being "
                              "previously confirmed.", code="payment_intent_unexpected_state",
                              payment_intent=_public(intent))
        if not pm_id:
            raise StripeFault(400, "invalid_request_error",
                              "You cannot confirm this PaymentIntent because it's missing a payment method.",
                              code="payment_intent_unexpected_state", param="payment_method")
        pm = self._resolve_payment_method(account, pm_id)
        intent["payment_method"] = pm["id"]
        charge = self.new_id("ch")
        intent["latest_charge"] = charge
        if pm.get("_declines"):
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                "message": "Your card was declined.", "charge": charge, "payment_method": _public(pm),
            }
            self._emit("payment_intent.payment_failed", intent, account)
            raise StripeFault(402, "card_error", "Your card was declined.", code="card_declined",
                              decline_code="generic_decline", charge=charge, payment_intent=_public(intent))
        intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
        self._emit("payment_intent.succeeded", intent, account)

    # -- setup intents ---------------------------------------------------------------------------------
    def _setup_intents(self, method: str, rest: list[str], params: dict[str, Any], account: Account) -> Response:
        intents = account.kind("setup_intent")
        if method == "POST" and not rest:
            customer = params.get("customer")
            if customer is not None and customer not in account.kind("customer"):
                raise missing("customer", customer, "customer")
            types = params.get("payment_method_types") or ["card"]
            unknown = [t for t in types if t not in ("card", "us_bank_account", "link", "sepa_debit")]
            if unknown:
                raise StripeFault(400, "invalid_request_error",
                                  f"The payment method type {unknown[0]!r} is invalid.", param="payment_method_types")
            intent_id = self.new_id("seti")
            intent = {"id": intent_id, "object": "setup_intent", "customer": customer,
                      "status": "requires_payment_method",
                      "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
                      "payment_method_types": types, "usage": params.get("usage", "off_session"),
                      "metadata": dict(params.get("metadata") or {}), "created": int(time.time()), "livemode": False}
            intents[intent_id] = intent
            return Response.json(intent)
        if method == "GET" and len(rest) == 1:
            if rest[0] not in intents:
                raise missing("setup_intent", rest[0], "intent")
            return Response.json(intents[rest[0]])
        raise StripeFault(404, "invalid_request_error", "Unrecognized request URL.")

    # -- lists and events ------------------------------------------------------------------------------
    def _list(self, items: list[dict[str, Any]], params: dict[str, Any], url: str) -> Response:
        try:
            limit = int(params.get("limit", 10))
        except ValueError:
            raise StripeFault(400, "invalid_request_error", "Invalid integer: limit", param="limit") from None
        if not 1 <= limit <= 100:
            raise StripeFault(400, "invalid_request_error",
                              "This value must be greater than or equal to 1 and less than or equal to 100.",
                              param="limit")
        items = list(reversed(items))  # newest first, as Stripe lists
        after = params.get("starting_after")
        if after:
            ids = [i["id"] for i in items]
            if after not in ids:
                raise missing("object", after, "starting_after")
            items = items[ids.index(after) + 1:]
        page = [_public(i) for i in items[:limit]]
        return Response.json({"object": "list", "url": url, "has_more": len(items) > limit, "data": page})

    def _emit(self, type: str, obj: dict[str, Any], account: Account, previous: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        event = {
            "id": self.new_id("evt"), "object": "event", "api_version": API_VERSION, "created": int(time.time()),
            "type": type, "livemode": False, "pending_webhooks": 1,
            "request": self._request or {"id": None, "idempotency_key": None},
            "data": {"object": _public(obj), **({"previous_attributes": previous} if previous else {})},
        }
        if account.platform is not None:
            event["account"] = account.id
        self.events.append(event)
        for endpoint in self.endpoints:
            if endpoint.connect == (account.platform is not None):
                body, headers = self.signed(event, endpoint.secrets)
                threading.Thread(target=_post, args=(endpoint.url, body, headers), daemon=True).start()
        return event


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    import httpx

    try:
        httpx.post(url, content=body, headers=headers, timeout=10)
    except httpx.HTTPError:
        pass  # Stripe would retry for days; the demo's hub may not be up yet


__all__ = ["API_KEY", "CONNECT_WEBHOOK_SECRET", "OWN_ACCOUNT", "PLATFORM_ACCOUNT", "PLATFORM_KEY", "StripeSimulator",
           "WEBHOOK_SECRET", "decode_form", "signature_header"]
