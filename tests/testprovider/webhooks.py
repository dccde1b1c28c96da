"""The test providers' webhooks, shaped like real ones.

``testoauth`` signs like Stripe: header ``x-test-signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"t.body">`` with any of the app's secrets (``TESTOAUTH_WEBHOOK_SECRETS``, comma-separated, for
rotation), 300 s tolerance, JSON ``{"id", "type", "account", "data"}`` events routed by account.
``testkeys`` signs like Twilio: per connection (the secret is the connection's API key), over the URL
it called plus the body, and expects an XML answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from hub import (
    InboundRecord,
    NewEvent,
    ProviderError,
    Unauthorized,
    VerifiedEvent,
    WebhookOutcome,
    WebhookReply,
    WebhookRequest,
    WebhookVerifier,
)

TOLERANCE_SECONDS = 300


def oauth_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def keys_signature(api_key: str, url: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(api_key.encode(), url.encode() + body, hashlib.sha256).digest()).decode()


def oauth_verifier(config) -> WebhookVerifier:
    secrets = [s for s in config.environ.get("TESTOAUTH_WEBHOOK_SECRETS", "").split(",") if s]

    def verify(request: WebhookRequest, connection) -> None:
        parts = dict(p.split("=", 1) for p in request.headers.get("x-test-signature", "").split(",") if "=" in p)
        timestamp, given = parts.get("t", ""), parts.get("v1", "")
        signed = f"{timestamp}.".encode() + request.body
        if not any(hmac.compare_digest(hmac.new(s.encode(), signed, hashlib.sha256).hexdigest(), given)
                   for s in secrets):
            raise Unauthorized("signature mismatch")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            raise Unauthorized("timestamp outside the tolerance")

    def parse(request: WebhookRequest) -> list[VerifiedEvent]:
        body = json.loads(request.body)
        events = body if isinstance(body, list) else [body]
        return [VerifiedEvent(type=e["type"], payload=e["data"], account_id=e.get("account"), event_id=e.get("id"))
                for e in events]

    async def handle(ctx, event: VerifiedEvent) -> WebhookOutcome | None:
        data = event.payload
        if event.type == "payment.created":
            payment = {"id": data["id"], "amount": data["amount"], "currency": "USD",
                       "payment_date": data.get("date", "2026-11-01"), "invoice_id": data.get("invoice_id")}
            return WebhookOutcome(
                records={"payment": [InboundRecord(external_id=data["id"], data=payment)]},
                events=[NewEvent(type="payment.received", data={"payment_id": data["id"], "amount": data["amount"]})],
            )
        if event.type == "payment.deleted":
            return WebhookOutcome(deleted={"payment": [data["id"]]})
        if event.type == "payments.changed":
            return WebhookOutcome(syncs=["payment"])
        if event.type == "flaky":
            raise ProviderError(f"the provider is having a bad day ({data.get('note', '')})")
        return None

    def sample(event_type: str, url: str) -> WebhookRequest:
        body = json.dumps({"id": f"evt_{int(time.time() * 1000)}", "type": event_type, "account": "acct-42",
                           "data": {"id": "pay_sample", "amount": "1.00"}}).encode()
        return WebhookRequest(body=body, url=url, headers={"content-type": "application/json",
                                                           "x-test-signature": oauth_signature(secrets[0], body)})

    return WebhookVerifier(provider="testoauth", verify=verify, parse=parse, handle=handle, sample=sample,
                           max_body_bytes=65_536)


def keys_verifier(fields) -> WebhookVerifier:
    def verify(request: WebhookRequest, connection) -> None:
        api_key = connection.credentials(fields).api_key
        expected = keys_signature(api_key, request.url, request.body)
        if not hmac.compare_digest(expected, request.headers.get("x-testkeys-signature", "")):
            raise Unauthorized("signature mismatch")

    def parse(request: WebhookRequest) -> list[VerifiedEvent]:
        form = dict(p.split("=", 1) for p in request.body.decode().split("&") if "=" in p)
        return [VerifiedEvent(type="message.received", payload=form, event_id=form["MessageSid"])]

    async def handle(ctx, event: VerifiedEvent) -> WebhookOutcome:
        return WebhookOutcome(events=[NewEvent(type="sms.received", data={"from": event.payload.get("From"),
                                                                          "body": event.payload.get("Body")})])

    def reply(request: WebhookRequest, events) -> WebhookReply:
        return WebhookReply(body=b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>',
                            content_type="application/xml")

    return WebhookVerifier(provider="testkeys", verify=verify, parse=parse, handle=handle, reply=reply,
                           per_connection=True)
