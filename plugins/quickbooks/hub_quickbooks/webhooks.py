"""Intuit's webhooks: ``intuit-signature`` = base64 HMAC-SHA256 of the raw body with the app's Verifier Token
(no timestamp: the hub's inbox deduplicates). Both payloads Intuit sends, the legacy ``eventNotifications``
object and the CloudEvents array, are routed by realmId. A notification only says what changed, so handling
it asks for an incremental pull of just that entity: the pull reads the change with everything else new."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hub import ConnectionContext, Unauthorized, VerifiedEvent, WebhookOutcome, WebhookRequest

PULLED = {"customer": "client", "vendor": "vendor", "invoice": "invoice", "payment": "payment", "account": "account"}
"""QuickBooks entity (lower case) -> the inbound entity its change is read into."""


def signature(token: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


def verifier_tokens(environ: Any) -> list[str]:
    """``QUICKBOOKS_VERIFIER_TOKEN``; several, comma-separated, while one is being replaced."""
    return [t.strip() for t in (environ.get("QUICKBOOKS_VERIFIER_TOKEN") or "").split(",") if t.strip()]


def make_verify(tokens: Sequence[str]):
    def verify(request: WebhookRequest, connection: ConnectionContext | None) -> None:
        given = request.headers.get("intuit-signature", "")
        if not tokens:
            raise Unauthorized("no QuickBooks verifier token is configured on this hub")
        if not given or not any(hmac.compare_digest(signature(t, request.body), given) for t in tokens):
            raise Unauthorized("the intuit-signature does not match")

    return verify


def _legacy_event_id(realm: str, change: dict[str, Any]) -> str:
    key = "|".join(str(change.get(k, "")) for k in ("name", "id", "operation", "lastUpdated"))
    return "qbo:" + hashlib.sha256(f"{realm}|{key}".encode()).hexdigest()[:40]


def parse(request: WebhookRequest) -> list[VerifiedEvent]:
    body = json.loads(request.body)
    events: list[VerifiedEvent] = []
    if isinstance(body, dict) and isinstance(body.get("eventNotifications"), list):
        for notification in body["eventNotifications"]:
            realm = str(notification["realmId"])
            for change in (notification.get("dataChangeEvent") or {}).get("entities") or []:
                entity, operation = str(change["name"]).lower(), str(change["operation"]).lower()
                events.append(VerifiedEvent(type=f"qbo.{entity}.{operation}", payload=change, account_id=realm,
                                            event_id=_legacy_event_id(realm, change)))
        return events
    if isinstance(body, list):
        for event in body:
            events.append(VerifiedEvent(type=str(event["type"]), payload=event,
                                        account_id=str(event["intuitaccountid"]), event_id=str(event["id"])))
        return events
    raise ValueError("neither an eventNotifications object nor a CloudEvents array")


def changed_entity(event: VerifiedEvent) -> str | None:
    """The QuickBooks entity an event is about, lower case: ``qbo.payment.create`` (legacy) and
    ``qbo.payment.created.v1`` (CloudEvents) both say ``payment``."""
    parts = event.type.split(".")
    return parts[1].lower() if len(parts) >= 3 and parts[0] == "qbo" else None


async def handle(ctx: ConnectionContext, event: VerifiedEvent) -> WebhookOutcome | None:
    entity = PULLED.get(changed_entity(event) or "")
    if entity is None or (entity == "payment" and not ctx.settings.import_payments):
        return None
    return WebhookOutcome(syncs=[entity])


def make_sample(tokens: Sequence[str]):
    def sample(event_type: str, url: str) -> WebhookRequest:
        """``qbo.payment.create`` -> a legacy notification of Payment 1 in company 1, signed with the first token."""
        parts = event_type.split(".")
        name = parts[1].capitalize() if len(parts) >= 3 else "Payment"
        operation = parts[2].capitalize() if len(parts) >= 3 else "Create"
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        body = json.dumps({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [
            {"name": name, "id": "1", "operation": operation, "lastUpdated": now}]}}]}).encode()
        headers = {"content-type": "application/json"}
        if tokens:
            headers["intuit-signature"] = signature(tokens[0], body)
        return WebhookRequest(body=body, headers=headers, url=url)

    return sample
