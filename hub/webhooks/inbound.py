"""Receiving a provider's webhook: verify the raw bytes, parse, route each event to a tenant's
connection, store it in the inbox (once, however often it is redelivered) with its processing job, and
answer in the provider's format. Nothing here waits on a provider or a plugin's handler."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from hub.connections import connection_context
from hub.db.models import Connection, utcnow
from hub.errors import HubError, NotFound, Unauthorized
from hub.handlers import VerifiedEvent, WebhookReply, WebhookRequest, WebhookVerifier
from hub.ids import new_id
from hub.jobs.outbox import describe
from hub.metrics import WEBHOOKS_RECEIVED
from hub.webhooks.intake import ROUTABLE

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.webhooks")

KEPT_BODY_CHARS = 1_048_576


class BodyTooLarge(HubError):
    status = 413
    code = "body_too_large"


@functools.cache
def _received(provider: str, outcome: str):
    """The counter's child, looked up once (``labels`` takes a lock and builds its key on every call)."""
    return WEBHOOKS_RECEIVED.labels(provider, outcome)


def rejected_counter(provider: str) -> str:
    return f"webhooks.rejected:{provider}"


def verifier_for(hub: Hub, provider: str) -> WebhookVerifier:
    verifier = hub.registry.verifiers.get(provider)
    if verifier is None:
        raise NotFound(f"no provider {provider!r} receives webhooks here", code="provider_not_found")
    return verifier


async def receive(
    hub: Hub, provider: str, body: bytes, headers: Mapping[str, str], path: str, query_string: str,
    query: Mapping[str, str], connection_id: uuid.UUID | None = None,
) -> WebhookReply:
    """``headers``' names are lower-case (as ASGI gives them)."""
    verifier = verifier_for(hub, provider)
    if len(body) > verifier.max_body_bytes:
        raise BodyTooLarge(f"the body is over the {verifier.max_body_bytes} bytes {provider} webhooks may have")
    if verifier.per_connection and connection_id is None:
        raise NotFound(f"{provider} webhooks are received at /v1/webhooks/{provider}/{{connection_id}}",
                       code="webhook_url_not_found")
    # The URL the provider called, as it knows it: the public base URL, never the Host header.
    url = hub.settings.public_url + path + (f"?{query_string}" if query_string else "")
    request = WebhookRequest(body=body, headers=dict(headers), url=url, query=dict(query))
    conn = ctx = None
    if connection_id is not None:
        async with hub.session() as session:
            conn = await _path_connection(session, provider, connection_id)
            if conn is None or conn.status not in ROUTABLE:
                raise NotFound("no such connection", code="webhook_url_not_found")
            ctx = await connection_context(hub, session, conn, pending_ok=True)

    try:
        outcome = verifier.verify(request, ctx)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception as exc:
        if not isinstance(exc, Unauthorized):
            log.warning("%s webhook verifier raised %s; rejected", provider, type(exc).__name__)
        hub.webhook_intake.count_rejection(provider)
        _received(provider, "rejected").inc()
        raise Unauthorized(f"the {provider} webhook signature does not verify", code="invalid_signature") from None

    body_hash = hashlib.sha256(body).hexdigest()
    try:
        events = list(verifier.parse(request))
        if not all(isinstance(e, VerifiedEvent) for e in events):
            raise TypeError("parse must return VerifiedEvent objects")
        rows = [_row(provider, event, index, body_hash) for index, event in enumerate(events)]
    except Exception as exc:
        events, rows = [], [_unparseable(provider, body, body_hash, f"unparseable body: {describe(exc)}")]
        log.warning("%s webhook verified but could not be parsed: %s", provider, rows[0]["last_error"])

    def unstorable(reason: str) -> dict[str, Any]:
        return _unparseable(provider, body.replace(b"\x00", b""), body_hash, reason)

    new = await hub.webhook_intake.store(provider, rows, conn, unstorable)  # a redelivery stores nothing new
    _received(provider, "stored").inc(len(new))
    if len(new) < len(rows):
        _received(provider, "duplicate").inc(len(rows) - len(new))
    return verifier.reply(request, events) if verifier.reply is not None else WebhookReply()


async def _path_connection(session: AsyncSession, provider: str, connection_id: uuid.UUID) -> Connection | None:
    conn = await session.get(Connection, connection_id)
    return conn if conn is not None and conn.provider == provider else None


def _row(provider: str, event: VerifiedEvent, index: int, body_hash: str) -> dict[str, Any]:
    key = f"id:{event.event_id}" if event.event_id else f"sha256:{body_hash}:{index}"
    if len(key) > 255:
        key = "id-sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return {
        "id": new_id(), "provider": provider, "dedup_key": key, "event_type": event.type[:200],
        "account_id": event.account_id, "payload": msgspec.to_builtins(event.payload), "body": None,
        "status": "pending", "last_error": None, "job_id": None, "received_at": utcnow(),
    }


def _unparseable(provider: str, body: bytes, body_hash: str, reason: str) -> dict[str, Any]:
    return {
        "id": new_id(), "provider": provider, "dedup_key": f"sha256:{body_hash}", "event_type": None,
        "account_id": None, "payload": None, "body": body.decode("utf-8", "replace")[:KEPT_BODY_CHARS],
        "status": "failed", "last_error": reason, "job_id": None, "received_at": utcnow(),
    }
