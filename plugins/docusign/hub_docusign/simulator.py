"""A local DocuSign: the account server's OAuth and the eSignature REST API (v2.1) over real HTTP on 127.0.0.1,
and a Connect sender. It follows DocuSign's documented behaviour, strictly:

- OAuth (``/oauth/auth``, ``/oauth/token``, ``/oauth/userinfo``): authorization code grant with PKCE (S256),
  the integration key and secret as HTTP Basic, access tokens for 8 hours, refresh tokens that keep working
  when a refresh hands out a new one, ``invalid_grant`` / ``invalid_client`` as RFC 6749 says. The consent
  page approves by itself (``decision=deny`` says no), so demos and tests connect without a browser.
  ``userinfo`` lists the user's accounts, each with ``account_id``, ``account_name``, ``is_default`` and
  ``base_uri`` (this server): the default account is NOT the first one listed.
- ``/restapi/v2.1/accounts/{accountId}/``: ``envelopes`` (create from documents or from a template with
  template roles, as ``sent`` or ``created`` = draft), ``envelopes/{id}`` (``include=recipients``,
  ``custom_fields``; PUT voids with a ``voidedReason`` or resends with ``resend_envelope=true``),
  ``envelopes/{id}/recipients``, ``envelopes/{id}/documents/combined`` (a real PDF: one page per document with
  its signatures, and the certificate of completion), ``templates`` (paged with ``count`` and
  ``start_position``) and ``templates/{id}``.
- Errors are DocuSign's bodies, ``{"errorCode": ..., "message": ...}``: 401 ``USER_AUTHENTICATION_FAILED``,
  400 ``ENVELOPE_DOES_NOT_EXIST``, ``ENVELOPE_IS_INCOMPLETE``, ``INVALID_EMAIL_ADDRESS_FOR_RECIPIENT``,
  ``TEMPLATE_ID_INVALID``, ``INVALID_REQUEST_PARAMETER``, ``ENVELOPE_CANNOT_VOID_INVALID_STATE`` ...
- Limits per account: 3,000 requests an hour (the hour of the clock) and the 30-second burst (200 in demo,
  500 in production), reported on every answer in ``X-RateLimit-Limit/-Remaining/-Reset`` and
  ``X-BurstLimit-Limit/-Remaining``; beyond them 429 ``HOURLY_APIINVOCATION_LIMIT_EXCEEDED`` /
  ``BURST_APIINVOCATION_LIMIT_EXCEEDED``. A status request (GET of an envelope or its recipients) for the
  same envelope within 15 minutes of the last one counts as a polling violation and, with
  ``enforce_polling`` (the default), is refused: 400 ``HOURLY_ENVELOPE_POLLING_LIMIT_EXCEEDED`` — stricter than
  DocuSign, which publishes the 15-minute rule but not where it starts refusing.
- Connect (envelope-level ``eventNotification``, JSON SIM format): each envelope and recipient event the
  envelope subscribed to is queued in ``connect_outbox`` as a message signed like DocuSign signs it: one
  ``X-DocuSign-Signature-N`` header per active HMAC key (base64 HMAC-SHA256 of the raw body, the key as UTF-8).
  ``send_connect()`` posts the queued messages to their URLs; with ``requireAcknowledgment`` a message not
  answered 200 is queued again with ``retryCount`` + 1 (a new body, so a new signature). ``walk()`` moves an
  envelope through delivered to completed or declined, as its signers would.

Used by the plugin's tests and for demos: ``with DocuSignSimulator() as ds: ds.url``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from hub.testing.simulator import Fault, Request, Response, Simulator, TokenStore
from hub_docusign.pdf import make_pdf

CLIENT_ID = "ds-sim-integration-key-0f6c"
CLIENT_SECRET = "ds-sim-secret-key-do-not-log-2b41"
HMAC_KEY = "ds-sim-connect-hmac-key-one-Jx9Qm3Vb7Lr2Tw8Zp4Ns6Kd1Hf5Ya0="
SECOND_HMAC_KEY = "ds-sim-connect-hmac-key-two-Qe3Wr7Ty1Ui5Op9As2Df6Gh0Jk4Lz8="
USER_ID = "4799e5e9-1559-4915-9862-cf4713bbcacc"
ACCOUNT_ID = "a4ec37d6-04d6-4a8e-9d1c-143885c1e7d2"
"""The user's default account: the one a connection must pick."""
OTHER_ACCOUNT_ID = "0cd1e2f3-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
"""Another account of the same user, listed first in userinfo but not the default."""
ACCESS_TTL = 8 * 3600
REFRESH_TTL = 30 * 24 * 3600
HOURLY_LIMIT = 3000
BURST_LIMITS = {"demo": 200, "production": 500}
BURST_WINDOW = 30.0
POLL_INTERVAL = 15 * 60
MAX_SUBJECT = 100
ENVELOPE_EVENTS = ("envelope-created", "envelope-sent", "envelope-resent", "envelope-delivered",
                   "envelope-completed", "envelope-declined", "envelope-voided")
RECIPIENT_EVENTS = ("recipient-sent", "recipient-resent", "recipient-delivered", "recipient-completed",
                    "recipient-declined", "recipient-autoresponded")
_API = re.compile(r"^/restapi/v2\.1/accounts/(?P<account>[^/]+)(?P<rest>/.*)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status, b"", headers or {})
    return Response.json(body, status, headers, content_type="application/json; charset=utf-8")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _reply(status, {"errorCode": code, "message": message}, headers)


def sign(key: str, body: bytes) -> str:
    """What Connect puts in ``X-DocuSign-Signature-N`` for one HMAC key."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Template:
    template_id: str
    name: str
    description: str
    roles: list[str]
    documents: list[dict[str, Any]]
    created: str


@dataclass
class Envelope:
    envelope_id: str
    account_id: str
    status: str
    subject: str
    blurb: str
    documents: list[dict[str, Any]]
    signers: list[dict[str, Any]]
    custom_fields: list[dict[str, str]]
    event_notification: dict[str, Any] | None
    template_id: str | None
    times: dict[str, str] = field(default_factory=dict)
    voided_reason: str | None = None


@dataclass
class Account:
    account_id: str
    name: str
    is_default: bool
    envelopes: dict[str, Envelope] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    hourly: dict[int, int] = field(default_factory=dict)
    """Requests per clock hour (epoch hour number)."""
    burst: deque[float] = field(default_factory=deque)


@dataclass
class ConnectMessage:
    url: str
    envelope_id: str
    event: str
    payload: dict[str, Any]
    hmac: bool
    require_ack: bool
    keys: tuple[str, ...]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seal()

    def seal(self) -> None:
        """Serialize and sign the payload as it stands (its ``retryCount`` included)."""
        self.body = json.dumps(self.payload, separators=(",", ":")).encode()
        self.headers = {"Content-Type": "application/json"}
        if self.hmac:
            self.headers["X-Authorization-Digest"] = "HMACSHA256"
            for n, key in enumerate(self.keys, start=1):
                self.headers[f"X-DocuSign-Signature-{n}"] = sign(key, self.body)

    def retried(self) -> ConnectMessage:
        payload = copy.deepcopy(self.payload)
        payload["retryCount"] = int(payload.get("retryCount") or 0) + 1
        return ConnectMessage(self.url, self.envelope_id, self.event, payload, self.hmac, self.require_ack,
                              self.keys)


class DocuSignSimulator(Simulator):
    """``with DocuSignSimulator() as ds:`` serves DocuSign on ``ds.url`` until the block ends.

    ``hmac_keys`` are the account's active Connect keys (one or two while one is replaced); ``environment``
    ("demo" or "production") sets the burst limit. The fault switches of ``hub.testing.simulator.Simulator``
    work too, answering in DocuSign's error shape.
    """

    def __init__(self, *, hmac_keys: tuple[str, ...] | list[str] = (HMAC_KEY,), environment: str = "demo",
                 port: int = 0, redirect_uris: list[str] | None = None, auto_connect: bool = False,
                 retry_seconds: float = 5.0) -> None:
        super().__init__(port=port)
        self.auto_connect = auto_connect
        """Post Connect messages from a thread of the simulator as they happen (a running hub: demos), retrying
        unacknowledged ones every ``retry_seconds``; off, they wait in ``connect_outbox`` for the test."""
        self.retry_seconds = retry_seconds
        self._connect_wake = threading.Event()
        self._connect_stop = threading.Event()
        self._connect_thread: threading.Thread | None = None
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.redirect_uris = redirect_uris
        """The integration key's registered redirect URIs (None: any, which a local demo needs)."""
        self.hmac_keys = list(hmac_keys)
        self.tokens = TokenStore()
        self.codes: dict[str, dict[str, str | None]] = {}
        self.refresh_tokens: dict[str, float] = {}  # refresh token -> expiry
        self.issued: list[str] = []
        """Every token and code handed out (for the suite's look for secrets in logs)."""
        self.hourly_limit = HOURLY_LIMIT
        self.burst_limit = BURST_LIMITS[environment]
        self.enforce_polling = True
        self.polling_violations = 0
        self.clock_offset = 0.0
        """Seconds added to the real time (``advance()``): polling windows, hours, timestamps."""
        self.connect_outbox: list[ConnectMessage] = []
        self.connect_log: list[tuple[ConnectMessage, int | None]] = []
        """Every Connect message sent by ``send_connect`` and the status it got (None: unreachable)."""
        self._last_poll: dict[str, float] = {}
        self._downloads: dict[str, int] = {}
        self.accounts: dict[str, Account] = {}
        for account_id, name, default in ((OTHER_ACCOUNT_ID, "Sandbox Side Account", False),
                                          (ACCOUNT_ID, "Ross Construction Demo", True)):
            self.accounts[account_id] = Account(account_id, name, default)
        self.add_template("Standard construction contract", roles=["Client", "Contractor"],
                          description="Fixed-price contract with the owner's and the contractor's signatures")
        self.add_template("Change order", roles=["Client"], description="A change order for client approval")

    # -- time ------------------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.clock_offset

    def stamp(self) -> str:
        """DocuSign's date-time format: UTC with seven fractional digits."""
        return datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")

    def advance(self, seconds: float) -> None:
        """Move DocuSign's clock on (a polling window passes, the hour turns)."""
        with self.lock:
            self.clock_offset += seconds

    # -- the DocuSign web app side, for tests ------------------------------------------------------------
    def account(self, account_id: str = ACCOUNT_ID) -> Account:
        return self.accounts[account_id]

    def make_default(self, account_id: str) -> None:
        """The user switches their default account (the next connection reaches that one)."""
        with self.lock:
            for account in self.accounts.values():
                account.is_default = account.account_id == account_id

    def add_template(self, name: str, *, roles: list[str], description: str = "",
                     account_id: str = ACCOUNT_ID) -> str:
        template_id = str(uuid.uuid4())
        with self.lock:
            self.account(account_id).templates[template_id] = Template(
                template_id, name, description, roles,
                [{"documentId": "1", "name": f"{name}.pdf", "fileExtension": "pdf",
                  "content": make_pdf([[name, "", *(f"{role}: ____________________" for role in roles)]],
                                      title=name)}],
                self.stamp())
        return template_id

    def envelope(self, envelope_id: str, account_id: str = ACCOUNT_ID) -> Envelope:
        return self.account(account_id).envelopes[envelope_id]

    def downloads(self, envelope_id: str) -> int:
        """How many times the combined document of an envelope was downloaded."""
        with self.lock:
            return self._downloads.get(envelope_id, 0)

    def deliver(self, envelope_id: str, recipient_id: str | None = None) -> None:
        """A signer opens the envelope (the first signer whose turn it is, unless named)."""
        with self.lock:
            env = self._find(envelope_id)
            signer = self._signer(env, recipient_id)
            if signer["status"] != "sent":
                raise ValueError(f"signer {signer['recipientId']} is {signer['status']}, not sent")
            signer["status"], signer["deliveredDateTime"] = "delivered", self.stamp()
            self._emit(env, "recipient-delivered", signer)
            if env.status == "sent":
                self._set_status(env, "delivered")

    def sign(self, envelope_id: str, recipient_id: str | None = None) -> None:
        """A signer signs (opening it first if they had not); the last signature completes the envelope."""
        with self.lock:
            env = self._find(envelope_id)
            signer = self._signer(env, recipient_id)
            if signer["status"] == "sent":
                self.deliver(envelope_id, signer["recipientId"])
            signer["status"], signer["signedDateTime"] = "completed", self.stamp()
            self._emit(env, "recipient-completed", signer)
            if all(s["status"] == "completed" for s in env.signers):
                self._set_status(env, "completed")
            else:
                self._route(env)

    def decline(self, envelope_id: str, recipient_id: str | None = None, reason: str = "I do not agree") -> None:
        with self.lock:
            env = self._find(envelope_id)
            signer = self._signer(env, recipient_id)
            if signer["status"] == "sent":
                self.deliver(envelope_id, signer["recipientId"])
            signer.update(status="declined", declinedDateTime=self.stamp(), declinedReason=reason)
            self._emit(env, "recipient-declined", signer)
            self._set_status(env, "declined")

    def walk(self, envelope_id: str, to: str = "completed") -> None:
        """Every signer opens and signs in routing order (``to="completed"``), or the first one declines."""
        if to not in ("completed", "declined"):
            raise ValueError("walk() goes to 'completed' or 'declined'")
        with self.lock:
            env = self._find(envelope_id)
            if env.status not in ("sent", "delivered"):
                raise ValueError(f"envelope {envelope_id} is {env.status}")
            if to == "declined":
                self.decline(envelope_id)
                return
            while env.status != "completed":
                self.sign(envelope_id)

    # -- Connect -------------------------------------------------------------------------------------------
    def take_connect(self) -> list[ConnectMessage]:
        """The queued Connect messages, oldest first; the queue is emptied."""
        with self.lock:
            taken, self.connect_outbox = self.connect_outbox, []
            return taken

    def acknowledge(self, message: ConnectMessage, status: int | None) -> None:
        """What the listener answered: anything but 200 queues a retry when acknowledgement is required."""
        with self.lock:
            self.connect_log.append((message, status))
            if status != 200 and message.require_ack:
                self.connect_outbox.append(message.retried())

    def send_connect(self, timeout: float = 10.0) -> list[int | None]:
        """POST every queued Connect message to its URL (a 127.0.0.1 hub, in tests and demos)."""
        import httpx

        statuses: list[int | None] = []
        for message in self.take_connect():
            try:
                status: int | None = httpx.post(message.url, content=message.body, headers=message.headers,
                                                timeout=timeout).status_code
            except httpx.HTTPError:
                status = None
            self.acknowledge(message, status)
            statuses.append(status)
        return statuses

    def start(self) -> None:
        super().start()
        if self.auto_connect:
            self._connect_thread = threading.Thread(target=self._connect_loop, daemon=True)
            self._connect_thread.start()

    def stop(self) -> None:
        self._connect_stop.set()
        self._connect_wake.set()
        if self._connect_thread is not None:
            self._connect_thread.join(timeout=15)
        super().stop()

    def _connect_loop(self) -> None:
        while not self._connect_stop.is_set():
            self._connect_wake.wait(timeout=self.retry_seconds)
            self._connect_wake.clear()
            if not self._connect_stop.is_set():
                self.send_connect()

    # -- serving -----------------------------------------------------------------------------------------
    def fault_response(self, request: Request, fault: Fault) -> Response:
        status = fault.status or 500
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if status == 429:
            return _error(429, "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
                          f"The maximum number of hourly API invocations has been exceeded. The hourly limit is "
                          f"{self.hourly_limit}.", headers | self._limit_headers(None))
        return _error(status, "UNSPECIFIED_ERROR", "An unexpected error occurred (simulated).", headers)

    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/oauth/auth" and method == "GET":
            return self._authorize(request.query)
        if path == "/oauth/token" and method == "POST":
            return self._token(request)
        if path == "/oauth/userinfo" and method == "GET":
            return self._userinfo(request)
        match = _API.match(path)
        if not match:
            return _error(404, "RESOURCE_NOT_FOUND", "The URL provided does not resolve to a resource.")
        return self._api(request, match["account"], match["rest"] or "/")

    # -- OAuth ---------------------------------------------------------------------------------------------
    def _authorize(self, query: dict[str, str]) -> Response:
        if query.get("client_id") != self.client_id:
            return Response(400, b"<html><body>The client id provided is not registered with Docusign."
                                 b"</body></html>", {"Content-Type": "text/html"})
        redirect = query.get("redirect_uri", "")
        if not redirect or (self.redirect_uris is not None and redirect not in self.redirect_uris):
            return Response(400, b"<html><body>The redirect URI is not registered properly with Docusign."
                                 b"</body></html>", {"Content-Type": "text/html"})
        if query.get("response_type") != "code":
            params = {"error": "unsupported_response_type", "state": query.get("state", "")}
        elif query.get("decision") == "deny":
            params = {"error": "access_denied", "state": query.get("state", "")}
        elif query.get("code_challenge") and query.get("code_challenge_method") != "S256":
            params = {"error": "invalid_request", "state": query.get("state", "")}
        else:
            code = "eyJ0eXAiOiJNVCIsImFsZyI6IlJTMjU2In0." + secrets.token_urlsafe(32)
            with self.lock:
                self.codes[code] = {"redirect_uri": redirect, "challenge": query.get("code_challenge")}
                self.issued.append(code)
            params = {"code": code, "state": query.get("state", "")}
        separator = "&" if "?" in redirect else "?"
        return Response.redirect(f"{redirect}{separator}{urlencode(params)}")

    def _client_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        try:
            given = base64.b64decode(header[6:]).decode() if header.lower().startswith("basic ") else ""
        except ValueError:
            return False
        return hmac.compare_digest(given.encode(), f"{self.client_id}:{self.client_secret}".encode())

    def _token(self, request: Request) -> Response:
        if not self._client_ok(request):
            return _reply(401, {"error": "invalid_client"})
        form = request.form()
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                issued = self.codes.pop(form.get("code", ""), None)  # a code works once
                if issued is None or issued["redirect_uri"] != form.get("redirect_uri"):
                    return _reply(400, {"error": "invalid_grant"})
                challenge = issued["challenge"]
                if challenge:
                    verifier = form.get("code_verifier", "")
                    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
                    if not verifier or computed.rstrip("=") != challenge:
                        return _reply(400, {"error": "invalid_grant"})
            elif grant == "refresh_token":
                expiry = self.refresh_tokens.get(form.get("refresh_token", ""))
                if expiry is None or expiry < self.now():
                    return _reply(400, {"error": "invalid_grant"})
            else:
                return _reply(400, {"error": "unsupported_grant_type"})
            access = "eyJ0eXAiOiJNVCIsImFsZyI6IlJTMjU2In0." + secrets.token_urlsafe(48)
            refresh = "eyJ0eXAiOiJNVCIsImFsZyI6IlJTMjU2In0.R" + secrets.token_urlsafe(48)
            self.tokens.issue(access, USER_ID, ACCESS_TTL)
            self.refresh_tokens[refresh] = self.now() + REFRESH_TTL
            self.issued += [access, refresh]
        return _reply(200, {"access_token": access, "token_type": "Bearer", "refresh_token": refresh,
                            "expires_in": ACCESS_TTL})

    def _userinfo(self, request: Request) -> Response:
        if self.tokens.owner(request.bearer) != USER_ID:
            return _reply(401, {"error": "invalid_request", "error_description": "Invalid access token"})
        return _reply(200, {
            "sub": USER_ID, "name": "Riley Ross", "given_name": "Riley", "family_name": "Ross",
            "created": "2024-08-13T22:03:03.45", "email": "riley.ross@example.com",
            "accounts": [{"account_id": a.account_id, "is_default": a.is_default, "account_name": a.name,
                          "base_uri": self.url} for a in self.accounts.values()],
        })

    # -- limits --------------------------------------------------------------------------------------------
    def _limit_headers(self, account: Account | None) -> dict[str, str]:
        now = self.now()
        hour = int(now // 3600)
        used = account.hourly.get(hour, 0) if account else self.hourly_limit
        burst_used = len(account.burst) if account else self.burst_limit
        return {"X-RateLimit-Limit": str(self.hourly_limit),
                "X-RateLimit-Remaining": str(max(0, self.hourly_limit - used)),
                "X-RateLimit-Reset": str((hour + 1) * 3600),
                "X-BurstLimit-Limit": str(self.burst_limit),
                "X-BurstLimit-Remaining": str(max(0, self.burst_limit - burst_used))}

    def _admit(self, account: Account) -> None:
        """Count the request against the hour and the 30-second burst, or refuse it (429)."""
        now = self.now()
        hour = int(now // 3600)
        while account.burst and account.burst[0] <= now - BURST_WINDOW:
            account.burst.popleft()
        if account.hourly.get(hour, 0) >= self.hourly_limit:
            raise ApiError(429, "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
                           f"The maximum number of hourly API invocations has been exceeded. The hourly limit is "
                           f"{self.hourly_limit}.", self._limit_headers(account))
        if len(account.burst) >= self.burst_limit:
            raise ApiError(429, "BURST_APIINVOCATION_LIMIT_EXCEEDED",
                           f"The maximum number of API invocations in a 30 second burst has been exceeded. The "
                           f"burst limit is {self.burst_limit}.", self._limit_headers(account))
        account.hourly[hour] = account.hourly.get(hour, 0) + 1
        account.burst.append(now)

    def _poll(self, env: Envelope) -> None:
        """A status request: at most one per envelope per 15 minutes."""
        now = self.now()
        last = self._last_poll.get(env.envelope_id)
        if last is not None and now - last < POLL_INTERVAL:
            self.polling_violations += 1
            if self.enforce_polling:
                raise ApiError(400, "HOURLY_ENVELOPE_POLLING_LIMIT_EXCEEDED",
                               "The maximum number of hourly polling requests for this envelope has been "
                               "exceeded. Poll an envelope at most once every 15 minutes; use Connect.")
        self._last_poll[env.envelope_id] = now

    # -- the eSignature API --------------------------------------------------------------------------------
    def _api(self, request: Request, account_id: str, rest: str) -> Response:
        if self.tokens.owner(request.bearer) != USER_ID:
            return _error(401, "USER_AUTHENTICATION_FAILED",
                          "One or both of Username and Password are invalid. Invalid access token")
        with self.lock:
            account = self.accounts.get(account_id)
            if account is None:
                return _error(400, "USER_DOES_NOT_BELONG_TO_SPECIFIED_ACCOUNT",
                              "The specified User is not a member of the specified Account.")
            try:
                self._admit(account)
                response = self._serve(account, request, rest.rstrip("/") or "/")
            except ApiError as exc:
                response = _error(exc.status, exc.code, exc.message, exc.headers)
            for name, value in self._limit_headers(account).items():
                response.headers.setdefault(name, value)
            return response

    def _serve(self, account: Account, request: Request, rest: str) -> Response:
        method, query = request.method, request.query
        parts = rest.strip("/").split("/")
        if parts == ["envelopes"] and method == "POST":
            return _reply(201, self._create(account, self._body(request)))
        if parts[0] == "envelopes" and len(parts) >= 2:
            env = account.envelopes.get(parts[1])
            if env is None:
                raise ApiError(400, "ENVELOPE_DOES_NOT_EXIST",
                               "The envelope specified either does not exist or you have no rights to it.")
            tail = parts[2:]
            if not tail and method == "GET":
                self._poll(env)
                return _reply(200, self._envelope_json(env, set(query.get("include", "").split(","))))
            if not tail and method == "PUT":
                return _reply(200, self._update(env, self._body(request), query))
            if tail == ["recipients"] and method == "GET":
                self._poll(env)
                return _reply(200, self._recipients_json(env))
            if tail == ["documents", "combined"] and method == "GET":
                self._downloads[env.envelope_id] = self._downloads.get(env.envelope_id, 0) + 1
                return Response(200, self._combined(env), {
                    "Content-Type": "application/pdf",
                    "Content-Disposition": f'file; filename="{env.envelope_id}.pdf"'})
        if parts == ["templates"] and method == "GET":
            return _reply(200, self._templates(account, query))
        if parts[0] == "templates" and len(parts) == 2 and method == "GET":
            template = account.templates.get(parts[1])
            if template is None:
                raise ApiError(400, "TEMPLATE_ID_INVALID", "Invalid template ID.")
            return _reply(200, self._template_json(template))
        raise ApiError(404, "RESOURCE_NOT_FOUND", "The URL provided does not resolve to a resource.")

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_REQUEST_BODY", "The request body is missing or improperly formatted.")
        return body

    # -- envelopes -----------------------------------------------------------------------------------------
    def _create(self, account: Account, body: dict[str, Any]) -> dict[str, Any]:
        status = str(body.get("status") or "created").lower()
        if status not in ("sent", "created"):
            raise ApiError(400, "ENVELOPE_INVALID_STATUS", f"Invalid envelope status: {status}.")
        subject = str(body.get("emailSubject") or "")
        if len(subject) > MAX_SUBJECT:
            raise ApiError(400, "INVALID_REQUEST_PARAMETER",
                           f"The request contained at least one invalid parameter. The email subject exceeds "
                           f"{MAX_SUBJECT} characters.")
        template_id = body.get("templateId")
        if template_id:
            template = account.templates.get(str(template_id))
            if template is None:
                raise ApiError(400, "TEMPLATE_ID_INVALID", "Invalid template ID.")
            documents = copy.deepcopy(template.documents)
            signers = self._template_signers(template, body.get("templateRoles") or [])
            subject = subject or template.name
        else:
            documents = self._documents(body.get("documents") or [])
            signers = self._signers(((body.get("recipients") or {}).get("signers")) or [])
        if status == "sent" and (not documents or not signers or not subject):
            raise ApiError(400, "ENVELOPE_IS_INCOMPLETE", "The Envelope is not Complete. A Complete Envelope "
                           "Requires Documents, Recipients, Tabs, and a Subject Line.")
        notification = body.get("eventNotification")
        if notification is not None and (not isinstance(notification, dict) or not notification.get("url")):
            raise ApiError(400, "INVALID_REQUEST_PARAMETER",
                           "The request contained at least one invalid parameter. eventNotification.url is required.")
        custom = [{"name": str(f.get("name")), "value": str(f.get("value", ""))}
                  for f in ((body.get("customFields") or {}).get("textCustomFields") or []) if isinstance(f, dict)]
        env = Envelope(str(uuid.uuid4()), account.account_id, "created", subject, str(body.get("emailBlurb") or ""),
                       documents, signers, custom, notification, str(template_id) if template_id else None)
        env.times["createdDateTime"] = self.stamp()
        account.envelopes[env.envelope_id] = env
        if status == "sent":
            self._send(env)
        else:
            self._emit(env, "envelope-created")
        return {"envelopeId": env.envelope_id, "uri": f"/envelopes/{env.envelope_id}",
                "statusDateTime": env.times.get("statusChangedDateTime", env.times["createdDateTime"]),
                "status": env.status}

    def _documents(self, documents: Any) -> list[dict[str, Any]]:
        out = []
        for doc in documents if isinstance(documents, list) else []:
            if not isinstance(doc, dict) or not doc.get("documentId") or not doc.get("name"):
                raise ApiError(400, "INVALID_REQUEST_PARAMETER",
                               "The request contained at least one invalid parameter. A document needs a "
                               "documentId and a name.")
            try:
                content = base64.b64decode(str(doc.get("documentBase64") or ""), validate=True)
            except ValueError:
                content = b""
            extension = str(doc.get("fileExtension") or "pdf").lower()
            if not content or (extension == "pdf" and not content.startswith(b"%PDF-")):
                raise ApiError(400, "FORMAT_CONVERSION_ERROR", "The data could not be converted.")
            if any(d["documentId"] == str(doc["documentId"]) for d in out):
                raise ApiError(400, "DUPLICATE_DOCUMENT_ID", "Duplicate document ID.")
            out.append({"documentId": str(doc["documentId"]), "name": str(doc["name"]), "fileExtension": extension,
                        "content": content})
        return out

    def _signers(self, signers: Any, role_names: list[str] | None = None) -> list[dict[str, Any]]:
        out = []
        for n, signer in enumerate(signers if isinstance(signers, list) else [], start=1):
            if not isinstance(signer, dict):
                raise ApiError(400, "INVALID_REQUEST_BODY", "The request body is missing or improperly formatted.")
            recipient_id = str(signer.get("recipientId") or n)
            if not _EMAIL.match(str(signer.get("email") or "")):
                raise ApiError(400, "INVALID_EMAIL_ADDRESS_FOR_RECIPIENT",
                               f"The email address for the recipient is invalid. The recipient Id follows. "
                               f"{recipient_id}")
            if not str(signer.get("name") or "").strip():
                raise ApiError(400, "INVALID_USERNAME_FOR_RECIPIENT",
                               f"The user name for the recipient is invalid. The recipient Id follows. {recipient_id}")
            try:
                routing = int(signer.get("routingOrder") or 1)
            except (TypeError, ValueError):
                raise ApiError(400, "INVALID_REQUEST_PARAMETER", "The request contained at least one invalid "
                               "parameter. routingOrder must be an integer.") from None
            out.append({"recipientId": recipient_id, "recipientIdGuid": str(uuid.uuid4()),
                        "email": str(signer["email"]), "name": str(signer["name"]), "routingOrder": str(routing),
                        "roleName": signer.get("roleName") or (role_names[n - 1] if role_names else None),
                        "status": "created", "tabs": signer.get("tabs") or {}})
        return out

    def _template_signers(self, template: Template, roles: Any) -> list[dict[str, Any]]:
        given = {str(r.get("roleName")): r for r in roles if isinstance(r, dict)} if isinstance(roles, list) else {}
        filled = [dict(given[name], recipientId=str(n), routingOrder=given[name].get("routingOrder") or n,
                       roleName=name) for n, name in enumerate(template.roles, start=1) if name in given]
        if len(filled) != len(template.roles):
            missing = [name for name in template.roles if name not in given]
            raise ApiError(400, "ENVELOPE_IS_INCOMPLETE", f"The Envelope is not Complete. A Complete Envelope "
                           f"Requires Documents, Recipients, Tabs, and a Subject Line. Missing roles: {missing}")
        return self._signers(filled)

    def _find(self, envelope_id: str) -> Envelope:
        for account in self.accounts.values():
            if envelope_id in account.envelopes:
                return account.envelopes[envelope_id]
        raise KeyError(envelope_id)

    @staticmethod
    def _signer(env: Envelope, recipient_id: str | None) -> dict[str, Any]:
        if recipient_id is not None:
            return next(s for s in env.signers if s["recipientId"] == recipient_id)
        current = [s for s in env.signers if s["status"] in ("sent", "delivered")]
        if not current:
            raise ValueError(f"no signer of envelope {env.envelope_id} has it to sign")
        return current[0]

    def _send(self, env: Envelope) -> None:
        self._set_status(env, "sent")
        self._route(env)

    def _route(self, env: Envelope) -> None:
        """Send the envelope to the next routing order's signers once everyone before them has signed."""
        waiting = [s for s in env.signers if s["status"] == "created"]
        if not waiting or any(s["status"] in ("sent", "delivered") for s in env.signers):
            return
        order = min(int(s["routingOrder"]) for s in waiting)
        for signer in waiting:
            if int(signer["routingOrder"]) == order:
                signer["status"], signer["sentDateTime"] = "sent", self.stamp()
                self._emit(env, "recipient-sent", signer)

    def _set_status(self, env: Envelope, status: str) -> None:
        env.status = status
        now = self.stamp()
        env.times[f"{status}DateTime"] = now
        env.times["statusChangedDateTime"] = now
        self._emit(env, f"envelope-{status}")

    def _update(self, env: Envelope, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        if query.get("resend_envelope", "").lower() == "true":
            if env.status not in ("sent", "delivered"):
                raise ApiError(400, "ENVELOPE_INVALID_STATUS", "Invalid envelope status: only an envelope that is "
                               "sent or delivered can be resent.")
            self._emit(env, "envelope-resent")
            for signer in env.signers:
                if signer["status"] in ("sent", "delivered"):
                    self._emit(env, "recipient-resent", signer)
            return {"envelopeId": env.envelope_id}
        if str(body.get("status") or "").lower() == "voided":
            if not str(body.get("voidedReason") or "").strip():
                raise ApiError(400, "INVALID_REQUEST_PARAMETER", "The request contained at least one invalid "
                               "parameter. Value for 'voidedReason' must be specified when voiding an envelope.")
            if env.status not in ("sent", "delivered"):
                raise ApiError(400, "ENVELOPE_CANNOT_VOID_INVALID_STATE",
                               "Only envelopes in the 'Sent' or 'Delivered' states may be voided.")
            env.voided_reason = str(body["voidedReason"])[:200]
            self._set_status(env, "voided")
            return {"envelopeId": env.envelope_id}
        raise ApiError(400, "INVALID_REQUEST_PARAMETER",
                       "The request contained at least one invalid parameter. Nothing to update.")

    # -- shapes ------------------------------------------------------------------------------------------------
    def _recipients_json(self, env: Envelope) -> dict[str, Any]:
        signers = [{k: v for k, v in s.items() if k != "tabs" and v is not None} for s in env.signers]
        return {"signers": signers, "agents": [], "editors": [], "intermediaries": [], "carbonCopies": [],
                "certifiedDeliveries": [], "inPersonSigners": [], "seals": [], "witnesses": [],
                "recipientCount": str(len(signers))}

    def _envelope_json(self, env: Envelope, include: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "envelopeId": env.envelope_id, "status": env.status, "emailSubject": env.subject,
            "emailBlurb": env.blurb, "envelopeUri": f"/envelopes/{env.envelope_id}",
            "documentsCombinedUri": f"/envelopes/{env.envelope_id}/documents/combined",
            **env.times,
        }
        if env.template_id:
            out["templateId"] = env.template_id
        if env.voided_reason:
            out["voidedReason"] = env.voided_reason
        if "recipients" in include:
            out["recipients"] = self._recipients_json(env)
        if "custom_fields" in include:
            out["customFields"] = {"textCustomFields": [dict(f, show="false", required="false")
                                                        for f in env.custom_fields], "listCustomFields": []}
        return out

    def _template_json(self, template: Template) -> dict[str, Any]:
        return {"templateId": template.template_id, "name": template.name, "description": template.description,
                "shared": "false", "created": template.created, "lastModified": template.created,
                "recipients": {"signers": [{"roleName": role, "recipientId": str(n), "routingOrder": str(n)}
                                           for n, role in enumerate(template.roles, start=1)]}}

    def _templates(self, account: Account, query: dict[str, str]) -> dict[str, Any]:
        try:
            count = max(1, min(int(query.get("count") or 2000), 2000))
            start = max(0, int(query.get("start_position") or 0))
        except ValueError:
            raise ApiError(400, "INVALID_REQUEST_PARAMETER", "The request contained at least one invalid "
                           "parameter. count and start_position are integers.") from None
        templates = sorted(account.templates.values(), key=lambda t: (t.name, t.template_id))
        page = templates[start:start + count]
        include_recipients = "recipients" in query.get("include", "")
        rows = []
        for template in page:
            row = self._template_json(template)
            if not include_recipients:
                row.pop("recipients")
            rows.append(row)
        out: dict[str, Any] = {"resultSetSize": str(len(page)), "startPosition": str(start),
                               "endPosition": str(start + max(len(page) - 1, 0)),
                               "totalSetSize": str(len(templates)), "envelopeTemplates": rows}
        if start + len(page) < len(templates):
            out["nextUri"] = f"/templates?start_position={start + len(page)}&count={count}"
        return out

    def _combined(self, env: Envelope) -> bytes:
        pages = []
        for doc in env.documents:
            lines = [f"{doc['name']}", f"Envelope {env.envelope_id}", f"Subject: {env.subject}", ""]
            for signer in env.signers:
                if signer["status"] == "completed":
                    lines.append(f"Signed by {signer['name']} <{signer['email']}> at {signer.get('signedDateTime')}")
                else:
                    lines.append(f"Awaiting {signer['name']} <{signer['email']}> ({signer['status']})")
            pages.append(lines)
        pages.append(["Certificate of Completion", f"Envelope {env.envelope_id}", f"Status: {env.status}",
                      *(f"{s['name']} <{s['email']}>: {s['status']}" for s in env.signers)])
        return make_pdf(pages, title=env.subject)

    # -- Connect messages --------------------------------------------------------------------------------------
    def _emit(self, env: Envelope, event: str, signer: dict[str, Any] | None = None) -> None:
        notification = env.event_notification
        if not notification:
            return
        events = [str(e).lower() for e in notification.get("events") or []]
        if event not in events:
            return
        event_data = notification.get("eventData") or {}
        include = {str(i) for i in event_data.get("includeData") or []}
        summary = self._envelope_json(env, {"recipients", "custom_fields"} & include)
        data: dict[str, Any] = {"accountId": env.account_id, "userId": USER_ID, "envelopeId": env.envelope_id}
        if signer is not None:
            data["recipientId"] = signer["recipientId"]
        data["envelopeSummary"] = summary
        payload = {"event": event, "apiVersion": "v2.1",
                   "uri": f"/restapi/v2.1/accounts/{env.account_id}/envelopes/{env.envelope_id}",
                   "retryCount": 0, "configurationId": 0, "generatedDateTime": self.stamp(), "data": data}
        self.connect_outbox.append(ConnectMessage(
            url=str(notification["url"]), envelope_id=env.envelope_id, event=event, payload=payload,
            hmac=_true(notification.get("includeHMAC")), require_ack=_true(notification.get("requireAcknowledgment")),
            keys=tuple(self.hmac_keys)))
        if self.auto_connect:
            self._connect_wake.set()


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def connect_path(message: ConnectMessage) -> str:
    """The path (and query) of a Connect message's URL: where a test posts it to the app under test."""
    parts = urlsplit(message.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


__all__ = ["ACCOUNT_ID", "CLIENT_ID", "CLIENT_SECRET", "ConnectMessage", "DocuSignSimulator", "HMAC_KEY",
           "OTHER_ACCOUNT_ID", "SECOND_HMAC_KEY", "connect_path", "sign"]
