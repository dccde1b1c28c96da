"""The official ``twilio`` SDK, with its HTTP handed to the hub's provider client.

``HubHttpClient`` is a ``twilio.http.AsyncHttpClient``: the SDK builds each request (URL, form, auth) and
this sends it through ``ctx.http``, which holds the connection's rate limits (a send also its sender's,
by scope), retries 429 and connect errors with backoff and ``Retry-After``, and logs without bodies or
credentials. The SDK opens no connection of its own and retries nothing. ``TWILIO_BASE_URL`` points every
Twilio host at one server (the simulator)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from hub import AccountInfo, ConnectionHttp, CredentialsRejected, HubError, ProviderError, ProviderHttp
from hub_twilio.config import SLUG, Credentials

log = logging.getLogger("hub_twilio")

OPTED_OUT = 21610
INVALID_RECIPIENT = {21211: "is not a valid phone number", 21614: "is not a mobile number",
                     21612: "cannot be reached by SMS", 21408: "is in a region this account may not text"}


class RecipientOptedOut(HubError):
    """The recipient replied STOP (to the hub, or to Twilio: error 21610): the hub sends them nothing."""

    status = 409
    code = "recipient_opted_out"

    def __init__(self, to: str) -> None:
        super().__init__(f"{to} has opted out of messages from this sender (they replied STOP); they can opt back "
                         "in by replying START", details={"to": to})


class InvalidRecipient(HubError):
    status = 422
    code = "invalid_recipient"


class TwilioFailed(ProviderError):
    """Twilio refused the request: its error code and message (never a credential)."""

    def __init__(self, exc: TwilioRestException, what: str) -> None:
        status = 422 if 400 <= exc.status < 500 and exc.status not in (401, 403, 429) else 502
        super().__init__(f"Twilio {what} failed (HTTP {exc.status}, error {exc.code}): {exc.msg}"[:1000],
                         code="twilio_error", status=status, details={"twilio_code": exc.code})
        self.twilio_code = exc.code


def refusal(exc: TwilioRestException, what: str, to: str | None = None) -> HubError:
    """The hub's error for a Twilio refusal: opted out, an invalid recipient, or Twilio's own words."""
    if exc.code == OPTED_OUT and to:
        return RecipientOptedOut(to)
    if exc.code in INVALID_RECIPIENT and to:
        return InvalidRecipient(f"{to} {INVALID_RECIPIENT[exc.code]} (Twilio error {exc.code})",
                                details={"to": to, "twilio_code": exc.code})
    return TwilioFailed(exc, what)


class HubHttpClient(AsyncHttpClient):
    """The SDK's async HTTP client interface, answered by the hub's provider HTTP client."""

    def __init__(self, http: ConnectionHttp | ProviderHttp, *, base_url: str | None = None,
                 send_scope: str | None = None) -> None:
        super().__init__(log, is_async=True, timeout=None)
        self.http = http
        self.base_url = base_url
        self.send_scope = send_scope

    def target(self, url: str) -> str:
        if self.base_url is None:
            return url
        parts, base = urlsplit(url), urlsplit(self.base_url)
        return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))

    async def request(self, method: str, uri: str, params: dict[str, object] | None = None,
                      data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                      auth: tuple[str, str] | None = None, timeout: float | None = None,
                      allow_redirects: bool = False) -> TwilioResponse:
        kwargs: dict[str, Any] = {"params": params or None, "data": data or None, "headers": headers, "auth": auth}
        url = self.target(uri)
        if isinstance(self.http, ConnectionHttp):
            sending = method.upper() == "POST" and urlsplit(url).path.endswith("/Messages.json")
            response = await self.http.request(method, url, scope=self.send_scope if sending else None, **kwargs)
        else:
            response = await self.http.request(method, url, provider=SLUG, **kwargs)
        return TwilioResponse(response.status_code, response.text, response.headers)


def sdk_client(http: ConnectionHttp | ProviderHttp, credentials: Credentials, *, base_url: str | None,
               send_scope: str | None = None, login: tuple[str, str] | None = None) -> Client:
    """A Twilio ``Client`` for one set of credentials whose HTTP is the hub's. ``environment`` is given so the
    SDK reads nothing (``TWILIO_EDGE``, ``TWILIO_REGION`` ...) from the process environment."""
    username, password = login or credentials.login
    return Client(username, password, credentials.account_sid, environment={"TWILIO_EDGE": ""},
                  http_client=HubHttpClient(http, base_url=base_url, send_scope=send_scope))


class Checker:
    """``ApiKeyAuth.check``: the credentials reach the account (and the Auth Token too, when an API key is
    the login), before anything is saved."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url

    async def __call__(self, http: ProviderHttp, credentials: Credentials) -> AccountInfo:
        logins = [credentials.login]
        if credentials.api_key_sid is not None and credentials.auth_token:
            logins.append((credentials.account_sid, credentials.auth_token))
        account = None
        for login in logins:
            client = sdk_client(http, credentials, base_url=self.base_url, login=login)
            try:
                account = await client.api.v2010.accounts(credentials.account_sid).fetch_async()
            except TwilioRestException as exc:
                if exc.status in (401, 403, 404):
                    which = "API key" if login[0].startswith("SK") else "Account SID and Auth Token"
                    raise CredentialsRejected(f"Twilio did not accept the {which} (error {exc.code})") from None
                raise TwilioFailed(exc, "account check") from None
        assert account is not None
        return AccountInfo(id=credentials.account_sid, name=account.friendly_name,
                           metadata={"type": account.type, "status": account.status})
