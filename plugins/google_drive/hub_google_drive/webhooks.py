"""Drive push notifications. They carry no signature and no content: the channel token the hub set when it
opened the channel (checked in constant time) proves the sender, and a ``change`` only says "read the
changes", which the ``file_change`` read then does from its saved page token."""

from __future__ import annotations

import hmac

from hub import Unauthorized, VerifiedEvent, WebhookOutcome, WebhookRequest
from hub_google_drive.channels import channel_token
from hub_google_drive.syncs import CHANGES


def make_verify(secret: str | None):
    def verify(request: WebhookRequest, connection) -> None:
        channel_id = request.headers.get("x-goog-channel-id", "")
        given = request.headers.get("x-goog-channel-token", "")
        if not secret or connection is None or not channel_id:
            raise Unauthorized("not a Drive notification for this connection")
        if not hmac.compare_digest(channel_token(secret, connection.connection_id, channel_id).encode(),
                                   given.encode()):
            raise Unauthorized("the Drive channel token does not match")

    return verify


def parse(request: WebhookRequest) -> list[VerifiedEvent]:
    headers = request.headers
    channel_id, number = headers["x-goog-channel-id"], headers.get("x-goog-message-number", "")
    state = headers.get("x-goog-resource-state", "")
    return [VerifiedEvent(type=f"drive.{state}", event_id=f"{channel_id}:{number}" if number else None,
                          payload={"channel_id": channel_id, "resource_id": headers.get("x-goog-resource-id"),
                                   "state": state, "message_number": number})]


async def handle(ctx, event: VerifiedEvent) -> WebhookOutcome | None:
    if event.type == "drive.sync":  # the channel is open; nothing changed
        return None
    return WebhookOutcome(syncs=[CHANGES])
