"""Stripe's webhooks.

Verification: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`` checked by the SDK
(``stripe.WebhookSignature.verify_header``, constant-time) against every active endpoint secret (two
during a rotation); the timestamp may be at most 300 s old (the SDK's default tolerance) and — which the
SDK does not check — at most 60 s ahead of our clock. Platform mode: the operator's Connect endpoint
(``POST /v1/webhooks/stripe``, ``STRIPE_WEBHOOK_SECRET``) with events routed by their ``account``; own key:
the connection's own endpoint (``POST /v1/webhooks/stripe/{connection_id}``) with its own secrets.

Handling: redeliveries of an event are stored once by the hub's inbox (its id). Beyond that, applying a
payment is idempotent and order-safe: a succeeded intent is one ``payment`` record (the core's shape)
whose ``payment.succeeded`` is recorded when the record is first stored, whatever event carries it; a
failed attempt is a ``payment_failure`` record of its own (keyed by intent and charge), so it can never
overwrite a success, and one arriving after the success is ignored.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import stripe

from hub import (
    ConnectionContext,
    InboundRecord,
    NewEvent,
    Unauthorized,
    VerifiedEvent,
    WebhookOutcome,
    WebhookRequest,
)
from hub_stripe.client import Credentials, StripeConfig, account_info
from hub_stripe.mappers import payment_record, to_major

TOLERANCE_SECONDS = 300
FUTURE_SKEW_SECONDS = 60


def _timestamp(header: str) -> int | None:
    for part in header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "t" and value.strip().isdigit():
            return int(value.strip())
    return None


def check_signature(body: bytes, header: str, secrets: list[str] | tuple[str, ...], now: float | None = None) -> None:
    """Raise ``Unauthorized`` unless one of ``secrets`` signed ``body`` within the tolerance."""
    if not secrets:
        raise Unauthorized("no Stripe webhook secret is configured for this endpoint")
    now = time.time() if now is None else now
    timestamp = _timestamp(header)
    if timestamp is None:
        raise Unauthorized("the Stripe-Signature header is missing or malformed")
    if timestamp > now + FUTURE_SKEW_SECONDS:
        raise Unauthorized("the Stripe-Signature timestamp is in the future")
    if timestamp < now - TOLERANCE_SECONDS:
        raise Unauthorized("the Stripe-Signature timestamp is too old")
    matched = False
    for secret in secrets:  # every secret, so the time taken does not tell which one matched
        try:
            # The age was checked above, both ways, on one clock: the SDK checks the signature.
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance=None)
            matched = True
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
            pass
    if not matched:
        raise Unauthorized("the Stripe-Signature does not match")


def make_verify(config: StripeConfig):
    def verify(request: WebhookRequest, connection: ConnectionContext | None) -> None:
        secrets: tuple[str, ...] | list[str] = config.connect_webhook_secrets
        if connection is not None:
            credentials = connection.credentials(Credentials)
            if not credentials.platform:
                secrets = credentials.webhook_secrets
        check_signature(request.body, request.headers.get("stripe-signature", ""), secrets)

    return verify


def parse(request: WebhookRequest) -> list[VerifiedEvent]:
    event = json.loads(request.body)
    if not isinstance(event, dict) or event.get("object") != "event" or not isinstance(event.get("data"), dict):
        raise ValueError("not a Stripe event")
    return [VerifiedEvent(type=str(event["type"]), payload=event, account_id=event.get("account"),
                          event_id=str(event["id"]))]


async def handle(ctx: ConnectionContext, event: VerifiedEvent) -> WebhookOutcome | None:
    payload: dict[str, Any] = event.payload
    obj = payload["data"]["object"]
    if event.type == "payment_intent.succeeded":
        return _succeeded(ctx, obj, payload.get("created") or obj.get("created") or int(time.time()))
    if event.type == "payment_intent.payment_failed":
        return await _failed(ctx, obj)
    if event.type == "account.updated" and ctx.metadata.get("mode") == "platform" and obj.get("id") == ctx.account_id:
        return WebhookOutcome(account=account_info(obj))
    return None


def _event_data(intent: dict[str, Any], failure: str | None) -> dict[str, Any]:
    metadata = intent.get("metadata") or {}
    return {"payment_intent_id": intent["id"], "invoice_id": metadata.get("invoice_id"),
            "client_id": metadata.get("client_id"), "amount": str(to_major(intent["amount"], intent["currency"])),
            "currency": intent["currency"].upper(), "failure_message": failure}


def _succeeded(ctx: ConnectionContext, intent: dict[str, Any], created: int) -> WebhookOutcome:
    record = InboundRecord(external_id=intent["id"], data=payment_record(intent, created, ctx.timezone),
                           new_events=[NewEvent(type="payment.succeeded", data=_event_data(intent, None))])
    return WebhookOutcome(records={"payment": [record]})


async def _failed(ctx: ConnectionContext, intent: dict[str, Any]) -> WebhookOutcome | None:
    if await ctx.records("payment", [intent["id"]]):
        return None  # the intent succeeded: an earlier attempt's failure arriving late changes nothing
    error = intent.get("last_payment_error") or {}
    attempt = intent.get("latest_charge") or error.get("charge") or hashlib.sha256(
        json.dumps(error, sort_keys=True).encode()).hexdigest()[:16]
    message = error.get("message") or "the payment failed"
    data = _event_data(intent, message)
    record = InboundRecord(
        external_id=f"{intent['id']}:{attempt}",
        data=data | {"code": error.get("code"), "decline_code": error.get("decline_code")},
        new_events=[NewEvent(type="payment.failed", data=data)],
    )
    return WebhookOutcome(records={"payment_failure": [record]})


def make_sample(config: StripeConfig):
    def sample(event_type: str, url: str) -> WebhookRequest:
        now = int(time.time())
        intent = {"id": "pi_sample", "object": "payment_intent", "amount": 12500, "amount_received": 12500,
                  "currency": "usd", "status": "succeeded", "latest_charge": "ch_sample",
                  "metadata": {"invoice_id": "inv-sample"}}
        event = {"id": f"evt_sample_{now}", "object": "event", "type": event_type, "created": now,
                 "account": "acct_sample", "data": {"object": intent}}
        body = json.dumps(event).encode()
        secret = (config.connect_webhook_secrets or ("whsec_unset",))[0]
        signature = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, now)
        return WebhookRequest(body=body, url=url, headers={"content-type": "application/json",
                                                           "stripe-signature": signature})

    return sample
