"""The push channel that tells the hub a connection's calendar changed.

Google pushes nothing unless the hub ``watch``es the calendar: a channel with an id the hub picks, the
connection's own webhook URL, and a token Google echoes in ``X-Goog-Channel-Token``. The token is not stored:
it is derived from the operator's channel secret and the (connection, channel) pair, so the verifier can
recompute it and compare in constant time. The channel's id, Google's resource id and its expiry are kept in
the connection's metadata (no secret there). Channels expire (a week, as asked for), so each inbound read —
run by the hub's scheduler every hour per connection, and after every notification — renews a channel that
expires within ``RENEW_BEFORE``: a new channel first, then the old one stopped. A disconnect stops it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from hub import ConnectionContext
from hub_google_calendar.client import CalendarApi, CalendarError
from hub_google_calendar.config import Google

CHANNEL_TTL = timedelta(days=7)
RENEW_BEFORE = timedelta(days=2)
"""Renew when less than this is left: many scheduled reads fall in that time, so one failing does no harm."""


def channel_token(secret: bytes, connection_id: Any, channel_id: str) -> str:
    digest = hmac.new(secret, f"{connection_id}:{channel_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _expiry(answer: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(answer["expiration"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC) + CHANNEL_TTL


async def ensure(ctx: ConnectionContext, api: CalendarApi, google: Google, calendar_id: str) -> None:
    """A live channel on ``calendar_id`` for the next ``RENEW_BEFORE`` at least (or none, when the tenant
    switched push notifications off). A refusal from Google is logged; the scheduled reads still run."""
    current = ctx.metadata.get("channel")
    if not ctx.settings.push_notifications:
        if current:
            await stop(ctx, api)
        return
    if current and current.get("calendar_id") == calendar_id and \
            datetime.fromisoformat(current["expires_at"]) - datetime.now(UTC) > RENEW_BEFORE:
        return
    channel_id = uuid.uuid4().hex
    try:
        answer = await api.watch(calendar_id, channel_id, ctx.webhook_url,
                                 channel_token(google.channel_secret, ctx.connection_id, channel_id),
                                 int(CHANNEL_TTL.total_seconds()))
    except CalendarError as exc:
        ctx.log.warning("connection %s: Google refused the push channel: %s", ctx.connection_id, exc.message)
        return
    except httpx.HTTPError as exc:  # the read itself went through: it is stored, and the next read tries again
        ctx.log.warning("connection %s: no push channel (%s)", ctx.connection_id, type(exc).__name__)
        return
    await ctx.save_metadata({"channel": {"id": channel_id, "resource_id": answer["resourceId"],
                                         "calendar_id": calendar_id, "expires_at": _expiry(answer).isoformat()}})
    if current:
        await _stop_at_google(ctx, api, current)


async def stop(ctx: ConnectionContext, api: CalendarApi) -> None:
    current = ctx.metadata.get("channel")
    if current:
        await ctx.save_metadata({"channel": None})
        await _stop_at_google(ctx, api, current)


async def _stop_at_google(ctx: ConnectionContext, api: CalendarApi, channel: dict[str, Any]) -> None:
    try:
        await api.stop(channel["id"], channel["resource_id"])
    except CalendarError as exc:  # expired or gone already: nothing more will come from it
        ctx.log.info("connection %s: channel %s not stopped: %s", ctx.connection_id, channel["id"], exc.message)
