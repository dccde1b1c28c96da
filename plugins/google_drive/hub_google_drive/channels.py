"""The push channel that tells the hub when a file it created changes (``changes.watch``).

One channel per connection, kept as the inbound record ``push_channel/changes``: its id, Google's resource
id, its address and when it expires. The hub's periodic per-connection read of ``push_channel`` (every few
hours) opens it the first time, and opens a new one (then stops the old) once the current one is within
``RENEW_BEFORE`` of expiring, or when the hub's public URL moved. Disconnecting stops it.

The channel token is not stored anywhere: it is an HMAC of the connection and channel ids under the hub's
Google client secret (or ``GOOGLE_DRIVE_CHANNEL_SECRET``), so the webhook check recomputes it and compares
in constant time."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from hub import HubError, InboundRecord, NotFound, Page
from hub_google_drive.client import Drive
from hub_google_drive.config import Hosts

log = logging.getLogger("hub_google_drive")

ENTITY = "push_channel"
KEY = "changes"
LIFETIME = timedelta(days=7)
"""What the hub asks for; Drive caps a changes channel at one week."""
RENEW_BEFORE = timedelta(days=2)
EVERY = timedelta(hours=6)


class PushChannel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    channel_id: str
    resource_id: str
    address: str
    expires_at: datetime


def channel_token(secret: str, connection_id: Any, channel_id: str) -> str:
    return hmac.new(secret.encode(), f"drive-channel:{connection_id}:{channel_id}".encode(), hashlib.sha256).hexdigest()


class Renew:
    """The ``push_channel`` inbound sync's pull: keep one live channel per connection."""

    def __init__(self, hosts: Hosts, secret: str | None) -> None:
        self.hosts, self.secret = hosts, secret

    async def __call__(self, ctx, cursor: str | None) -> Page:
        if not self.secret:
            raise HubError("GOOGLE_CLIENT_SECRET (or GOOGLE_DRIVE_CHANNEL_SECRET) is not set: no push channel")
        current = (await ctx.records(ENTITY, [KEY])).get(KEY)
        now = datetime.now(UTC)
        if current is not None:
            expires = datetime.fromisoformat(current["expires_at"])
            if expires - now > RENEW_BEFORE and current["address"] == ctx.webhook_url:
                return Page(records=[InboundRecord(external_id=KEY, data=current)], cursor=None)
        drive = await Drive.of(self.hosts, ctx)
        page_token = await drive.start_page_token()
        channel_id = str(uuid.uuid4())
        expires_ms = int((now + LIFETIME).timestamp() * 1000)
        opened = await drive.watch(page_token, channel_id, ctx.webhook_url,
                                   channel_token(self.secret, ctx.connection_id, channel_id), expires_ms)
        record = {"id": KEY, "channel_id": channel_id, "resource_id": opened["resourceId"],
                  "address": ctx.webhook_url,
                  "expires_at": datetime.fromtimestamp(int(opened.get("expiration") or expires_ms) / 1000, UTC)
                  .isoformat()}
        if current is not None:
            await _stop(drive, current)
        log.info("connection %s: push channel %s open until %s", ctx.connection_id, channel_id, record["expires_at"])
        return Page(records=[InboundRecord(external_id=KEY, data=record)], cursor=None)


async def _stop(drive: Drive, channel: dict[str, Any]) -> None:
    try:
        await drive.stop(channel["channel_id"], channel["resource_id"])
    except NotFound:
        pass  # expired or stopped already
    except HubError as exc:  # it expires on its own within a week; its notifications still verify
        log.warning("push channel %s not stopped: %s", channel["channel_id"], exc.message)


async def stop_current(hosts: Hosts, ctx) -> None:
    current = (await ctx.records(ENTITY, [KEY])).get(KEY)
    if current is not None:
        await _stop(await Drive.of(hosts, ctx), current)
