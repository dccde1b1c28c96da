"""The ``webhook.process`` job: hand one stored provider event to its plugin's handler and apply what
it returns — records, events, syncs to start — in one transaction with marking the event processed, so
an event is processed once however often its job runs."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.connections import apply_account_status, connection_context
from hub.db.models import Connection, Job, WebhookInbox, utcnow
from hub.entities import ENTITIES
from hub.errors import Conflict, NotFound
from hub.events import record_event
from hub.handlers import VerifiedEvent, WebhookOutcome
from hub.jobs.outbox import describe, enqueue, is_permanent
from hub.sync.service import entity_schema, read_changes
from hub.sync.store import store_records
from hub.types import AccountInfo
from hub.webhooks.intake import MAX_ATTEMPTS, PROCESS_JOB, ROUTABLE

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.webhooks")


async def process_webhook(hub: Hub, job: Job) -> None:
    """The job's events one by one, each in its own transaction; those that failed are retried with
    the job (the processed ones are skipped then)."""
    errors = []
    for inbox_id in job.payload["inbox_ids"]:
        try:
            await _process(hub, uuid.UUID(inbox_id))
        except Exception as exc:
            errors.append(exc)
            async with hub.session() as session:
                await session.execute(update(WebhookInbox).where(WebhookInbox.id == uuid.UUID(inbox_id)).values(
                    attempts=WebhookInbox.attempts + 1, last_error=describe(exc)))
    if errors:
        raise next((e for e in errors if not is_permanent(e)), errors[0])


async def _process(hub: Hub, inbox_id: uuid.UUID) -> None:
    async with hub.session() as session:
        row = await session.get(WebhookInbox, inbox_id)
        if row is None or row.status != "pending" or row.connection_id is None:
            return  # processed already, or no longer ours to process
        conn = await session.get(Connection, row.connection_id)
        verifier = hub.registry.verifiers.get(row.provider)
        if verifier is None:
            raise LookupError(f"no plugin handles {row.provider} webhooks any more")
        ctx = await connection_context(hub, session, conn, pending_ok=True)
        event = VerifiedEvent(type=row.event_type or "", payload=row.payload, account_id=row.account_id,
                              event_id=None)
    outcome = await verifier.handle(ctx, event) if verifier.handle is not None else None
    if outcome is not None and not isinstance(outcome, WebhookOutcome):
        raise TypeError(f"{row.provider} handle returned {type(outcome).__name__}, not a WebhookOutcome")
    async with hub.session(ctx.tenant_id) as session:
        done = await session.execute(
            update(WebhookInbox).where(WebhookInbox.id == inbox_id, WebhookInbox.status == "pending")
            .values(status="processed", processed_at=utcnow(), attempts=WebhookInbox.attempts + 1, last_error=None)
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            return  # another run of this job got there first: its outcome stands
        if outcome is not None:
            await apply_outcome(hub, session, conn, outcome)


async def apply_outcome(hub: Hub, session: AsyncSession, conn: Connection, outcome: WebhookOutcome) -> None:
    if outcome.account is not None:
        await _update_account(session, conn, outcome.account)
    for entity in dict.fromkeys([*outcome.records, *outcome.deleted]):
        stored = await store_records(session, conn.tenant_id, conn.id, entity, _schema(hub, conn.provider, entity),
                                     outcome.records.get(entity, ()), outcome.deleted.get(entity, ()),
                                     provider=conn.provider)
        if stored.errors:
            log.warning("%s webhook: %d %s records did not validate: %s", conn.provider, len(stored.errors),
                        entity, stored.errors[0]["error"])
    for new in outcome.events:
        await record_event(session, conn.tenant_id, new.type, new.data, provider=conn.provider)
    for entity in dict.fromkeys(outcome.syncs):
        await read_changes(hub, session, conn, entity)


async def _update_account(session: AsyncSession, conn: Connection, account: AccountInfo) -> None:
    """The provider's news about the connection's account; a disconnected connection stays so."""
    row = await session.get(Connection, conn.id, with_for_update=True, populate_existing=True)
    if row is None or row.status not in ROUTABLE or row.external_account_id != account.id:
        return
    row.external_account_name = account.name or row.external_account_name
    row.metadata_ = {**row.metadata_, **account.metadata}
    apply_account_status(row, account)
    await session.flush()


def _schema(hub: Hub, provider: str, entity: str):
    """The inbound sync's record type, else the core's for that entity, else none (the plugin's own shape)."""
    handler = hub.registry.syncs.get((provider, entity, "inbound"))
    return entity_schema(handler) if handler is not None else ENTITIES.get(entity)


async def webhook_gave_up(session: AsyncSession, job: Job, message: str) -> None:
    await session.execute(update(WebhookInbox).where(
        WebhookInbox.id.in_([uuid.UUID(i) for i in job.payload["inbox_ids"]]), WebhookInbox.status == "pending",
    ).values(status="failed"))


async def reprocess(session: AsyncSession, inbox_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> WebhookInbox:
    """Queue a stored event for processing again: a failed one after a fix, a processed one on purpose,
    an unrouted one once its tenant has connected. A body that never parsed cannot be reprocessed."""
    row = await session.get(WebhookInbox, inbox_id)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise NotFound("no such inbound webhook", code="webhook_not_found")
    if row.status == "pending":
        raise Conflict("the event is already queued for processing", code="webhook_pending")
    if row.payload is None and row.event_type is None:
        raise Conflict("the body could not be parsed; there is no event to process", code="webhook_unparseable")
    if row.connection_id is None:
        conn = (await session.scalars(select(Connection).where(
            Connection.provider == row.provider, Connection.status.in_(ROUTABLE),
            Connection.external_account_id == row.account_id,
        ).order_by(Connection.connected_at.desc().nulls_last()).limit(1))).first() if row.account_id else None
        if conn is None:
            raise Conflict("the event still routes to no connection", code="webhook_unrouted")
        row.connection_id, row.tenant_id = conn.id, conn.tenant_id
    row.status, row.last_error, row.processed_at = "pending", None, None
    row.job_id = enqueue(session, PROCESS_JOB, {"inbox_ids": [str(row.id)]}, tenant_id=row.tenant_id,
                         max_attempts=MAX_ATTEMPTS).id
    await session.flush()
    return row
