"""The ``sync.run`` job: one sync run, resumable.

Outbound: pending items are read in chunks; their mappings are loaded in one query per chunk; an item
whose hash equals its mapping's hash since the last successful sync is ``unchanged`` without a provider
call; the rest go to the plugin in batches of its size; mappings, item states and counts are written in
one transaction per batch. A crash loses at most the batch in flight, and repeating it is safe: the
plugin gets the same idempotency keys.

Inbound: pages are pulled from the saved cursor; each page's records are upserted in bulk (unchanged
ones are left alone) and the cursor is saved in the same transaction, never before the page is stored.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import delete, select, update

from hub.connections import connection_context
from hub.db.models import Connection, EntityMapping, Job, SyncCursor, SyncRun, SyncRunItem, utcnow
from hub.db.upsert import upsert
from hub.entities import canonical, record_hash
from hub.errors import NotConnected, NotFound, ValidationFailed
from hub.events import record_event
from hub.handlers import InboundSync, OutboundItem, OutboundSync, Page, PushResult
from hub.ids import new_id
from hub.jobs.outbox import Defer
from hub.metrics import SYNC_RECORDS
from hub.sync.service import entity_schema, start_inbound
from hub.sync.store import store_records
from hub.types import RateLimit

if TYPE_CHECKING:
    from hub.context import ConnectionContext
    from hub.runtime import Hub

log = logging.getLogger("hub.sync")

CHUNK = 1000
MAX_ERRORS_KEPT = 100
PUSH_ONE_AT_A_TIME = (RateLimit(requests=1_000_000, per_seconds=1, concurrency=1),)


class _Cancelled(Exception):
    pass


def idempotency_key(connection_id: uuid.UUID, entity: str, internal_id: str, hash: str) -> str:
    """32 hex characters: within QuickBooks' 36-character batch requestid and Stripe's 255."""
    return hashlib.sha256(f"{connection_id}:{entity}:{internal_id}:{hash}".encode()).hexdigest()[:32]


async def run_sync(hub: Hub, job: Job) -> None:
    run_id = uuid.UUID(job.payload["run_id"])
    async with hub.session() as session:
        run = await session.get(SyncRun, run_id)
        if run is None or run.status not in ("queued", "running"):
            return  # finished, cancelled or gone: running again is a no-op
        if run.direction == "outbound" and await _earlier_outbound_active(session, run):
            # One outbound run per (connection, entity) at a time: two runs pushing the same new record
            # at once would both create it at the provider.
            raise Defer(2.0, "an earlier outbound run of this entity is still going")
        handler = hub.registry.syncs.get((run.provider, run.entity, run.direction))
        if handler is None:
            raise LookupError(f"{run.provider} no longer syncs {run.entity} {run.direction}")
        conn = await session.get(Connection, run.connection_id)
        context = await connection_context(hub, session, conn)
        run.status = "running"
        run.started_at = run.started_at or utcnow()
        tenant_id = run.tenant_id
    try:
        if isinstance(handler, OutboundSync):
            await _outbound(hub, context, handler, run_id)
        else:
            await _inbound(hub, context, handler, run_id)
    except _Cancelled:
        await _finish(hub, tenant_id, run_id, "cancelled")
        return
    await _finish(hub, tenant_id, run_id, None)


async def _earlier_outbound_active(session, run: SyncRun) -> bool:
    earlier = await session.scalar(select(SyncRun.id).where(
        SyncRun.connection_id == run.connection_id, SyncRun.entity == run.entity, SyncRun.direction == "outbound",
        SyncRun.status.in_(("queued", "running")), SyncRun.created_at < run.created_at,
    ).limit(1))
    return earlier is not None


async def run_gave_up(session, job: Job, message: str) -> None:
    """The run's job failed for good: the run is failed too, not left active forever."""
    run = await session.get(SyncRun, uuid.UUID(job.payload["run_id"]))
    if run is None or run.status not in ("queued", "running"):
        return
    run.status, run.finished_at = "failed", utcnow()
    run.errors = [*run.errors, {"id": None, "error": message}][:MAX_ERRORS_KEPT]
    await _record_completion(session, run)


async def _check_cancel(hub: Hub, tenant_id: uuid.UUID, run_id: uuid.UUID) -> None:
    async with hub.session(tenant_id) as session:
        if await session.scalar(select(SyncRun.cancel_requested).where(SyncRun.id == run_id)):
            raise _Cancelled()


async def _outbound(hub: Hub, ctx: ConnectionContext, handler: OutboundSync, run_id: uuid.UUID) -> None:
    schema = entity_schema(handler)
    tenant_id, connection_id, entity = ctx.tenant_id, ctx.connection_id, handler.entity
    size = max(1, handler.batch_size)
    chunk = size * max(1, CHUNK // size)  # whole batches per chunk
    after = -1  # read on by seq: the primary key's order, never rescanning what is done
    while True:
        await _check_cancel(hub, tenant_id, run_id)
        async with hub.session(tenant_id) as session:
            items = list((await session.scalars(
                select(SyncRunItem).where(SyncRunItem.run_id == run_id, SyncRunItem.seq > after,
                                          SyncRunItem.status == "pending")
                .order_by(SyncRunItem.seq).limit(chunk)
            )).all())
            if not items:
                return
            after = items[-1].seq
            mapped = {m.internal_id: m for m in (await session.scalars(select(EntityMapping).where(
                EntityMapping.connection_id == connection_id, EntityMapping.entity == entity,
                EntityMapping.internal_id.in_([i.internal_id for i in items]),
            ))).all()}
        unchanged = [i for i in items if (m := mapped.get(i.internal_id)) and m.sync_hash == i.hash]
        skipped = {i.seq for i in unchanged}
        if unchanged:
            await _apply(hub, ctx, entity, run_id, unchanged, [
                PushResult(internal_id=i.internal_id, external_id=mapped[i.internal_id].external_id,
                           outcome="unchanged") for i in unchanged
            ], touch_mappings=False)
        to_push = [i for i in items if i.seq not in skipped]
        for start in range(0, len(to_push), size):
            batch = to_push[start:start + size]
            outbound = [
                OutboundItem(
                    internal_id=i.internal_id, record=msgspec.convert(i.record, schema),
                    external_id=mapped[i.internal_id].external_id if i.internal_id in mapped else None,
                    metadata=dict(mapped[i.internal_id].metadata_) if i.internal_id in mapped else {},
                    idempotency_key=idempotency_key(connection_id, entity, i.internal_id, i.hash),
                )
                for i in batch
            ]
            results = await handler.push(ctx, outbound)  # an exception fails the job: the batch is retried
            await _apply(hub, ctx, entity, run_id, batch, _checked(batch, results))
            await _check_cancel(hub, tenant_id, run_id)


def _checked(batch: Sequence[SyncRunItem], results: Sequence[PushResult]) -> list[PushResult]:
    """One result per item, in the batch's terms; a result the plugin forgot is a failure, not a gap."""
    by_id = {r.internal_id: r for r in results if isinstance(r, PushResult)}
    return [
        by_id.get(i.internal_id)
        or PushResult(internal_id=i.internal_id, outcome="failed", error="the plugin returned no result")
        for i in batch
    ]


async def _apply(
    hub: Hub, ctx: ConnectionContext, entity: str, run_id: uuid.UUID, items: Sequence[SyncRunItem],
    results: Sequence[PushResult], *, touch_mappings: bool = True,
) -> None:
    """Write one batch's outcome: mappings, item states and the run's counts, in one transaction."""
    hashes = {i.internal_id: i.hash for i in items}
    async with hub.session(ctx.tenant_id) as session:
        results = list(results)
        if touch_mappings:
            results = await _save_mappings(session, ctx, entity, results, hashes)
        seq = {i.internal_id: i.seq for i in items}
        await session.execute(update(SyncRunItem), [
            {"run_id": run_id, "seq": seq[r.internal_id], "status": "failed" if r.outcome == "failed" else "done",
             "outcome": r.outcome, "external_id": r.external_id, "error": r.error}
            for r in results
        ])
        run = await session.get(SyncRun, run_id)
        counts = {outcome: sum(1 for r in results if r.outcome == outcome)
                  for outcome in ("created", "updated", "unchanged", "failed")}
        run.processed += len(results)
        for outcome, n in counts.items():
            setattr(run, outcome, getattr(run, outcome) + n)
        errors = [{"id": r.internal_id, "error": r.error or "failed"} for r in results if r.outcome == "failed"]
        if errors and len(run.errors) < MAX_ERRORS_KEPT:
            run.errors = [*run.errors, *errors][:MAX_ERRORS_KEPT]


async def _save_mappings(
    session, ctx: ConnectionContext, entity: str, results: list[PushResult], hashes: dict[str, str]
) -> list[PushResult]:
    """Upsert the mappings of the results that went through; returns the results as finally judged."""
    now = utcnow()
    results = await _refuse_stolen_external_ids(session, ctx, entity, results)
    mapped = [r for r in results if r.outcome != "failed" and r.external_id]
    # Two statements: a result without metadata leaves the mapping's metadata as it was.
    for with_metadata in (True, False):
        await upsert(session, EntityMapping, [
            {"id": new_id(), "tenant_id": ctx.tenant_id, "connection_id": ctx.connection_id,
             "entity": entity, "internal_id": r.internal_id, "external_id": r.external_id,
             "sync_hash": hashes[r.internal_id], "metadata_": r.metadata or {}, "last_synced_at": now,
             "created_at": now, "updated_at": now}
            for r in mapped if (r.metadata is not None) == with_metadata
        ], conflict=("connection_id", "entity", "internal_id"),
           update=("external_id", "sync_hash", "last_synced_at", "updated_at")
           + (("metadata",) if with_metadata else ()))
    return results


async def push_records(hub: Hub, ctx: ConnectionContext, entity: str, records: Sequence[Any]) -> dict[str, PushResult]:
    """``ctx.push``: push hub records of ``entity`` now, outside a run (the client an invoice needs first,
    an action's record), through the provider's registered outbound sync: the same validation, hash skip,
    batches, idempotency keys and mapping writes as a run, one transaction per batch. Returns one result
    per record id. A record that does not fit the entity's schema raises ``ValidationFailed`` before
    anything is pushed."""
    handler = hub.registry.syncs.get((ctx.provider, entity, "outbound"))
    if not isinstance(handler, OutboundSync):
        raise LookupError(f"{ctx.provider} has no outbound {entity} sync")
    schema = entity_schema(handler)
    if schema is None:
        raise LookupError(f"no schema for entity {entity!r}")
    typed: dict[str, Any] = {}
    for record in records:
        try:
            item = msgspec.convert(canonical(record) if isinstance(record, msgspec.Struct) else record, schema)
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            raise ValidationFailed(f"invalid {entity} record: {exc}", code="invalid_records") from None
        typed[item.id] = item
    hashes = {rid: record_hash(r) for rid, r in typed.items()}
    if not typed:
        return {}
    # One push of an entity per connection at a time (across processes when the throttle is Redis's), from
    # reading the mappings to saving them: two callers pushing the same new record at once (an action asked
    # for twice, an observer retried) would otherwise both create it at the provider.
    async with hub.http.throttle.slot(f"push:{ctx.connection_id}:{entity}", PUSH_ONE_AT_A_TIME):
        return await _push_typed(hub, ctx, handler, entity, typed, hashes)


async def _push_typed(hub: Hub, ctx: ConnectionContext, handler: OutboundSync, entity: str, typed: dict[str, Any],
                      hashes: dict[str, str]) -> dict[str, PushResult]:
    async with hub.session(ctx.tenant_id) as session:
        mapped = {m.internal_id: m for m in (await session.scalars(select(EntityMapping).where(
            EntityMapping.connection_id == ctx.connection_id, EntityMapping.entity == entity,
            EntityMapping.internal_id.in_(list(typed)),
        ))).all()}
    results = {
        rid: PushResult(internal_id=rid, external_id=m.external_id, outcome="unchanged")
        for rid, m in mapped.items() if m.sync_hash == hashes[rid]
    }
    to_push = [rid for rid in typed if rid not in results]
    size = max(1, handler.batch_size)
    for start in range(0, len(to_push), size):
        batch = to_push[start:start + size]
        outbound = [
            OutboundItem(
                internal_id=rid, record=typed[rid],
                external_id=mapped[rid].external_id if rid in mapped else None,
                metadata=dict(mapped[rid].metadata_) if rid in mapped else {},
                idempotency_key=idempotency_key(ctx.connection_id, entity, rid, hashes[rid]),
            )
            for rid in batch
        ]
        pushed = await handler.push(ctx, outbound)
        by_id = {r.internal_id: r for r in pushed if isinstance(r, PushResult)}
        checked = [by_id.get(rid) or PushResult(internal_id=rid, outcome="failed",
                                                  error="the plugin returned no result") for rid in batch]
        async with hub.session(ctx.tenant_id) as session:
            checked = await _save_mappings(session, ctx, entity, checked, hashes)
        results.update((r.internal_id, r) for r in checked)
    return results


async def _refuse_stolen_external_ids(
    session, ctx: ConnectionContext, entity: str, results: list[PushResult]
) -> list[PushResult]:
    """A provider id already mapped to another record (before, or earlier in this batch) would break the
    mapping's uniqueness: fail the item that claims it instead of the whole batch."""
    claimed = {r.external_id for r in results if r.outcome != "failed" and r.external_id}
    if not claimed:
        return results
    owners = dict((await session.execute(select(EntityMapping.external_id, EntityMapping.internal_id).where(
        EntityMapping.connection_id == ctx.connection_id, EntityMapping.entity == entity,
        EntityMapping.external_id.in_(list(claimed)),
    ))).all())
    checked = []
    for r in results:
        owner = owners.setdefault(r.external_id, r.internal_id) if r.outcome != "failed" and r.external_id else None
        if owner is not None and owner != r.internal_id:
            r = PushResult(internal_id=r.internal_id, outcome="failed",
                           error=f"provider id {r.external_id} is already mapped to {owner}")
        checked.append(r)
    return checked


async def _inbound(hub: Hub, ctx: ConnectionContext, handler: InboundSync, run_id: uuid.UUID) -> None:
    schema = entity_schema(handler)
    tenant_id, entity = ctx.tenant_id, handler.entity
    async with hub.session(tenant_id) as session:
        run = await session.get(SyncRun, run_id)
        cursor = run.cursor
        if cursor is None and run.type == "incremental":
            cursor = await session.scalar(select(SyncCursor.cursor).where(
                SyncCursor.connection_id == ctx.connection_id, SyncCursor.entity == entity))
    while True:
        await _check_cancel(hub, tenant_id, run_id)
        page = await handler.pull(ctx, cursor)
        if not isinstance(page, Page):
            raise TypeError(f"{handler.provider} pull returned {type(page).__name__}, not a Page")
        await _store_page(hub, ctx, entity, schema, run_id, page)
        cursor = page.cursor
        if not page.has_more:
            return


async def _store_page(
    hub: Hub, ctx: ConnectionContext, entity: str, schema: type[msgspec.Struct] | None, run_id: uuid.UUID,
    page: Page,
) -> None:
    async with hub.session(ctx.tenant_id) as session:
        stored = await store_records(session, ctx.tenant_id, ctx.connection_id, entity, schema, page.records,
                                     page.deleted, provider=ctx.provider)
        now = utcnow()
        await upsert(session, SyncCursor, [
            {"tenant_id": ctx.tenant_id, "connection_id": ctx.connection_id, "entity": entity,
             "cursor": page.cursor, "updated_at": now}
        ], conflict=("connection_id", "entity"), update=("cursor", "updated_at"))
        run = await session.get(SyncRun, run_id)
        run.cursor = page.cursor
        run.processed += len(page.records)
        run.created += len(stored.created)
        run.updated += len(stored.updated)
        run.unchanged += stored.unchanged
        run.deleted += stored.deleted
        run.failed += len(stored.errors)
        if stored.errors and len(run.errors) < MAX_ERRORS_KEPT:
            run.errors = [*run.errors, *stored.errors][:MAX_ERRORS_KEPT]


async def _finish(hub: Hub, tenant_id: uuid.UUID, run_id: uuid.UUID, status: str | None) -> None:
    async with hub.session(tenant_id) as session:
        # Locked: a webhook marking the run to read again either lands before this read of the mark or
        # waits, then finds the run finished and starts a read of its own (``read_changes``).
        run = await session.get(SyncRun, run_id, with_for_update=True)
        if status is None:
            status = "completed_with_errors" if run.failed else "completed"
        run.status, run.finished_at = status, utcnow()
        conn = await session.get(Connection, run.connection_id)
        conn.last_sync_at = run.finished_at
        # Items that went through are done with; failed ones stay for GET /v1/syncs/{id}/failures.
        await session.execute(delete(SyncRunItem).where(SyncRunItem.run_id == run_id, SyncRunItem.status == "done"))
        if status != "cancelled":
            await _record_completion(session, run)
            if run.rerun_requested:
                await session.flush()  # this run is no longer the active one
                await _read_again(hub, session, conn, run)
    for outcome in ("created", "updated", "unchanged", "deleted", "failed"):
        if n := getattr(run, outcome):
            SYNC_RECORDS.labels(run.provider, run.entity, run.direction, outcome).inc(n)
    log.info("sync run %s %s", run_id, status)


async def _read_again(hub: Hub, session, conn: Connection, run: SyncRun) -> None:
    """A change was announced while this run was reading: an incremental run from the cursor it left."""
    try:
        async with session.begin_nested():
            again = await start_inbound(hub, session, conn, run.entity, "incremental")
    except (NotConnected, NotFound) as exc:
        log.info("sync run %s: not reading %s again: %s", run.id, run.entity, exc.message)
        return
    log.info("sync run %s: a change came in while it read; %s reads again", run.id, again.id)


async def _record_completion(session, run: SyncRun) -> None:
    from hub.sync.schemas import sync_run_out

    await record_event(session, run.tenant_id, "sync.completed", msgspec.to_builtins(sync_run_out(run)),
                       provider=run.provider)
