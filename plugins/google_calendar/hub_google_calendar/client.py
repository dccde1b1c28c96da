"""Google Calendar v3 through the official client and the hub's HTTP client.

``googleapiclient`` builds every request from its bundled discovery document (``static_discovery=True``: no
network) with the base address of ``client_options.api_endpoint`` (the simulator's, when one is set). It is
synchronous and sends through an ``httplib2.Http``; instead, ``execute`` takes the ``HttpRequest`` it built
(method, URI, headers, body) and sends it through ``ctx.http`` — the connection's throttle at Google's
per-user limits, the hub's retries with backoff and ``Retry-After`` (429s, and 403s whose reason is
``rateLimitExceeded`` / ``userRateLimitExceeded``), and its redacted request log — then hands the answer back
to the request's own ``postproc``, so the client's JSON model parses it and raises ``HttpError`` as it would.
The client's ``http`` refuses to send anything, so its own transport and ``num_retries`` never run, and
no request leaves on another connection. google-auth's ``Credentials`` writes the bearer header.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import httplib2
import httpx
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from hub import ConnectionContext, ProviderError
from hub_google_calendar.config import Google

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
PAGE_SIZE = 250


class _NoDirectHttp:
    """The ``http`` the discovery client is built with: it never sends (``execute`` does)."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Google Calendar requests go through the hub's HTTP client (client.execute)")


@functools.lru_cache(maxsize=8)
def service(api_endpoint: str | None) -> Any:
    """The Calendar v3 resource, built once per process and endpoint from the bundled discovery document."""
    return build("calendar", "v3", http=_NoDirectHttp(), static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": api_endpoint} if api_endpoint else None)


def google_errors(content: bytes) -> tuple[str, list[dict[str, Any]]]:
    """(message, errors) of Google's error body ``{"error": {"code", "message", "errors": [...]}}``."""
    try:
        error = json.loads(content or b"{}").get("error")
    except (ValueError, AttributeError):
        return "", []
    if not isinstance(error, dict):
        return str(error or ""), []
    errors = [e for e in error.get("errors") or [] if isinstance(e, dict)]
    return str(error.get("message") or ""), errors


def rate_limited(response: httpx.Response) -> bool:
    """Google's rate-limit 403s (its 429s the hub retries anyway)."""
    if response.status_code != 403:
        return False
    return any(e.get("reason") in RATE_LIMIT_REASONS for e in google_errors(response.content)[1])


class CalendarError(ProviderError):
    def __init__(self, status: int, content: bytes, what: str) -> None:
        message, errors = google_errors(content)
        self.http_status = status
        self.reason = str(errors[0].get("reason") or "") if errors else ""
        text = message or (errors[0].get("message") if errors else "") or "no details"
        super().__init__(f"Google Calendar {what} failed (HTTP {status}{f', {self.reason}' if self.reason else ''}): "
                         f"{str(text)[:300]}", code="google_calendar_error")


async def execute(ctx: ConnectionContext, request: HttpRequest, *, what: str, idempotent: bool | None = None) -> Any:
    """Send one request the discovery client built through ``ctx.http``; its parsed answer, or ``CalendarError``."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "accept-encoding")}
    Credentials(token=await ctx.access_token()).apply(headers)
    body = request.body.encode() if isinstance(request.body, str) else request.body
    response = await ctx.http.request(request.method, request.uri, content=body, headers=headers,
                                      idempotent=idempotent, throttled=rate_limited)
    answer = httplib2.Response({"status": response.status_code, **{k.lower(): v for k, v in response.headers.items()}})
    try:
        return request.postproc(answer, response.content)
    except HttpError:
        raise CalendarError(response.status_code, response.content, what) from None


class CalendarApi:
    """The calls the plugin makes, for one connection."""

    def __init__(self, ctx: ConnectionContext, google: Google) -> None:
        self.ctx = ctx
        self.api = service(google.api_endpoint)

    async def insert(self, calendar_id: str, body: dict[str, Any], send_updates: str) -> dict[str, Any]:
        """``body["id"]`` is chosen by the plugin, so a repeated insert is a 409 ``duplicate``, never a twin."""
        request = self.api.events().insert(calendarId=calendar_id, body=body, sendUpdates=send_updates)
        return await execute(self.ctx, request, what="event insert", idempotent="id" in body)

    async def patch(self, calendar_id: str, event_id: str, body: dict[str, Any], send_updates: str) -> dict[str, Any]:
        request = self.api.events().patch(calendarId=calendar_id, eventId=event_id, body=body,
                                          sendUpdates=send_updates)
        return await execute(self.ctx, request, what="event patch", idempotent=True)

    async def delete(self, calendar_id: str, event_id: str, send_updates: str) -> None:
        request = self.api.events().delete(calendarId=calendar_id, eventId=event_id, sendUpdates=send_updates)
        await execute(self.ctx, request, what="event delete")

    async def get(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        return await execute(self.ctx, self.api.events().get(calendarId=calendar_id, eventId=event_id),
                             what="event read")

    async def list(self, calendar_id: str, *, sync_token: str | None = None, page_token: str | None = None
                   ) -> dict[str, Any]:
        """One page of events: everything (cancelled ones too) or, with ``sync_token``, what changed since."""
        params: dict[str, Any] = {"calendarId": calendar_id, "maxResults": PAGE_SIZE}
        if sync_token:
            params["syncToken"] = sync_token
        else:
            params["showDeleted"] = True
        if page_token:
            params["pageToken"] = page_token
        return await execute(self.ctx, self.api.events().list(**params), what="event list")

    async def calendars(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        page_token = None
        while True:
            page = await execute(self.ctx, self.api.calendarList().list(maxResults=250, pageToken=page_token),
                                 what="calendar list")
            entries += page.get("items") or []
            page_token = page.get("nextPageToken")
            if not page_token:
                return entries

    async def watch(self, calendar_id: str, channel_id: str, address: str, token: str, ttl_seconds: int
                    ) -> dict[str, Any]:
        body = {"id": channel_id, "type": "web_hook", "address": address, "token": token,
                "params": {"ttl": str(ttl_seconds)}}
        return await execute(self.ctx, self.api.events().watch(calendarId=calendar_id, body=body),
                             what="watch", idempotent=False)

    async def stop(self, channel_id: str, resource_id: str) -> None:
        request = self.api.channels().stop(body={"id": channel_id, "resourceId": resource_id})
        await execute(self.ctx, request, what="channel stop", idempotent=True)
