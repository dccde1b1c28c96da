"""Twilio's webhooks to a connection's own URL (``/v1/webhooks/twilio/{connection_id}``): inbound messages and
status callbacks.

Verified with the SDK's ``RequestValidator`` and the connection's Auth Token, over the URL Twilio called as
Twilio knows it (``HUB_PUBLIC_URL`` + path + query, never the Host header): form bodies with their sorted
parameters, JSON bodies by the ``bodySHA256`` the URL carries. An inbound STOP (or another opt-out word)
puts the sender's number on the tenant's opt-out list, START (YES, UNSTOP) takes it off; status callbacks
keep the message's record at its furthest status. Twilio is answered with TwiML."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.messaging_response import MessagingResponse

from hub import (
    ConnectionContext,
    InboundRecord,
    NewEvent,
    Unauthorized,
    VerifiedEvent,
    WebhookOutcome,
    WebhookReply,
    WebhookRequest,
)
from hub_twilio.config import Credentials
from hub_twilio.messages import OPT_OUTS

MESSAGES = "message"
"""The entity of message records (keyed by Message SID): status, error code, direction."""
OPT_OUT_WORDS = frozenset({"STOP", "UNSUBSCRIBE", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT", "CANCEL"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
STATUS_ORDER = {status: rank for rank, status in enumerate((
    "accepted", "scheduled", "queued", "sending", "sent", "receiving", "received", "partially_delivered",
    "delivered", "read", "undelivered", "failed", "canceled"))}
"""How far along a message is: a callback that arrives late never moves its record back."""
FINAL = frozenset({"delivered", "read", "undelivered", "failed", "canceled", "received"})


class Params(dict):
    """A form body as the SDK's validator reads it: every value of a repeated parameter."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def is_json(request: WebhookRequest) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def verify(request: WebhookRequest, connection: ConnectionContext | None) -> None:
    if connection is None:
        raise Unauthorized("Twilio webhooks are received at the connection's own URL")
    signature = request.headers.get("x-twilio-signature", "")
    token = connection.credentials(Credentials).auth_token
    if not signature or not token:
        raise Unauthorized("no X-Twilio-Signature, or no Auth Token to check it with")
    algorithm = get_signature_algorithm(request.headers.get("x-twilio-webhooks-signature-settings"))
    validator = RequestValidator(token)
    if is_json(request):
        if "bodySHA256" not in parse_qs(urlsplit(request.url).query):
            raise Unauthorized("a JSON webhook from Twilio carries bodySHA256 in its URL")
        params: Any = request.body.decode("utf-8", "replace")
    else:
        params = Params(parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    if not validator.validate(request.url, params, signature, algorithm):
        raise Unauthorized("the X-Twilio-Signature does not match")


def fields(request: WebhookRequest) -> dict[str, Any]:
    if is_json(request):
        body = json.loads(request.body)
        if not isinstance(body, dict):
            raise ValueError("a Twilio JSON webhook is an object")
        return body
    return {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}


def parse(request: WebhookRequest) -> list[VerifiedEvent]:
    params = fields(request)
    sid = str(params.get("MessageSid") or params.get("SmsSid") or "")
    if not sid:
        raise ValueError("no MessageSid: not a messaging webhook")
    account = params.get("AccountSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if "Body" in params or "NumMedia" in params:
        return [VerifiedEvent(type="sms.received", payload=params, account_id=account, event_id=f"in:{sid}")]
    if status:
        return [VerifiedEvent(type="sms.status", payload=params, account_id=account, event_id=f"{sid}:{status}")]
    raise ValueError("neither an inbound message nor a status callback")


def reply(request: WebhookRequest, events: Sequence[VerifiedEvent]) -> WebhookReply:
    """Twilio reads TwiML back; an empty ``<Response/>`` sends no auto-reply."""
    return WebhookReply(status=200, body=str(MessagingResponse()).encode(), content_type="text/xml")


def media_urls(params: dict[str, Any]) -> list[str]:
    count = int(params.get("NumMedia") or 0)
    return [str(params[f"MediaUrl{n}"]) for n in range(min(count, 10)) if params.get(f"MediaUrl{n}")]


async def handle(ctx: ConnectionContext, event: VerifiedEvent) -> WebhookOutcome | None:
    params: dict[str, Any] = event.payload
    now = datetime.now(UTC).isoformat()
    sid = str(params.get("MessageSid") or params.get("SmsSid"))
    if event.type == "sms.received":
        return received(params, sid, now)
    if event.type == "sms.status":
        return await status(ctx, params, sid, now)
    return None


def received(params: dict[str, Any], sid: str, now: str) -> WebhookOutcome:
    sender, to, body = str(params.get("From") or ""), str(params.get("To") or ""), str(params.get("Body") or "")
    message = {"sid": sid, "direction": "inbound", "from": sender, "to": to, "body": body,
               "media_urls": media_urls(params), "status": "received", "received_at": now}
    outcome = WebhookOutcome(records={MESSAGES: [InboundRecord(external_id=sid, data=message)]},
                             events=[NewEvent(type="sms.received", data={
                                 k: message[k] for k in ("sid", "from", "to", "body", "media_urls")})])
    word = body.strip().upper()
    if sender and word in OPT_OUT_WORDS:
        outcome.records[OPT_OUTS] = [InboundRecord(external_id=sender, data={
            "phone_number": sender, "keyword": word, "opted_out_at": now, "message_sid": sid})]
        outcome.events.append(NewEvent(type="sms.opted_out", data={"phone_number": sender, "keyword": word}))
    elif sender and word in OPT_IN_WORDS:
        outcome.deleted[OPT_OUTS] = [sender]
        outcome.events.append(NewEvent(type="sms.opted_in", data={"phone_number": sender, "keyword": word}))
    return outcome


async def status(ctx: ConnectionContext, params: dict[str, Any], sid: str, now: str) -> None:
    """The message's record moves to its furthest status, read and written in one turn (``update_record``):
    two callbacks handled at once by two workers cannot undo each other, and a callback handled again
    (its job retried) records nothing twice."""
    new = str(params.get("MessageStatus") or params.get("SmsStatus"))
    error_code = params.get("ErrorCode") or None

    def change(known: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[NewEvent]]:
        known = known or {}
        seen = list(known.get("statuses_seen", []))
        if new in seen:
            return None, []
        current = known.get("status")
        furthest = current if current is not None and (
            current in FINAL or STATUS_ORDER.get(current, -1) > STATUS_ORDER.get(new, -1)) else new
        record = {**known, "sid": sid, "direction": known.get("direction", "outbound"),
                  "from": params.get("From") or known.get("from"), "to": params.get("To") or known.get("to"),
                  "status": furthest, "statuses_seen": [*seen, new], "updated_at": now}
        if error_code is not None:
            record["error_code"] = str(error_code)
        return record, [NewEvent(type="sms.status", data={
            "sid": sid, "to": record["to"], "status": new, "error_code": error_code})]

    await ctx.update_record(MESSAGES, sid, change)
