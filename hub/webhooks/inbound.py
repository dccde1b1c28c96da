"""Receiving a provider's webhook: verify the raw bytes, parse, route each event to a tenant's
connection, store it in the inbox (once, however often it is redelivered) with its processing job, and
answer in the provider's format. Nothing here waits on a provider or a plugin's handler."""

from __future__ import annotations

import hashlib
import inspect
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from hub.connections import connection_context
from hub.counters import reserve
from hub.db.models import Connection, WebhookInbox, utcnow
from hub.errors import HubError, NotFound, Unauthorized
from hub.handlers import VerifiedEvent, WebhookReply, WebhookRequest, WebhookVerifier
from hub.jobs.outbox import describe, enqueue

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.webhooks")

PROCESS_JOB = "webhook.process"
MAX_ATTEMPTS = 8
KEPT_BODY_CHARS = 1_048_576


class BodyTooLarge(HubError):
    status = 413
    code = "body_too_large"


@dataclass(frozen=True)
class Received:
    reply: WebhookReply
    stored: int
    """New inbox rows (redeliveries store none)."""
    duplicates: int


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
) -> Received:
    verifier = verifier_for(hub, provider)
    if len(body) > verifier.max_body_bytes:
        raise BodyTooLarge(f"the body is over the {verifier.max_body_bytes} bytes {provider} webhooks may have")
    if verifier.per_connection and connection_id is None:
        raise NotFound(f"{provider} webhooks are received at /v1/webhooks/{provider}/{{connection_id}}",
                       code="webhook_url_not_found")
    # The URL the provider called, as it knows it: the public base URL, never the Host header.
    url = hub.settings.public_url + path + (f"?{query_string}" if query_string else "")
    request = WebhookRequest(body=body, headers={k.lower(): v for k, v in headers.items()}, url=url,
                             query=dict(query))
    async with hub.session() as session:
        conn = await _path_connection(session, provider, connection_id) if connection_id else None
        ctx = await connection_context(hub, session, conn) if conn is not None and conn.status == "connected" \
            else None
    if connection_id is not None and ctx is None:
        raise NotFound("no such connection", code="webhook_url_not_found")

    try:
        outcome = verifier.verify(request, ctx)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception as exc:
        if not isinstance(exc, Unauthorized):
            log.warning("%s webhook verifier raised %s; rejected", provider, type(exc).__name__)
        async with hub.session() as session:
            await reserve(session, rejected_counter(provider))
        raise Unauthorized(f"the {provider} webhook signature does not verify", code="invalid_signature") from None

    body_hash = hashlib.sha256(body).hexdigest()
    try:
        events = list(verifier.parse(request))
        if not all(isinstance(e, VerifiedEvent) for e in events):
            raise TypeError("parse must return VerifiedEvent objects")
        rows = [_row(provider, event, index, body_hash) for index, event in enumerate(events)]
    except Exception as exc:
        events, rows = [], [_unparseable(provider, body, body_hash, describe(exc))]
        log.warning("%s webhook verified but could not be parsed: %s", provider, rows[0]["last_error"])

    async with hub.session() as session:
        await _route(session, provider, rows, conn.id if connection_id else None,
                     conn.tenant_id if connection_id else None)
        inserted = await _insert_new(session, rows)
        for row in rows:
            if row["id"] in inserted and row["status"] == "pending":
                enqueue(session, PROCESS_JOB, {"inbox_id": str(row["id"])}, tenant_id=row["tenant_id"],
                        max_attempts=MAX_ATTEMPTS, id=row["job_id"])
    reply = verifier.reply(request, events) if verifier.reply is not None else WebhookReply()
    return Received(reply=reply, stored=len(inserted), duplicates=len(rows) - len(inserted))


async def _path_connection(session: AsyncSession, provider: str, connection_id: uuid.UUID) -> Connection | None:
    conn = await session.get(Connection, connection_id)
    return conn if conn is not None and conn.provider == provider else None


def _row(provider: str, event: VerifiedEvent, index: int, body_hash: str) -> dict[str, Any]:
    key = f"id:{event.event_id}" if event.event_id else f"sha256:{body_hash}:{index}"
    if len(key) > 255:
        key = "id-sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return {
        "id": uuid.uuid4(), "provider": provider, "dedup_key": key, "event_type": event.type[:200],
        "account_id": event.account_id, "payload": msgspec.to_builtins(event.payload), "body": None,
        "status": "pending", "last_error": None, "job_id": uuid.uuid4(), "received_at": utcnow(),
    }


def _unparseable(provider: str, body: bytes, body_hash: str, reason: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "provider": provider, "dedup_key": f"sha256:{body_hash}", "event_type": None,
        "account_id": None, "payload": None, "body": body.decode("utf-8", "replace")[:KEPT_BODY_CHARS],
        "status": "failed", "last_error": f"unparseable body: {reason}", "job_id": None, "received_at": utcnow(),
    }


async def _route(session: AsyncSession, provider: str, rows: Sequence[dict[str, Any]],
                 connection_id: uuid.UUID | None, tenant_id: uuid.UUID | None) -> None:
    """Each row gets its connection: the URL's, else the connected connection with the event's account
    id (the most recently connected, if several tenants connected the same account)."""
    if connection_id is not None:
        for row in rows:
            row["connection_id"], row["tenant_id"] = connection_id, tenant_id
        return
    accounts = {row["account_id"] for row in rows if row["account_id"]}
    owners: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    if accounts:
        found = await session.execute(
            select(Connection.external_account_id, Connection.id, Connection.tenant_id)
            .where(Connection.provider == provider, Connection.status == "connected",
                   Connection.external_account_id.in_(accounts))
            .order_by(Connection.connected_at)
        )
        owners = {account: (conn_id, tenant) for account, conn_id, tenant in found.all()}
    for row in rows:
        conn_id, tenant = owners.get(row["account_id"] or "", (None, None))
        row["connection_id"], row["tenant_id"] = conn_id, tenant
        if conn_id is None and row["status"] == "pending":
            row["status"], row["job_id"] = "unrouted", None


async def _insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """INSERT ... ON CONFLICT DO NOTHING: the ids of the rows that were new."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    inserted: set[uuid.UUID] = set()
    for row in rows:  # one statement per event: a body rarely carries more than a few
        stmt = dialect.insert(WebhookInbox).values(**row).on_conflict_do_nothing(
            index_elements=["provider", "dedup_key"]).returning(WebhookInbox.id)
        inserted.update((await session.execute(stmt)).scalars().all())
    return inserted
