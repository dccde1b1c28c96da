"""Sending: one message, and many through the hub's outbound sync of the ``sms`` entity (one mapping per
recipient, written after each send, so a repeated bulk send skips whoever was already texted).

Every send checks the tenant's opt-out list first and is refused before Twilio sees it; Twilio's own
21610 becomes the same error. Twilio takes no idempotency key for messages, so a send whose answer was
lost (a dropped connection, a 5xx) is looked for among the recipient's recent messages before it is
reported failed: found, it counts as sent."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from hub import ConnectionContext, HubError, NewEvent, OutboundItem, ProviderError, PushResult, ValidationFailed
from hub_twilio.client import RecipientOptedOut, TwilioFailed, refusal, sdk_client
from hub_twilio.config import E164, Credentials, TwilioSettings, send_scope

OPT_OUTS = "opt_out"
"""The entity of the tenant's opt-out list: one record per phone number (``GET .../twilio/opt-outs``)."""
SMS = "sms"
"""The outbound entity of bulk sends: one record per message, ``id`` chosen by the tenant."""
MAX_MEDIA = 10
MAX_BODY = 1600
RECENT = timedelta(minutes=10)


def check_message(to: str, body: str, media_urls: Sequence[str]) -> None:
    if not E164.match(to):
        raise ValueError(f"to must be a phone number in E.164 form, such as +15017122661, not {to!r}")
    if not body.strip() and not media_urls:
        raise ValueError("a message needs a body or media_urls")
    if len(body) > MAX_BODY:
        raise ValueError(f"body is longer than Twilio sends ({MAX_BODY} characters)")
    if len(media_urls) > MAX_MEDIA:
        raise ValueError(f"at most {MAX_MEDIA} media_urls")
    for url in media_urls:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"media_urls are http(s) URLs Twilio can fetch, not {url[:40]!r}")


class SmsMessage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One message of a bulk send (the ``sms`` entity). ``id`` is the tenant's: the same id is texted once."""

    id: str
    to: str
    body: str = ""
    media_urls: list[str] = []

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > 255:
            raise ValueError("id is 1 to 255 characters")
        check_message(self.to, self.body, self.media_urls)


async def remember_opt_out(ctx: ConnectionContext, number: str) -> None:
    """Twilio says the number opted out (21610) where the hub did not know: it goes on the tenant's list."""
    now = ctx.now().isoformat()

    def change(current: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[NewEvent]]:
        if current is not None:
            return None, []
        return ({"phone_number": number, "keyword": "twilio:21610", "opted_out_at": now, "message_sid": None},
                [NewEvent(type="sms.opted_out", data={"phone_number": number, "keyword": "twilio:21610"})])

    await ctx.update_record(OPT_OUTS, number, change)


class Sent(msgspec.Struct, kw_only=True):
    sid: str
    status: str
    to: str
    sender: str
    body: str


class Sender:
    """Sends through the SDK for one connection, after its opt-out list allows it."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url
        self._bulk_locks: weakref.WeakValueDictionary[tuple[Any, str], asyncio.Lock] = weakref.WeakValueDictionary()

    def client(self, ctx: ConnectionContext) -> Client:
        return sdk_client(ctx.http, ctx.credentials(Credentials), base_url=self.base_url,
                          send_scope=send_scope(ctx.settings))

    @staticmethod
    def settings(ctx: ConnectionContext) -> TwilioSettings:
        settings: TwilioSettings = ctx.settings
        if not settings.sender:
            raise ValidationFailed("the Twilio connection has no sender: PATCH /v1/connections/twilio with "
                                   '{"settings": {"sender": "+1..." or "MG..."}}', code="sender_not_set")
        return settings

    async def opted_out(self, ctx: ConnectionContext, numbers: Sequence[str]) -> set[str]:
        return set(await ctx.records(OPT_OUTS, numbers))

    async def send(self, ctx: ConnectionContext, to: str, body: str, media_urls: Sequence[str] = ()) -> Sent:
        """One message, or the hub's error saying why not (opted out, invalid number, Twilio's refusal)."""
        settings = self.settings(ctx)
        if await self.opted_out(ctx, [to]):
            raise RecipientOptedOut(to)
        return await self._create(ctx, settings, self.client(ctx), to, body, media_urls)

    async def _create(self, ctx: ConnectionContext, settings: TwilioSettings, client: Client, to: str, body: str,
                      media_urls: Sequence[str]) -> Sent:
        credentials = ctx.credentials(Credentials)
        params: dict[str, Any] = ctx.to_provider(SMS, SmsMessage(id="-", to=to, body=body,
                                                                 media_urls=list(media_urls)))
        if settings.is_service:
            params["messaging_service_sid"] = settings.sender
        else:
            params["from_"] = settings.sender
        if settings.status_callbacks and credentials.auth_token:  # callbacks are verified with the Auth Token
            params["status_callback"] = ctx.webhook_url
        started = datetime.now(UTC)
        try:
            message = await client.messages.create_async(**params)
        except TwilioRestException as exc:
            if exc.status < 500:
                error = refusal(exc, "message send", to)
                if isinstance(error, RecipientOptedOut):
                    await remember_opt_out(ctx, to)
                raise error from None
            found = await self._find(client, to, body, started)
            if found is None:
                raise TwilioFailed(exc, "message send") from None
            message = found
        except httpx.TransportError as exc:  # sent or not, no answer came back: did Twilio take it?
            found = await self._find(client, to, body, started)
            if found is None:
                raise ProviderError(f"Twilio did not answer the message send ({type(exc).__name__}) and has no "
                                    "such message: it was not sent", code="twilio_unreachable") from None
            message = found
        return Sent(sid=message.sid, status=message.status, to=to, body=body,
                    sender=message.from_ or message.messaging_service_sid or settings.sender)

    async def _find(self, client: Client, to: str, body: str, since: datetime):
        """The message to ``to`` with this body created since ``since`` (a minute of clock skew allowed)."""
        try:
            recent = await client.messages.list_async(to=to, limit=20)
        except (TwilioRestException, httpx.TransportError):
            return None
        floor = since - timedelta(minutes=1)
        return next((m for m in recent if m.body == body and m.date_created and m.date_created >= floor), None)

    # -- bulk --------------------------------------------------------------------------------------------
    async def push(self, ctx: ConnectionContext, items: Sequence[OutboundItem]) -> list[PushResult]:
        """The ``sms`` outbound sync: each item is texted unless it was before (it has a provider id), its
        recipient opted out, or Twilio refuses it; one result each, a failure never stopping the rest."""
        settings = self.settings(ctx)
        client = self.client(ctx)
        opted_out = await self.opted_out(ctx, [item.record.to for item in items if not item.external_id])
        results = []
        for item in items:
            message: SmsMessage = item.record
            if item.external_id:  # texted already (a retried or repeated bulk send): never again
                results.append(PushResult(internal_id=item.internal_id, external_id=item.external_id,
                                          outcome="unchanged"))
                continue
            try:
                if message.to in opted_out:
                    raise RecipientOptedOut(message.to)
                sent = await self._create(ctx, settings, client, message.to, message.body, message.media_urls)
            except HubError as exc:
                results.append(PushResult(internal_id=item.internal_id, outcome="failed",
                                          error=f"{exc.code}: {exc.message}"))
                continue
            results.append(PushResult(internal_id=item.internal_id, external_id=sent.sid, outcome="created",
                                      metadata={"status": sent.status, "sender": sent.sender}))
        return results

    def bulk_lock(self, ctx: ConnectionContext, bulk_id: str) -> asyncio.Lock:
        """One run at a time of the same bulk send in this process (a client retrying while it runs)."""
        key = (ctx.connection_id, bulk_id)
        lock = self._bulk_locks.get(key)
        if lock is None:
            lock = self._bulk_locks[key] = asyncio.Lock()
        return lock
