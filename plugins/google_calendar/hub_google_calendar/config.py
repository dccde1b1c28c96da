"""Where Google lives (or one override base URL such as the simulator's), the OAuth client, the scopes, the
per-user limits, and the settings a tenant can change on its connection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec

from hub import RateLimit

SLUG = "google_calendar"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
IDENTITY_SCOPES = ("openid", "email")
"""The account's email (the connection's name) comes from OpenID Connect's userinfo."""
RATE_LIMITS = (RateLimit(requests=600, per_seconds=60, concurrency=8),)
"""Google's Calendar quota per user (per connection): 600 requests a minute over a sliding window. Google
documents no concurrency limit; the plugin keeps at most 8 requests of one user in flight so a burst does not
trip Calendar's operational limits on writes to one calendar in quick succession."""
AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"
REVOKE_URL = "https://oauth2.googleapis.com/revoke"
USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"


@dataclass(frozen=True, kw_only=True)
class Google:
    """Google's endpoints and the operator's OAuth client, from ``config.environ``:

    - ``GOOGLE_CLIENT_ID`` / ``GOOGLE_CLIENT_SECRET`` (or ``GOOGLE_CALENDAR_CLIENT_ID`` / ``_SECRET`` when
      Calendar has a client of its own);
    - ``GOOGLE_CALENDAR_SCOPES``: the Calendar scopes to ask for, space-separated (default ``calendar``;
      ``calendar.events`` is narrower, though ``list_calendars`` then has no access);
    - ``GOOGLE_CALENDAR_CHANNEL_SECRET``: the key push-channel tokens are derived from (default: derived
      from the client secret);
    - ``GOOGLE_CALENDAR_BASE_URL``: one server for every Google host (the simulator).
    """

    api_endpoint: str | None
    """None: the discovery document's own ``https://www.googleapis.com/calendar/v3/``."""
    authorize: str
    token: str
    revoke: str
    userinfo: str
    client_id: str | None
    client_secret: str | None
    scopes: tuple[str, ...]
    channel_secret: bytes

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Google:
        base = (environ.get("GOOGLE_CALENDAR_BASE_URL") or "").rstrip("/")
        client_id = environ.get("GOOGLE_CALENDAR_CLIENT_ID") or environ.get("GOOGLE_CLIENT_ID")
        client_secret = environ.get("GOOGLE_CALENDAR_CLIENT_SECRET") or environ.get("GOOGLE_CLIENT_SECRET")
        calendar_scopes = tuple(
            s if s.startswith("https://") else f"https://www.googleapis.com/auth/{s}"
            for s in (environ.get("GOOGLE_CALENDAR_SCOPES") or CALENDAR_SCOPE).split())
        channel = environ.get("GOOGLE_CALENDAR_CHANNEL_SECRET") or f"channel-token-key:{client_secret or ''}"
        hosts = dict(api_endpoint=None, authorize=AUTHORIZE_URL, token=TOKEN_URL, revoke=REVOKE_URL,
                     userinfo=USERINFO_URL)
        if base:
            hosts = dict(api_endpoint=f"{base}/calendar/v3/", authorize=f"{base}/o/oauth2/v2/auth",
                         token=f"{base}/token", revoke=f"{base}/revoke", userinfo=f"{base}/v1/userinfo")
        return cls(**hosts, client_id=client_id, client_secret=client_secret,
                   scopes=IDENTITY_SCOPES + calendar_scopes, channel_secret=channel.encode())


class Reminder(msgspec.Struct, forbid_unknown_fields=True):
    method: Literal["email", "popup"]
    minutes: int

    def __post_init__(self) -> None:
        if not 0 <= self.minutes <= 40320:
            raise ValueError("a reminder is between 0 and 40320 minutes (four weeks) before the event")


DEFAULT_REMINDERS = [Reminder("email", 24 * 60), Reminder("popup", 30)]
"""As the origin: an email a day before, a pop-up 30 minutes before."""


class CalendarSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A connection's settings (``PATCH /v1/connections/google_calendar`` with ``settings``)."""

    calendar_id: str = "primary"
    """The calendar schedule items go to (``list_calendars`` names them); events already made stay where
    they are and are updated there."""
    send_updates: Literal["all", "externalOnly", "none"] = "all"
    """Whom Google emails about a created, changed or deleted event."""
    reminders: list[Reminder] = msgspec.field(default_factory=lambda: list(DEFAULT_REMINDERS))
    """At most five; an empty list uses the calendar's default reminders."""
    push_notifications: bool = True
    """Watch the calendar (a push channel), so a change made in Google is read within seconds."""
    import_all_events: bool = False
    """Read every event of the calendar into the hub's records, not only the ones the hub made."""
    auto_sync: bool = True
    """The tenant's own ``schedule_item.created`` / ``.updated`` / ``.deleted`` events push that item."""

    def __post_init__(self) -> None:
        if len(self.reminders) > 5:
            raise ValueError("Google takes at most five reminders")
        if not self.calendar_id or len(self.calendar_id) > 1024:
            raise ValueError("calendar_id is a calendar's id (or 'primary')")
