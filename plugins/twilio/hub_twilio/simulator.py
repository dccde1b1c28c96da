"""A local Twilio REST API (the part the hub uses), written from Twilio's documentation:

- ``GET /2010-04-01/Accounts/{AccountSid}.json`` — the account (HTTP Basic: Account SID + Auth Token, or API
  key SID + secret; a wrong one is 401 with error 20003).
- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` — form ``To``, ``From`` or ``MessagingServiceSid``,
  ``Body``, ``MediaUrl`` (repeated), ``StatusCallback``: 201 and the message (``queued``; ``accepted`` through a
  Messaging Service, which picks the sender). Twilio's errors in Twilio's JSON shape (``code``, ``message``,
  ``more_info``, ``status``): 21211 for an invalid ``To``, 21610 for a recipient who replied STOP, 21602 without
  a body or media, 21604 without ``To``, 21603/21606 without or with an unknown sender, 21703 for an unknown
  Messaging Service; and Twilio's magic test numbers (+15005550001 invalid, +15005550004 opted out ...).
- ``GET .../Messages/{Sid}.json`` and ``GET .../Messages.json`` (``To``, ``From``, ``DateSent`` filters;
  ``PageSize`` and ``PageToken`` paging with ``next_page_uri``), 404 with error 20404.
- 429 with error 20429 for a request past a sender's messages per second (``messages_per_second``, the same
  for every sender; a Messaging Service sends from any of its numbers that is free) or past the account's
  concurrent requests (``max_concurrency``).

It also plays Twilio's side of webhooks: ``inbound_message`` and ``status_callback`` build the form POST
Twilio would make, signed with ``X-Twilio-Signature`` (HMAC-SHA1 of the URL and the sorted parameters,
keyed with the Auth Token); ``json_webhook`` signs a JSON body the way Twilio does (``bodySHA256`` in the URL).
An inbound STOP (or START) also changes the simulator's own opt-out list, as Twilio's Advanced Opt-Out does.
With ``auto_deliver`` every message with a ``StatusCallback`` is reported ``sent`` then ``delivered`` to
it, over real HTTP, as Twilio would (``callback_base`` replaces the scheme and host the hub's public URL
names, like a reverse proxy in front of it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from hub.testing.simulator import Fault, Request, Response, Simulator

ACCOUNT_SID = "AC" + "5a" * 16
AUTH_TOKEN = "twilio-sim-auth-token-" + "0" * 10
API_KEY_SID = "SK" + "5b" * 16
API_KEY_SECRET = "twilio-sim-api-key-secret-000"
PHONE_NUMBER = "+15017122661"
MESSAGING_SERVICE_SID = "MG" + "5c" * 16
SERVICE_NUMBERS = ("+15017120001", "+15017120002", "+15017120003")
API = "/2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region indicated by the "
                            "'To' number: +15005550003."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
LOST = Response(599)
"""A message created whose answer is lost on the way back."""
OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN = {"START", "YES", "UNSTOP"}


def signature(token: str, url: str, params: dict[str, list[str]] | None) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL, then each parameter name sorted with
    its values sorted (duplicates once), keyed with the Auth Token. Written from Twilio's documentation,
    independently of the SDK the plugin verifies with."""
    text = url
    for name in sorted(params or {}):
        for value in sorted(set(params[name])):
            text += name + value
    return base64.b64encode(hmac.new(token.encode(), text.encode(), hashlib.sha1).digest()).decode()


def error(status: int, code: int, message: str) -> Response:
    return Response.json({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                          "status": status}, status)


def rfc2822(epoch: float) -> str:
    return formatdate(epoch, usegmt=False).replace("-0000", "+0000")


@dataclass
class WebhookCall:
    """A webhook Twilio would send: where to, the body and headers (form-encoded unless JSON)."""

    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def post(self, base: str | None = None):
        """POST it over HTTP (to ``base`` instead of the URL's own scheme and host, if given)."""
        import httpx

        target = self.url if base is None else base.rstrip("/") + self.path
        return httpx.post(target, content=self.body, headers=self.headers, timeout=10)


@dataclass
class Account:
    sid: str
    auth_token: str
    friendly_name: str
    api_keys: dict[str, str] = field(default_factory=dict)
    numbers: set[str] = field(default_factory=set)
    services: dict[str, list[str]] = field(default_factory=dict)
    opted_out: set[tuple[str, str]] = field(default_factory=set)
    """(recipient, sender or service) pairs that replied STOP."""


class TwilioSimulator(Simulator):
    def __init__(self, *, port: int = 0, messages_per_second: int = 1, max_concurrency: int = 100) -> None:
        super().__init__(port=port)
        self.messages_per_second = messages_per_second
        self.max_concurrency = max_concurrency
        self.accounts: dict[str, Account] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self._extra: dict[str, dict[str, Any]] = {}
        """Per message what Twilio keeps but does not show: the sender chosen, media, the callback URL."""
        self.sent_by: dict[str, deque[float]] = {}
        self.auto_deliver = False
        self.callback_base: str | None = None
        self.answers_to_lose = 0
        self.rate_limited = 0
        """How many message creations got 429 / 20429."""
        self.active = 0
        account = self.add_account(ACCOUNT_SID, AUTH_TOKEN, "Acme Builders")
        account.api_keys[API_KEY_SID] = API_KEY_SECRET
        account.numbers.add(PHONE_NUMBER)
        account.services[MESSAGING_SERVICE_SID] = list(SERVICE_NUMBERS)
        account.numbers.update(SERVICE_NUMBERS)

    def add_account(self, sid: str, auth_token: str, friendly_name: str) -> Account:
        with self.lock:
            account = self.accounts[sid] = Account(sid, auth_token, friendly_name)
        return account

    # -- the REST API ------------------------------------------------------------------------------------
    def fault_response(self, request: Request, fault: Fault) -> Response:
        status = fault.status or 500
        response = error(status, 20429 if status == 429 else 20500, "Too Many Requests" if status == 429
                         else "An internal server error has occurred")
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    def lose_next_answer(self) -> None:
        """The next message created is kept, but its answer never comes back (the connection is reset)."""
        with self.lock:
            self.answers_to_lose += 1

    def _answer(self, request: Request) -> Response | None:
        response = super()._answer(request)
        return None if response is LOST else response

    def handle(self, request: Request) -> Response:
        with self.lock:
            if self.active >= self.max_concurrency:
                return error(429, 20429, "Too Many Requests")
            self.active += 1
        try:
            return self._route(request)
        finally:
            with self.lock:
                self.active -= 1

    def _route(self, request: Request) -> Response:
        match = re.fullmatch(rf"{API}/Accounts/(AC\w+?)(\.json|/Messages\.json|/Messages/(SM\w+)\.json)",
                             request.path)
        if match is None:
            return error(404, 20404, f"The requested resource {request.path} was not found")
        account = self._authenticate(request, match.group(1))
        if isinstance(account, Response):
            return account
        if match.group(2) == ".json" and request.method == "GET":
            return Response.json(self._account_json(account))
        if match.group(2) == "/Messages.json" and request.method == "POST":
            return self._create_message(account, request)
        if match.group(2) == "/Messages.json" and request.method == "GET":
            return self._list_messages(account, request)
        if match.group(3) and request.method == "GET":
            with self.lock:
                message = self.messages.get(match.group(3))
            if message is None or message["account_sid"] != account.sid:
                return error(404, 20404, f"The requested resource {request.path} was not found")
            return Response.json(message)
        return error(405, 20004, "Method not allowed")

    def _authenticate(self, request: Request, account_sid: str) -> Account | Response:
        value = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":") if value[:6].lower() == "basic " \
                else ("", "", "")
        except ValueError:
            user, password = "", ""
        with self.lock:
            account = self.accounts.get(account_sid)
            owner = self.accounts.get(user) if user.startswith("AC") else next(
                (a for a in self.accounts.values() if user in a.api_keys), None)
        secret = None if owner is None else owner.auth_token if user == owner.sid else owner.api_keys.get(user)
        if owner is None or secret is None or not hmac.compare_digest(secret, password):
            response = error(401, 20003, "Authentication Error - invalid username")
            response.body = json.dumps({**json.loads(response.body),
                                        "detail": "Your AccountSid or AuthToken was incorrect."}).encode()
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if account is None or account is not owner:
            return error(404, 20404, f"The requested resource {request.path} was not found")
        return account

    def _account_json(self, account: Account) -> dict[str, Any]:
        return {"sid": account.sid, "friendly_name": account.friendly_name, "status": "active", "type": "Full",
                "owner_account_sid": account.sid, "date_created": rfc2822(0), "date_updated": rfc2822(0),
                "uri": f"{API}/Accounts/{account.sid}.json"}

    def _create_message(self, account: Account, request: Request) -> Response:
        form = parse_qs(request.body.decode(), keep_blank_values=True)
        first = {k: v[0] for k, v in form.items()}
        to, sender, service = first.get("To", ""), first.get("From"), first.get("MessagingServiceSid")
        body, media = first.get("Body", ""), form.get("MediaUrl", [])
        if not to:
            return error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to) or to == "+15005550001":
            return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in MAGIC_TO:
            return error(400, *MAGIC_TO[to])
        if not body and not media:
            return error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if service:
            if service not in account.services:
                return error(400, 21703, "The Messaging Service Sid is invalid.")
            pool = account.services[service]
        elif sender:
            if sender not in account.numbers:
                return error(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound "
                                         "phone number or short code for your account.")
            pool = [sender]
        else:
            return error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
        now = time.monotonic()
        with self.lock:
            if (to, service or sender) in account.opted_out:
                return error(400, 21610, "Attempt to send to unsubscribed recipient")
            chosen = self._free_sender(pool, now)
            if chosen is None:
                self.rate_limited += 1
                return error(429, 20429, "Too Many Requests")
            self.sent_by.setdefault(chosen, deque()).append(now)
            sid = "SM" + secrets.token_hex(16)
            created = time.time()
            message = {
                "sid": sid, "account_sid": account.sid, "to": to, "from": None if service else chosen,
                "messaging_service_sid": service, "body": body, "num_media": str(len(media)),
                "num_segments": str(1 if len(body) <= 160 else -(-len(body) // 153)),
                "status": "accepted" if service else "queued", "direction": "outbound-api",
                "date_created": rfc2822(created), "date_updated": rfc2822(created), "date_sent": None,
                "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
                "api_version": "2010-04-01", "uri": f"{API}/Accounts/{account.sid}/Messages/{sid}.json",
                "subresource_uris": {"media": f"{API}/Accounts/{account.sid}/Messages/{sid}/Media.json"},
            }
            self.messages[sid] = message
            self.order.append(sid)
            self._extra[sid] = {"sender": chosen, "media": media, "status_callback": first.get("StatusCallback"),
                                "created": created}
        if self.auto_deliver and first.get("StatusCallback"):
            threading.Thread(target=self._deliver_later, args=(sid,), daemon=True).start()
        with self.lock:
            if self.answers_to_lose:
                self.answers_to_lose -= 1
                return LOST
        return Response.json(message, 201)

    def _free_sender(self, pool: list[str], now: float) -> str | None:
        """The sender of ``pool`` with the fewest messages in the last second, if it has room for one."""
        best, best_count = None, None
        for number in pool:
            window = self.sent_by.setdefault(number, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) < self.messages_per_second and (best_count is None or len(window) < best_count):
                best, best_count = number, len(window)
        return best

    def _list_messages(self, account: Account, request: Request) -> Response:
        query = request.query
        size = min(max(int(query.get("PageSize", "50") or 50), 1), 1000)
        start = int(query.get("PageToken", "PA0")[2:] or 0) if query.get("PageToken", "").startswith("PA") else 0
        sent_on = query.get("DateSent")
        with self.lock:
            rows = [self.messages[sid] for sid in reversed(self.order)
                    if self.messages[sid]["account_sid"] == account.sid
                    and query.get("To") in (None, self.messages[sid]["to"])
                    and query.get("From") in (None, self.messages[sid]["from"])]
        if sent_on:
            rows = [r for r in rows if r["date_sent"] and time.strftime(
                "%Y-%m-%d", time.gmtime(self._extra[r["sid"]].get("sent", 0))) == sent_on]
        page = rows[start:start + size]
        base = f"{API}/Accounts/{account.sid}/Messages.json"
        filters = {k: query[k] for k in ("To", "From", "DateSent") if k in query}
        more = start + size < len(rows)
        return Response.json({
            "messages": page, "page": start // size, "page_size": size, "start": start, "end": start + len(page) - 1,
            "uri": f"{base}?{urlencode({**filters, 'PageSize': size})}",
            "first_page_uri": f"{base}?{urlencode({**filters, 'PageSize': size, 'Page': 0})}",
            "previous_page_uri": None,
            "next_page_uri": f"{base}?{urlencode({**filters, 'PageSize': size, 'PageToken': f'PA{start + size}'})}"
            if more else None,
        })

    # -- Twilio's webhooks -------------------------------------------------------------------------------
    def status_callback(self, sid: str, status: str, *, error_code: int | None = None) -> WebhookCall:
        """The status callback Twilio makes when message ``sid`` reaches ``status``; the message changes too."""
        with self.lock:
            message, extra = self.messages[sid], self._extra[sid]
            account = self.accounts[message["account_sid"]]
            message["status"] = status
            message["date_updated"] = rfc2822(time.time())
            if status in ("sent", "delivered") and not message["date_sent"]:
                extra["sent"] = time.time()
                message["date_sent"] = rfc2822(extra["sent"])
            if error_code is not None:
                message["error_code"], message["error_message"] = error_code, "Unknown error"
            url = extra["status_callback"]
            if not url:
                raise ValueError(f"message {sid} was sent without a StatusCallback")
            params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": account.sid, "From": extra["sender"],
                      "To": message["to"], "MessageStatus": status, "SmsStatus": status, "ApiVersion": "2010-04-01"}
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
        return self._form_call(account.auth_token, url, params)

    def inbound_message(self, url: str, *, from_: str, body: str, to: str = PHONE_NUMBER,
                        media: tuple[str, ...] = (), account_sid: str = ACCOUNT_SID) -> WebhookCall:
        """The webhook Twilio makes when ``from_`` texts ``to``. STOP / START words change Twilio's own opt-out
        list for that sender (its Messaging Service, if the number is in one), as Advanced Opt-Out does."""
        with self.lock:
            account = self.accounts[account_sid]
            sender = next((sid for sid, pool in account.services.items() if to in pool), to)
            word = body.strip().upper()
            if word in OPT_OUT:
                account.opted_out.add((from_, sender))
            elif word in OPT_IN:
                account.opted_out.discard((from_, sender))
        sid = "SM" + secrets.token_hex(16)
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": account_sid, "From": from_,
                  "To": to, "Body": body, "NumMedia": str(len(media)), "NumSegments": "1", "SmsStatus": "received",
                  "ApiVersion": "2010-04-01"}
        if sender != to:
            params["MessagingServiceSid"] = sender
        if word in OPT_OUT | OPT_IN:
            params["OptOutType"] = "STOP" if word in OPT_OUT else "START"
        for n, media_url in enumerate(media):
            params[f"MediaUrl{n}"], params[f"MediaContentType{n}"] = media_url, "image/jpeg"
        return self._form_call(account.auth_token, url, params)

    def json_webhook(self, url: str, payload: Any, *, account_sid: str = ACCOUNT_SID) -> WebhookCall:
        """A JSON webhook signed as Twilio signs one: ``bodySHA256`` (hex SHA-256 of the body) added to the
        URL, and the signature over that URL alone."""
        body = json.dumps(payload).encode()
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode({"bodySHA256": hashlib.sha256(body).hexdigest()})) if q)
        signed_url = urlunsplit(parts._replace(query=query))
        with self.lock:
            token = self.accounts[account_sid].auth_token
        return WebhookCall(signed_url, body, {"Content-Type": "application/json",
                                              "X-Twilio-Signature": signature(token, signed_url, None)})

    def _form_call(self, token: str, url: str, params: dict[str, str]) -> WebhookCall:
        return WebhookCall(url, urlencode(params).encode(), {
            "Content-Type": "application/x-www-form-urlencoded", "I-Twilio-Idempotency-Token": secrets.token_hex(8),
            "X-Twilio-Signature": signature(token, url, {k: [v] for k, v in params.items()})})

    def _deliver_later(self, sid: str) -> None:
        for status in ("sent", "delivered"):
            try:
                self.status_callback(sid, status).post(self.callback_base)
            except Exception:  # the hub is down: Twilio does not retry status callbacks either
                return

    # -- what tests look at ------------------------------------------------------------------------------
    def sent(self, account_sid: str = ACCOUNT_SID) -> list[dict[str, Any]]:
        """Every message created for the account, oldest first, with the sender Twilio chose."""
        with self.lock:
            return [{**self.messages[sid], "sender": self._extra[sid]["sender"], "media": self._extra[sid]["media"]}
                    for sid in self.order if self.messages[sid]["account_sid"] == account_sid]

    def message_creations(self) -> int:
        return len(self.logged(lambda r: r.method == "POST" and r.path.endswith("/Messages.json")))
