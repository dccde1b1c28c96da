"""Where Twilio lives (or the one override base URL, such as the simulator's), what a tenant connects with,
and the settings of a connection: its sender, the sender's messages per second, and the message templates."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Annotated

import msgspec

from hub import RateLimit

SLUG = "twilio"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
RATE_LIMITS = (RateLimit(requests=100, per_seconds=1, concurrency=25),)
"""Per connection: Twilio limits an account's concurrent REST requests (a 429 with error 20429 past it); 25 at
once and 100 a second keeps one connection well inside it. Sends also hold their sender's limit below."""


def base_url(environ: Mapping[str, str]) -> str | None:
    """``TWILIO_BASE_URL`` sends every Twilio request (api.twilio.com and the rest) to that one server."""
    return (environ.get("TWILIO_BASE_URL") or "").rstrip("/") or None


class Credentials(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An Account SID with its Auth Token, or with an API key (SID + secret). Twilio signs webhooks with the
    Auth Token: give it with an API key too, or inbound messages and status callbacks cannot be verified."""

    account_sid: Annotated[str, msgspec.Meta(
        title="Account SID", description="On the Twilio Console's home page; it starts with AC.")]
    auth_token: Annotated[str, msgspec.Meta(
        description="Next to the Account SID on the Console. Twilio signs its webhooks with it.",
        extra_json_schema={"writeOnly": True})] | None = None
    api_key_sid: Annotated[str, msgspec.Meta(
        title="API key SID", description="To call Twilio with an API key instead; it starts with SK.")] | None = None
    api_key_secret: Annotated[str, msgspec.Meta(
        description="Shown once, when the API key is made.", extra_json_schema={"writeOnly": True})] | None = None

    def __post_init__(self) -> None:
        if not ACCOUNT_SID.match(self.account_sid):
            raise ValueError("account_sid is AC followed by 32 hexadecimal digits")
        if (self.api_key_sid is None) != (self.api_key_secret is None):
            raise ValueError("api_key_sid and api_key_secret come together")
        if self.api_key_sid is not None and not KEY_SID.match(self.api_key_sid):
            raise ValueError("api_key_sid is SK followed by 32 hexadecimal digits")
        if not self.auth_token and self.api_key_sid is None:
            raise ValueError("give auth_token, or api_key_sid and api_key_secret")

    def __repr__(self) -> str:  # never let a token or secret reach a log through repr()
        return f"Credentials(account_sid={self.account_sid!r}, api_key_sid={self.api_key_sid!r})"

    @property
    def login(self) -> tuple[str, str]:
        """What the REST API is called with: the API key when there is one."""
        if self.api_key_sid is not None:
            return self.api_key_sid, self.api_key_secret or ""
        return self.account_sid, self.auth_token or ""


SCHEDULE_REMINDER = "Reminder: {task} scheduled for {date} on {job}. - RossOS"
DAILY_LOG = "Daily Update - {job} ({date})\n\n{summary}"
DAILY_LOG_PHOTOS = "\n\n{photo_count} photos added. View in your client portal."
SELECTION_REMINDER = ('Hi {client_name}, your selection "{selection}" is due {due_in}. Please make your choice in '
                      "the client portal. - RossOS")
PLACEHOLDERS = {
    "schedule_reminder": {"task", "job", "date"},
    "daily_log": {"job", "date", "summary", "photo_count"},
    "daily_log_photos": {"job", "date", "summary", "photo_count"},
    "selection_reminder": {"client_name", "selection", "due_date", "days_left", "due_in"},
}


class Templates(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The texts of the message templates, ``{name}`` placeholders filled in (the origin's wording unless the
    tenant changes them). ``daily_log_photos`` is appended to ``daily_log`` when the log has photos."""

    schedule_reminder: str = SCHEDULE_REMINDER
    """{task}, {job}, {date} (e.g. "Tue, Dec 1", in the tenant's time zone)."""
    daily_log: str = DAILY_LOG
    """{job}, {date} (e.g. "12/1/2026"), {summary}, {photo_count}."""
    daily_log_photos: str = DAILY_LOG_PHOTOS
    selection_reminder: str = SELECTION_REMINDER
    """{client_name}, {selection}, {due_date}, {days_left} (a number), {due_in} ("in 3 days", "tomorrow",
    "today", "2 days ago")."""

    def __post_init__(self) -> None:
        for name, allowed in PLACEHOLDERS.items():
            text = getattr(self, name)
            if len(text) > 1600:
                raise ValueError(f"templates.{name} is longer than an SMS can be (1600 characters)")
            try:
                parsed = [(field, spec, conv) for _, field, spec, conv in string.Formatter().parse(text)
                          if field is not None]
            except ValueError as exc:
                raise ValueError(f"templates.{name}: {exc} (write {{{{ and }}}} for literal braces)") from None
            if any(spec or conv for _, spec, conv in parsed):
                raise ValueError(f"templates.{name}: placeholders take no format (write {{job}}, not {{job:>9}})")
            used = {field for field, _, _ in parsed}
            unknown = sorted(used - allowed)
            if unknown:
                raise ValueError(f"templates.{name} uses {{{unknown[0]}}}; it may use "
                                 + ", ".join(f"{{{p}}}" for p in sorted(allowed)))


class TwilioSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A connection's settings (``PUT`` with the credentials, or ``PATCH /v1/connections/twilio``)."""

    sender: Annotated[str, msgspec.Meta(
        description="The number texts come from (e.g. +15017122661) or a Messaging Service SID (MG...).")] = ""
    """The phone number messages come from (E.164, e.g. +15017122661) or a Messaging Service SID (MG...)."""
    messages_per_second: Annotated[int, msgspec.Meta(
        description="1 for a US long code, about 3 for toll-free, 100 for a short code.")] = 1
    """What each sender may send: 1 for a US long code (Twilio's default), about 3 for toll-free, 100 for a
    short code. The hub holds every send of the connection to it."""
    senders: int = 1
    """How many numbers the Messaging Service sends from (ignored for a single number): the service may send
    ``senders`` times ``messages_per_second``."""
    status_callbacks: Annotated[bool, msgspec.Meta(
        title="Delivery reports", description="Twilio tells the hub when each message is delivered.")] = True
    """Ask Twilio to report each message's status to the hub (``sms.status`` events)."""
    templates: Templates = msgspec.field(default_factory=Templates)

    def __post_init__(self) -> None:
        if self.sender and not (E164.match(self.sender) or SERVICE_SID.match(self.sender)):
            raise ValueError("sender is a phone number in E.164 form (+15017122661) or a Messaging Service SID "
                             "(MG and 32 hexadecimal digits)")
        if not 1 <= self.messages_per_second <= 1000:
            raise ValueError("messages_per_second is between 1 and 1000")
        if not 1 <= self.senders <= 400:
            raise ValueError("senders is between 1 and 400")

    @property
    def is_service(self) -> bool:
        return bool(SERVICE_SID.match(self.sender))


def send_scope(settings: TwilioSettings) -> str:
    """The throttle scope of the connection's sends: one per sender."""
    return f"send:{settings.sender}"


def sender_limits(settings: TwilioSettings) -> tuple[RateLimit, ...]:
    """The sender's messages per second (a Messaging Service's numbers together) on its sends' scope."""
    pool = settings.senders if settings.is_service else 1
    return (RateLimit(requests=settings.messages_per_second * pool, per_seconds=1, scope=send_scope(settings)),)
