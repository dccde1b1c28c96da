"""Google's push notifications for a connection's calendar, at the connection's own webhook URL.

Google signs nothing: a notification is authentic when its ``X-Goog-Channel-Token`` is the token the hub
gave the channel (derived from the operator's channel secret and the channel id, compared in constant time)
and its channel id and resource id are those of the connection's live channel. It carries no data either
(no body), only that the calendar changed: handling it asks for an incremental read, which finds the change.
The first message of a channel (``sync``) says nothing changed. Each message of a channel has its own number,
which deduplicates Google's retries."""

from __future__ import annotations

import hmac

from hub import ConnectionContext, Unauthorized, VerifiedEvent, WebhookOutcome, WebhookRequest
from hub_google_calendar.channels import channel_token
from hub_google_calendar.config import Google
from hub_google_calendar.syncs import ENTITY


def make_verify(google: Google):
    def verify(request: WebhookRequest, connection: ConnectionContext | None) -> None:
        if connection is None:
            raise Unauthorized("Google Calendar notifications come to a connection's own URL")
        channel = connection.metadata.get("channel") or {}
        given_channel = request.headers.get("x-goog-channel-id", "")
        given_token = request.headers.get("x-goog-channel-token", "")
        given_resource = request.headers.get("x-goog-resource-id", "")
        expected = channel_token(google.channel_secret, connection.connection_id, given_channel)
        token_ok = hmac.compare_digest(given_token.encode(), expected.encode())
        channel_ok = bool(channel) and hmac.compare_digest(given_channel.encode(), str(channel.get("id")).encode())
        resource_ok = bool(channel) and hmac.compare_digest(given_resource.encode(),
                                                            str(channel.get("resource_id")).encode())
        if not (token_ok and channel_ok and resource_ok):
            raise Unauthorized("not a notification of this connection's Google Calendar channel")

    return verify


def parse(request: WebhookRequest) -> list[VerifiedEvent]:
    channel = request.headers["x-goog-channel-id"]
    state = request.headers.get("x-goog-resource-state", "exists")
    number = request.headers.get("x-goog-message-number", "")
    if not number.isdigit():
        raise ValueError("a Google notification carries its X-Goog-Message-Number")
    return [VerifiedEvent(type=f"google_calendar.push.{state}", event_id=f"{channel}:{number}", payload={
        "channel_id": channel, "resource_id": request.headers.get("x-goog-resource-id"), "state": state,
        "message_number": int(number)})]


async def handle(ctx: ConnectionContext, event: VerifiedEvent) -> WebhookOutcome | None:
    if event.payload.get("state") == "sync":
        return None  # the channel is open; nothing changed
    return WebhookOutcome(syncs=[ENTITY])
