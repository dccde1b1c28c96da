"""DocuSign Connect (JSON SIM messages): ``X-DocuSign-Signature-1`` ... ``-N`` carry one base64 HMAC-SHA256 of
the raw body per active key of the account; a message is authentic when any of them matches any key the hub
is configured with (compared in constant time, every pair). Nothing is timestamped under the signature, so
redeliveries are told apart by what DocuSign keeps stable across them: the envelope, the event, the recipient
and ``generatedDateTime`` (a retry bumps ``retryCount``, which changes the body). Messages are routed by the
DocuSign account id (or by the per-connection URL the hub gives each envelope)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hub import ConnectionContext, Unauthorized, VerifiedEvent, WebhookOutcome, WebhookRequest
from hub_docusign import envelopes

SIGNATURE_HEADER = "x-docusign-signature-"
MAX_SIGNATURES = 100
"""DocuSign allows up to 100 Connect keys per account, one header each."""
ENVELOPE_STATUSES = {"sent": "sent", "delivered": "delivered", "completed": "completed", "declined": "declined",
                     "voided": "voided", "created": "draft"}
RECIPIENT_STATUSES = {"sent": "sent", "delivered": "delivered", "completed": "completed", "declined": "declined",
                      "autoresponded": "autoresponded"}


def signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def make_verify(keys: Sequence[str]):
    def verify(request: WebhookRequest, connection: ConnectionContext | None) -> None:
        if not keys:
            raise Unauthorized("no DocuSign Connect HMAC key is configured on this hub")
        given = [value.strip().encode() for name, value in request.headers.items()
                 if name.startswith(SIGNATURE_HEADER) and name[len(SIGNATURE_HEADER):].isdigit()][:MAX_SIGNATURES]
        expected = [signature(key, request.body).encode() for key in keys]
        matched = False
        for candidate in given:
            for wanted in expected:
                matched |= hmac.compare_digest(candidate, wanted)
        if not matched:
            raise Unauthorized("no X-DocuSign-Signature header matches a configured Connect HMAC key")

    return verify


def event_id(message: dict[str, Any]) -> str | None:
    data = message["data"]
    generated = message.get("generatedDateTime")
    if not generated:
        return None  # the hub hashes the body instead
    key = "|".join(str(part or "") for part in (data.get("envelopeId"), message.get("event"),
                                                data.get("recipientId"), generated))
    return "ds:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def parse(request: WebhookRequest) -> list[VerifiedEvent]:
    message = json.loads(request.body)
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise ValueError("not a Connect JSON SIM message (no event)")
    data = message.get("data")
    if not isinstance(data, dict) or not data.get("envelopeId") or not data.get("accountId"):
        raise ValueError("a Connect message without data.envelopeId and data.accountId")
    return [VerifiedEvent(type=message["event"], payload=message, account_id=str(data["accountId"]),
                          event_id=event_id(message))]


async def handle(ctx: ConnectionContext, event: VerifiedEvent) -> WebhookOutcome | None:
    kind, _, what = event.type.lower().partition("-")
    data = event.payload["data"]
    status = recipient = None
    if kind == "envelope":
        status = ENVELOPE_STATUSES.get(what)
    elif kind == "recipient" and data.get("recipientId") and what in RECIPIENT_STATUSES:
        recipient = (str(data["recipientId"]), RECIPIENT_STATUSES[what])
    else:
        return None
    if ctx.account_id and str(data.get("accountId")) != ctx.account_id:
        ctx.log.warning("a Connect message for another DocuSign account reached connection %s; ignored",
                        ctx.connection_id)
        return None
    summary = data.get("envelopeSummary") if isinstance(data.get("envelopeSummary"), dict) else {}
    # The record and its events are stored as one (writers of the envelope take turns): nothing for the
    # hub to apply after.
    await envelopes.advance(ctx, str(data["envelopeId"]), summary, status=status, recipient=recipient)
    return None


def make_sample(keys: Sequence[str]):
    def sample(event_type: str, url: str) -> WebhookRequest:
        """``envelope-completed`` (or any JSON SIM event) about envelope 1 of account 1, signed with every key."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        body = json.dumps({"event": event_type, "apiVersion": "v2.1", "uri": "/restapi/v2.1/accounts/1/envelopes/1",
                           "retryCount": 0, "configurationId": 0, "generatedDateTime": now,
                           "data": {"accountId": "1", "userId": "1", "envelopeId": "1",
                                    "envelopeSummary": {"status": event_type.partition("-")[2]}}},
                          separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        for n, key in enumerate(keys, start=1):
            headers[f"x-docusign-signature-{n}"] = signature(key, body)
        return WebhookRequest(body=body, headers=headers, url=url)

    return sample
