"""A local Google Calendar: the Calendar API v3, Google's OAuth 2.0 server and its push notifications, over
real HTTP on 127.0.0.1. Written from Google's documentation, not from the plugin:

- OAuth 2.0 (``accounts.google.com`` / ``oauth2.googleapis.com``): ``/o/oauth2/v2/auth`` is the consent
  page, which approves at once (``decision=deny`` says no) and redirects with ``code`` and ``state``;
  ``/token`` takes the client in the form body or HTTP Basic, checks the PKCE verifier, issues a refresh
  token only to ``access_type=offline`` with ``prompt=consent`` (Google's refresh tokens do not rotate);
  ``/revoke`` ends the whole grant. ``/v1/userinfo`` (``openidconnect.googleapis.com``) names the account
  when the grant has the ``email`` scope.
- ``/calendar/v3/``: ``calendars/{id}/events`` insert (client-chosen base32hex ids, 409 ``duplicate``),
  get, patch (JSON merge: objects merge, arrays and values replace, null clears), delete (204; 410
  ``deleted`` the second time), list (pages of at most 2,500, ``nextPageToken`` then ``nextSyncToken``;
  ``syncToken`` returns what changed since, cancelled events included, and refuses the filters Google
  refuses with it; an expired sync token is 410 ``fullSyncRequired``), ``events/watch``,
  ``channels/stop`` and ``users/me/calendarList``. ``primary`` is the user's own calendar, whose id is
  their email address.
- Errors in Google's JSON shape (``{"error": {"code", "message", "errors": [{"domain", "reason",
  "message"}], "status"}}``); 401 ``authError`` for a dead token, 403 ``insufficientPermissions`` when the
  grant lacks the scope, 403 ``userRateLimitExceeded`` beyond the per-user quota (600 requests a minute
  by default; ``per_user_per_minute`` and ``window_seconds`` change it). The kit's planned faults answer in
  that shape too: ``fail_next(403)`` is a ``rateLimitExceeded`` 403, ``throttle_next()`` a 429, 5xx
  ``backendError``.
- Push notifications: every change to a watched calendar queues one for each live channel (headers
  ``X-Goog-Channel-ID``, ``-Token``, ``-Expiration``, ``X-Goog-Resource-ID``, ``-URI``, ``-State``
  (``sync`` when the channel is made, then ``exists``) and ``X-Goog-Message-Number``; no body).
  ``take_notifications()`` hands them to a test; ``deliver()`` posts them; ``auto_deliver = True``
  posts each as it happens (demo mode). Google only calls HTTPS addresses; this one also calls
  127.0.0.1 and localhost, so it can reach a hub under test.

The "Google Calendar UI" side, for tests: ``edit_event``, ``cancel_event``, ``add_event``, ``events``,
``expire_sync_tokens``; ``listed`` says whether a read has returned an event's latest change.
``with GoogleCalendarSimulator() as google: google.url``.
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
from datetime import UTC, date, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.testing.simulator import Fault, Request, Response, Simulator, TokenStore

CLIENT_ID = "123456789012-sim.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-sim-calendar-client-secret"
USER_EMAIL = "crew.lead@example.com"
USER_SUB = "104857600123456789012"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
READ_SCOPES = {CALENDAR_SCOPE, "https://www.googleapis.com/auth/calendar.readonly"}
EVENT_SCOPES = {CALENDAR_SCOPE, "https://www.googleapis.com/auth/calendar.events"}
EVENT_READ_SCOPES = EVENT_SCOPES | READ_SCOPES | {"https://www.googleapis.com/auth/calendar.events.readonly"}
LIST_SCOPES = READ_SCOPES | {"https://www.googleapis.com/auth/calendar.calendarlist.readonly",
                             "https://www.googleapis.com/auth/calendar.calendarlist"}
ACCESS_TTL = 3599
MAX_RESULTS = 2500
DEFAULT_RESULTS = 250
DEFAULT_CHANNEL_TTL = 604800
"""Seconds a channel lives unless ``params.ttl`` says otherwise (Calendar: one week)."""
MAX_CHANNEL_TTL = 2592000
NOT_WITH_SYNC_TOKEN = ("iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty", "timeMin",
                       "timeMax", "updatedMin")
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EVENTS = re.compile(r"^/calendar/v3/calendars/(?P<cal>[^/]+)/events(?:/(?P<event>[^/]+))?$")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 410: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
           503: "UNAVAILABLE"}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, domain: str = "global", **extra: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.domain, self.extra = code, reason, message, domain, extra

    def response(self) -> Response:
        error = {"domain": self.domain, "reason": self.reason, "message": self.message, **self.extra}
        body = {"error": {"code": self.code, "message": self.message, "errors": [error]}}
        if self.code in _STATUS:
            body["error"]["status"] = _STATUS[self.code]
        return Response.json(body, self.code, content_type="application/json; charset=UTF-8")


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _instant(when: dict[str, Any], what: str) -> datetime:
    """The instant an event's ``start``/``end`` stands for (all-day dates: midnight UTC, for ordering)."""
    if not isinstance(when, dict):
        raise ApiError(400, "required", f"Missing {what} time.")
    zone = when.get("timeZone")
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(400, "timeZoneInvalid", f"Invalid time zone definition for {what} time.") from None
    if when.get("dateTime"):
        try:
            moment = datetime.fromisoformat(str(when["dateTime"]).replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "invalid", f"Invalid {what} time.") from None
        if moment.tzinfo is None:
            if zone is None:
                raise ApiError(400, "required", "Missing time zone definition for start time.")
            moment = moment.replace(tzinfo=ZoneInfo(zone))
        return moment
    if when.get("date"):
        try:
            return datetime.combine(date.fromisoformat(str(when["date"])), datetime.min.time(), UTC)
        except ValueError:
            raise ApiError(400, "invalid", f"Invalid {what} time.") from None
    raise ApiError(400, "required", f"Missing {what} time.")


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge (RFC 7396), as Google's patch: objects merge, everything else replaces, null clears."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _unb64(token: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class Calendar:
    id: str
    summary: str
    time_zone: str
    primary: bool = False
    access_role: str = "owner"
    resource_id: str = field(default_factory=lambda: secrets.token_urlsafe(20))
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    listed_seq: int = 0
    """The newest change a finished list (its last page) has returned: what its reader has heard of."""


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar_id: str
    address: str
    token: str | None
    expires_at: float
    owner: str
    messages: int = 0


@dataclass
class Notification:
    """One push notification, as Google POSTs it (no body)."""

    address: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        parts = urlsplit(self.address)
        return parts.path + (f"?{parts.query}" if parts.query else "")


class GoogleCalendarSimulator(Simulator):
    def __init__(self, *, port: int = 0, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
                 user_email: str = USER_EMAIL, time_zone: str = "America/Chicago", auto_deliver: bool = False
                 ) -> None:
        super().__init__(port=port)
        self.client_id, self.client_secret = client_id, client_secret
        self.user_email = user_email
        self.tokens = TokenStore()
        """Access tokens issued: token -> (grant id, expiry)."""
        self.grants: dict[str, dict[str, Any]] = {}
        """Grant id -> {"scopes": set, "refresh_token": str | None}."""
        self.refresh_tokens: dict[str, str] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.revoked: list[str] = []
        self.issued: list[str] = []
        """Every access and refresh token issued (what must never reach a log)."""
        self.calendars: dict[str, Calendar] = {}
        self.channels: dict[str, Channel] = {}
        self.stopped_channels: list[str] = []
        self.notifications: list[Notification] = []
        self.delivered: list[tuple[Notification, int | str]] = []
        self.auto_deliver = auto_deliver
        """Post each notification as it happens (a hub served over HTTP, as in demo mode), instead of queueing it."""
        self.sent_updates: list[tuple[str, str, str]] = []
        """(method, event id, sendUpdates) of every write: whom Google would have emailed."""
        self.per_user_per_minute = 600
        self.window_seconds = 60.0
        self.rate_limited = 0
        self._arrivals: dict[str, deque[float]] = {}
        self._seq = 0
        self._token_epoch = 1
        self.add_calendar(user_email, user_email, time_zone, primary=True)
        self.add_calendar("c_crew0schedule@group.calendar.google.com", "Crew schedule", time_zone)

    # -- the Google Calendar UI side, for tests ---------------------------------------------------------
    def add_calendar(self, calendar_id: str, summary: str, time_zone: str, *, primary: bool = False) -> Calendar:
        with self.lock:
            self.calendars[calendar_id] = Calendar(calendar_id, summary, time_zone, primary)
            return self.calendars[calendar_id]

    def calendar(self, calendar_id: str = "primary") -> Calendar:
        with self.lock:
            if calendar_id == "primary":
                return next(c for c in self.calendars.values() if c.primary)
            if calendar_id not in self.calendars:
                raise ApiError(404, "notFound", "Not Found")
            return self.calendars[calendar_id]

    def events(self, calendar_id: str = "primary", *, cancelled: bool = False) -> dict[str, dict[str, Any]]:
        """Event id -> a copy of the event, live ones only unless ``cancelled``."""
        with self.lock:
            return {i: copy.deepcopy(e) for i, e in self.calendar(calendar_id).events.items()
                    if cancelled or e["status"] != "cancelled"}

    def add_event(self, body: dict[str, Any], calendar_id: str = "primary") -> dict[str, Any]:
        """Someone adds an event in Google Calendar."""
        with self.lock:
            return self._insert(self.calendar(calendar_id), body, "none")

    def edit_event(self, event_id: str, changes: dict[str, Any], calendar_id: str = "primary") -> dict[str, Any]:
        """Someone changes an event in Google Calendar (a move: new ``start`` and ``end``)."""
        with self.lock:
            return self._patch(self.calendar(calendar_id), event_id, changes, "none")

    def cancel_event(self, event_id: str, calendar_id: str = "primary") -> None:
        """Someone deletes an event in Google Calendar."""
        with self.lock:
            self._delete(self.calendar(calendar_id), event_id, "none")

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far stops working: the next incremental list is a 410."""
        with self.lock:
            self._token_epoch += 1

    def touch(self, calendar_id: str = "primary") -> None:
        """Google reports a change to the calendar (as it does for changes no read will show, such as another
        app's private data): an ``exists`` notification on each of its channels, nothing else."""
        with self.lock:
            self._notify(self.calendar(calendar_id))

    def listed(self, event_id: str, calendar_id: str = "primary") -> bool:
        """Whether a list has returned the event as it is now: the reader has heard of its latest change."""
        with self.lock:
            calendar = self.calendar(calendar_id)
            return calendar.listed_seq >= self._event(calendar, event_id)["_seq"]

    def channel_for(self, address_suffix: str) -> Channel | None:
        """The live channel whose address ends with ``address_suffix`` (a connection's id)."""
        with self.lock:
            return next((c for c in self.channels.values() if c.address.endswith(address_suffix)), None)

    def take_notifications(self) -> list[Notification]:
        with self.lock:
            taken, self.notifications = self.notifications, []
        return taken

    def deliver(self, notifications: list[Notification] | None = None, *, timeout: float = 10.0) -> list[int | str]:
        """POST pending notifications (or those given) to their addresses; returns each status."""
        import httpx

        statuses: list[int | str] = []
        for note in self.take_notifications() if notifications is None else notifications:
            try:
                status: int | str = httpx.post(note.address, headers=note.headers, content=b"",
                                               timeout=timeout).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            with self.lock:
                self.delivered.append((note, status))
            statuses.append(status)
        return statuses

    # -- serving ---------------------------------------------------------------------------------------------
    def fault_response(self, request: Request, fault: Fault) -> Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is not None:
            return Response(fault.status or 500, fault.body, headers)
        status = fault.status or 500
        if status == 429:
            error = ApiError(429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
        elif status == 403:
            error = ApiError(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
        elif status >= 500:
            error = ApiError(status, "backendError", "Backend Error")
        else:
            error = ApiError(status, "invalid", "Simulated error")
        response = error.response()
        response.headers.update(headers)
        return response

    def handle(self, request: Request) -> Response:
        try:
            if request.path == "/o/oauth2/v2/auth" and request.method == "GET":
                return self._authorize(request.query)
            if request.path == "/token" and request.method == "POST":
                return self._token(request)
            if request.path == "/revoke" and request.method == "POST":
                return self._revoke(request)
            if request.path == "/v1/userinfo":
                return self._userinfo(request)
            if request.path.startswith("/calendar/v3/"):
                return self._api(request)
            raise ApiError(404, "notFound", "Not Found")
        except ApiError as error:
            return error.response()

    # -- OAuth 2.0 -------------------------------------------------------------------------------------------
    def _authorize(self, query: dict[str, str]) -> Response:
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id:
            return Response(401, b"Error 401: invalid_client\nThe OAuth client was not found.",
                            {"Content-Type": "text/plain"})
        if query.get("response_type") != "code" or not redirect or not query.get("scope"):
            return Response(400, b"Error 400: invalid_request", {"Content-Type": "text/plain"})
        if query.get("code_challenge") and query.get("code_challenge_method") != "S256":
            return Response(400, b"Error 400: invalid_request (code_challenge_method)", {"Content-Type": "text/plain"})
        if query.get("decision") == "deny":
            params = {"error": "access_denied", "state": query.get("state", "")}
        else:
            code = "4/0A" + secrets.token_urlsafe(30)
            with self.lock:
                self.codes[code] = {
                    "redirect_uri": redirect, "scopes": set(query["scope"].split()),
                    "challenge": query.get("code_challenge"), "expires": time.time() + 600,
                    "refresh": query.get("access_type") == "offline" and "consent" in query.get("prompt", "").split(),
                }
            params = {"code": code, "state": query.get("state", ""), "scope": query["scope"]}
        separator = "&" if "?" in redirect else "?"
        return Response.redirect(f"{redirect}{separator}{urlencode(params)}")

    def _client(self, request: Request, form: dict[str, str]) -> bool:
        given_id, given_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                given_id, _, given_secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        return hmac.compare_digest(given_id or "", self.client_id) and \
            hmac.compare_digest(given_secret or "", self.client_secret)

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> Response:
        return Response.json({"error": error, "error_description": description}, status)

    def _token(self, request: Request) -> Response:
        form = request.form()
        if not self._client(request, form):
            return self._oauth_error(401, "invalid_client", "Unauthorized")
        grant_type = form.get("grant_type")
        with self.lock:
            if grant_type == "authorization_code":
                code = self.codes.pop(form.get("code", ""), None)
                if code is None or code["expires"] < time.time() or code["redirect_uri"] != form.get("redirect_uri"):
                    return self._oauth_error(400, "invalid_grant", "Bad Request")
                if code["challenge"]:
                    verifier = form.get("code_verifier", "")
                    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                    if not hmac.compare_digest(digest, code["challenge"]):
                        return self._oauth_error(400, "invalid_grant", "Invalid code verifier.")
                grant_id = uuid.uuid4().hex
                refresh = ("1//0g" + secrets.token_urlsafe(40)) if code["refresh"] else None
                self.grants[grant_id] = {"scopes": code["scopes"], "refresh_token": refresh}
                if refresh:
                    self.refresh_tokens[refresh] = grant_id
            elif grant_type == "refresh_token":
                refresh = form.get("refresh_token", "")
                grant_id = self.refresh_tokens.get(refresh)
                if grant_id is None:
                    return self._oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
                refresh = None  # Google's refresh tokens do not rotate: none comes back
            else:
                return self._oauth_error(400, "unsupported_grant_type", "Invalid grant_type: " + str(grant_type))
            access = self.tokens.issue("ya29.a0" + secrets.token_urlsafe(60), grant_id, ACCESS_TTL)
            self.issued += [access] + ([refresh] if refresh else [])
            scopes = self.grants[grant_id]["scopes"]
        body = {"access_token": access, "expires_in": ACCESS_TTL, "scope": " ".join(sorted(scopes)),
                "token_type": "Bearer"}
        if refresh:
            body["refresh_token"] = refresh
        return Response.json(body)

    def _revoke(self, request: Request) -> Response:
        token = request.query.get("token") or request.form().get("token", "")
        with self.lock:
            grant_id = self.refresh_tokens.get(token) or self.tokens.owner(token)
            if grant_id is None:
                return self._oauth_error(400, "invalid_token", "Token expired or revoked")
            self.revoked.append(token)
            grant = self.grants.pop(grant_id, {})
            self.refresh_tokens.pop(grant.get("refresh_token") or "", None)
            self.tokens.revoke_owner(grant_id)
        return Response.json({})

    def _grant(self, request: Request) -> tuple[str, set[str]]:
        grant_id = self.tokens.owner(request.bearer)
        with self.lock:
            grant = self.grants.get(grant_id or "")
        if grant is None:
            raise ApiError(401, "authError", "Invalid Credentials", location="Authorization", locationType="header")
        return grant_id, grant["scopes"]

    def _userinfo(self, request: Request) -> Response:
        _, scopes = self._grant(request)
        info: dict[str, Any] = {"sub": USER_SUB}
        if "email" in scopes or "https://www.googleapis.com/auth/userinfo.email" in scopes:
            info |= {"email": self.user_email, "email_verified": True}
        return Response.json(info)

    # -- the Calendar API ----------------------------------------------------------------------------------
    def _admit(self, grant_id: str) -> None:
        """Google's per-user quota, over a sliding window."""
        now = time.monotonic()
        with self.lock:
            arrivals = self._arrivals.setdefault(grant_id, deque())
            while arrivals and arrivals[0] <= now - self.window_seconds:
                arrivals.popleft()
            if len(arrivals) >= self.per_user_per_minute:
                self.rate_limited += 1
                raise ApiError(403, "userRateLimitExceeded", "User Rate Limit Exceeded", "usageLimits")
            arrivals.append(now)

    @staticmethod
    def _needs(scopes: set[str], allowed: set[str]) -> None:
        if not scopes & allowed:
            raise ApiError(403, "insufficientPermissions", "Insufficient Permission")

    def _api(self, request: Request) -> Response:
        grant_id, scopes = self._grant(request)
        self._admit(grant_id)
        path, method, query = request.path, request.method, request.query
        if path == "/calendar/v3/users/me/calendarList" and method == "GET":
            self._needs(scopes, LIST_SCOPES)
            return self._calendar_list(query)
        if path.startswith("/calendar/v3/users/me/calendarList/") and method == "GET":
            self._needs(scopes, LIST_SCOPES)
            return Response.json(self._list_entry(self.calendar(unquote(path.rsplit("/", 1)[1]))))
        if path == "/calendar/v3/channels/stop" and method == "POST":
            return self._stop(grant_id, request.json() or {})
        match = _EVENTS.match(path)
        if match is None:
            raise ApiError(404, "notFound", "Not Found")
        calendar = self.calendar(unquote(match["cal"]))
        event_id = unquote(match["event"]) if match["event"] else None
        send_updates = query.get("sendUpdates", "none")
        if send_updates not in ("all", "externalOnly", "none"):
            raise ApiError(400, "invalidParameter", "Invalid value for sendUpdates", location="sendUpdates")
        with self.lock:
            if event_id == "watch" and method == "POST":
                self._needs(scopes, EVENT_READ_SCOPES)
                return Response.json(self._watch(grant_id, calendar, request.json() or {}))
            if event_id is None and method == "GET":
                self._needs(scopes, EVENT_READ_SCOPES)
                return Response.json(self._list(calendar, query))
            if event_id is None and method == "POST":
                self._needs(scopes, EVENT_SCOPES)
                return Response.json(self._insert(calendar, self._body(request), send_updates))
            if event_id is not None and method == "GET":
                self._needs(scopes, EVENT_READ_SCOPES)
                return Response.json(copy.deepcopy(self._event(calendar, event_id)))
            if event_id is not None and method == "PATCH":
                self._needs(scopes, EVENT_SCOPES)
                return Response.json(self._patch(calendar, event_id, self._body(request), send_updates))
            if event_id is not None and method == "DELETE":
                self._needs(scopes, EVENT_SCOPES)
                self._delete(calendar, event_id, send_updates)
                return Response(204)
        raise ApiError(404, "notFound", "Not Found")

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        if not isinstance(body, dict):
            raise ApiError(400, "parseError", "Parse Error")
        return body

    def _list_entry(self, calendar: Calendar) -> dict[str, Any]:
        entry = {"kind": "calendar#calendarListEntry", "etag": f'"{calendar.resource_id[:12]}"', "id": calendar.id,
                 "summary": calendar.summary, "timeZone": calendar.time_zone, "accessRole": calendar.access_role,
                 "defaultReminders": [{"method": "popup", "minutes": 30}]}
        if calendar.primary:
            entry["primary"] = True
        return entry

    def _calendar_list(self, query: dict[str, str]) -> Response:
        with self.lock:
            entries = [self._list_entry(c) for c in self.calendars.values()]
        size = min(int(query.get("maxResults", 100)), 250)
        start = int((_unb64(query["pageToken"]) or {}).get("at", 0)) if query.get("pageToken") else 0
        body: dict[str, Any] = {"kind": "calendar#calendarList", "etag": '"p3"', "items": entries[start:start + size]}
        if start + size < len(entries):
            body["nextPageToken"] = _b64({"at": start + size})
        else:
            body["nextSyncToken"] = _b64({"cl": self._seq})
        return Response.json(body)

    def _event(self, calendar: Calendar, event_id: str) -> dict[str, Any]:
        event = calendar.events.get(event_id)
        if event is None:
            raise ApiError(404, "notFound", "Not Found")
        return event

    def _touch(self, calendar: Calendar, event: dict[str, Any]) -> None:
        self._seq += 1
        event["_seq"] = self._seq
        event["updated"] = _rfc3339(_now())
        event["etag"] = f'"{int(time.time() * 1000)}{self._seq:06d}"'
        self._notify(calendar)

    def _check(self, event: dict[str, Any]) -> None:
        start, end = _instant(event.get("start"), "start"), _instant(event.get("end"), "end")
        if bool(event["start"].get("date")) != bool(event["end"].get("date")):
            raise ApiError(400, "invalid", "Start and end times must either both be date or both be dateTime.")
        if end < start or (end == start and event["start"].get("date")):
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.", location="timeMax")
        for attendee in event.get("attendees") or []:
            if not isinstance(attendee, dict) or not _EMAIL.match(str(attendee.get("email", ""))):
                raise ApiError(400, "invalid", "Invalid attendee email.")
        reminders = event.get("reminders") or {}
        overrides = reminders.get("overrides") or []
        if len(overrides) > 5:
            raise ApiError(400, "cannotUseMoreThanFiveReminders", "Cannot specify more than 5 reminders.")
        for reminder in overrides:
            if reminder.get("method") not in ("email", "popup") or not 0 <= int(reminder.get("minutes", -1)) <= 40320:
                raise ApiError(400, "invalid", "Invalid reminder.")
        if reminders.get("useDefault") and overrides:
            raise ApiError(400, "cannotUseDefaultRemindersAndSpecifyOverride",
                           "Cannot specify both default reminders and overrides at the same time.")

    def _insert(self, calendar: Calendar, body: dict[str, Any], send_updates: str) -> dict[str, Any]:
        event_id = body.get("id") or uuid.uuid4().hex
        if not _EVENT_ID.match(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        if event_id in calendar.events:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        now = _rfc3339(_now())
        event = {k: copy.deepcopy(v) for k, v in body.items() if v is not None and not k.startswith("_")}
        event |= {
            "kind": "calendar#event", "id": event_id, "status": body.get("status") or "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={quote(event_id)}", "created": now,
            "creator": {"email": self.user_email, "self": True},
            "organizer": {"email": calendar.id, "self": True} if calendar.primary else
                         {"email": calendar.id, "displayName": calendar.summary, "self": True},
            "iCalUID": f"{event_id}@google.com", "sequence": 0,
            "reminders": body.get("reminders") or {"useDefault": True}, "eventType": "default",
        }
        for attendee in event.get("attendees") or []:
            attendee.setdefault("responseStatus", "needsAction")
        self._check(event)
        calendar.events[event_id] = event
        self.sent_updates.append(("insert", event_id, send_updates))
        self._touch(calendar, event)
        return self._public(event)

    def _patch(self, calendar: Calendar, event_id: str, body: dict[str, Any], send_updates: str) -> dict[str, Any]:
        current = self._event(calendar, event_id)
        body = {k: v for k, v in body.items() if k not in ("id", "kind", "etag", "created", "updated", "htmlLink",
                                                         "iCalUID", "creator", "organizer")}
        merged = _merge(current, body)
        for attendee in merged.get("attendees") or []:
            attendee.setdefault("responseStatus", "needsAction")
        self._check(merged)
        if (merged.get("start"), merged.get("end")) != (current.get("start"), current.get("end")):
            merged["sequence"] = int(current.get("sequence", 0)) + 1
        calendar.events[event_id] = merged
        self.sent_updates.append(("patch", event_id, send_updates))
        self._touch(calendar, merged)
        return self._public(merged)

    def _delete(self, calendar: Calendar, event_id: str, send_updates: str) -> None:
        event = self._event(calendar, event_id)
        if event["status"] == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        self.sent_updates.append(("delete", event_id, send_updates))
        self._touch(calendar, event)

    @staticmethod
    def _public(event: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in event.items() if not k.startswith("_")}

    def _list(self, calendar: Calendar, query: dict[str, str]) -> dict[str, Any]:
        try:
            size = int(query.get("maxResults", DEFAULT_RESULTS))
        except ValueError:
            raise ApiError(400, "invalidParameter", "Invalid value for maxResults") from None
        if not 1 <= size <= MAX_RESULTS:
            raise ApiError(400, "invalidParameter", "Invalid value for maxResults", location="maxResults")
        page = _unb64(query["pageToken"]) if query.get("pageToken") else None
        if query.get("pageToken") and (page is None or page.get("cal") != calendar.id):
            raise ApiError(400, "invalid", "Invalid page token value.", location="pageToken")
        if page is None:
            since, deleted = None, query.get("showDeleted") == "true"
            if query.get("syncToken"):
                refused = [name for name in NOT_WITH_SYNC_TOKEN if name in query]
                if query.get("showDeleted") == "false":
                    refused.append("showDeleted=false")
                if refused:
                    raise ApiError(400, "invalid", f"{refused[0]} cannot be specified together with syncToken.")
                token = _unb64(query["syncToken"])
                if token is None or token.get("cal") != calendar.id:
                    raise ApiError(400, "invalid", "Invalid sync token value.", location="syncToken")
                if token.get("epoch") != self._token_epoch:
                    raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
                since, deleted = int(token["seq"]), True
            page = {"cal": calendar.id, "since": since, "deleted": deleted, "upto": self._seq, "at": 0}
        chosen = sorted(
            (e for e in calendar.events.values()
             if (page["since"] is None or e["_seq"] > page["since"]) and e["_seq"] <= page["upto"]
             and (page["deleted"] or e["status"] != "cancelled")),
            key=lambda e: e["_seq"])
        at = int(page["at"])
        items = chosen[at:at + size]
        body: dict[str, Any] = {
            "kind": "calendar#events", "etag": f'"p{self._seq}"', "summary": calendar.summary,
            "updated": _rfc3339(_now()), "timeZone": calendar.time_zone, "accessRole": calendar.access_role,
            "defaultReminders": [{"method": "popup", "minutes": 30}],
            "items": [self._listed(e, page["since"] is not None) for e in items],
        }
        if at + size < len(chosen):
            body["nextPageToken"] = _b64({**page, "at": at + size})
        else:
            body["nextSyncToken"] = _b64({"cal": calendar.id, "seq": page["upto"], "epoch": self._token_epoch})
            calendar.listed_seq = max(calendar.listed_seq, page["upto"])
        return body

    def _listed(self, event: dict[str, Any], incremental: bool) -> dict[str, Any]:
        """A cancelled event in an incremental list carries only its identity and status, as Google's does."""
        if event["status"] == "cancelled" and incremental:
            return {"kind": "calendar#event", "etag": event["etag"], "id": event["id"], "status": "cancelled"}
        return self._public(event)

    # -- push notifications ---------------------------------------------------------------------------------
    def _watch(self, grant_id: str, calendar: Calendar, body: dict[str, Any]) -> dict[str, Any]:
        channel_id, address = str(body.get("id") or ""), str(body.get("address") or "")
        if body.get("type") not in ("web_hook", "webhook") or not channel_id or not address:
            raise ApiError(400, "required", "Required")
        host = urlsplit(address).hostname or ""
        if not address.startswith("https://") and host not in ("127.0.0.1", "localhost"):
            raise ApiError(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS: " + address, "push")
        if channel_id in self.channels:
            raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique", "push")
        token = body.get("token")
        if token is not None and len(str(token)) > 256:
            raise ApiError(400, "invalid", "Channel token too long", "push")
        try:
            ttl = min(int((body.get("params") or {}).get("ttl", DEFAULT_CHANNEL_TTL)), MAX_CHANNEL_TTL)
        except ValueError:
            raise ApiError(400, "invalid", "Invalid ttl", "push") from None
        channel = Channel(channel_id, calendar.resource_id, calendar.id, address, token, time.time() + ttl, grant_id)
        self.channels[channel_id] = channel
        self._queue(channel, "sync")
        return {"kind": "api#channel", "id": channel_id, "resourceId": calendar.resource_id,
                "resourceUri": self._resource_uri(calendar), "token": token,
                "expiration": str(int(channel.expires_at * 1000))}

    def _stop(self, grant_id: str, body: dict[str, Any]) -> Response:
        with self.lock:
            channel = self.channels.get(str(body.get("id") or ""))
            if channel is None or channel.resource_id != body.get("resourceId"):
                raise ApiError(404, "notFound", f"Channel '{body.get('id')}' not found for project '{self.client_id}'")
            if channel.owner != grant_id and channel.owner in self.grants:
                raise ApiError(403, "forbidden", "Forbidden")
            del self.channels[channel.id]
            self.stopped_channels.append(channel.id)
        return Response(204)

    @staticmethod
    def _resource_uri(calendar: Calendar) -> str:
        return f"https://www.googleapis.com/calendar/v3/calendars/{quote(calendar.id)}/events?alt=json"

    def _notify(self, calendar: Calendar) -> None:
        for channel in list(self.channels.values()):
            if channel.calendar_id == calendar.id:
                self._queue(channel, "exists")

    def _queue(self, channel: Channel, state: str) -> None:
        if channel.expires_at <= time.time():
            return  # an expired channel says nothing more
        if channel.owner not in self.grants:
            return  # the grant behind it was revoked
        channel.messages += 1
        headers = {
            "X-Goog-Channel-ID": channel.id, "X-Goog-Channel-Expiration": formatdate(channel.expires_at, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": self._resource_uri(self.calendars[channel.calendar_id]),
            "X-Goog-Resource-State": state, "X-Goog-Message-Number": str(channel.messages),
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        note = Notification(channel.address, headers)
        if self.auto_deliver:
            threading.Thread(target=self.deliver, args=([note],), daemon=True).start()
        else:
            self.notifications.append(note)
