"""Starting, listing and cancelling sync runs. A run and its job are written in one transaction."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import Connection, Job, SyncCursor, SyncRun, SyncRunItem, utcnow
from hub.db.upsert import upsert
from hub.entities import ENTITIES, canonical, record_hash
from hub.errors import Conflict, NotConnected, NotFound, ValidationFailed
from hub.handlers import InboundSync, OutboundSync
from hub.ids import new_id
from hub.jobs import enqueue

if TYPE_CHECKING:
    from hub.runtime import Hub

ACTIVE = ("queued", "running")
INSERT_CHUNK = 1000


def outbound_handler(hub: Hub, provider: str, entity: str) -> OutboundSync:
    handler = hub.registry.syncs.get((provider, entity, "outbound"))
    if not isinstance(handler, OutboundSync):
        raise NotFound(f"{provider} does not sync {entity!r} outbound", code="sync_not_supported")
    return handler


def inbound_handler(hub: Hub, provider: str, entity: str) -> InboundSync:
    handler = hub.registry.syncs.get((provider, entity, "inbound"))
    if not isinstance(handler, InboundSync):
        raise NotFound(f"{provider} does not sync {entity!r} inbound", code="sync_not_supported")
    return handler


def entity_schema(handler: OutboundSync | InboundSync) -> type[msgspec.Struct] | None:
    return handler.schema or ENTITIES.get(handler.entity)


def _validate(schema: type[msgspec.Struct], records: list[dict[str, Any]], offset: int, seen: set[str],
              problems: list[dict[str, Any]]) -> list[Any]:
    typed = []
    for index, raw in enumerate(records, start=offset):
        record_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            record = msgspec.convert(raw, schema)
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            problems.append({"index": index, "id": record_id, "error": str(exc)})
            continue
        if record.id in seen:
            problems.append({"index": index, "id": record.id, "error": "duplicate id in this request"})
            continue
        seen.add(record.id)
        typed.append(record)
    return typed


def validate_records(schema: type[msgspec.Struct], records: list[dict[str, Any]]) -> list[Any]:
    """Every record, typed; or a 422 listing each bad one."""
    problems: list[dict[str, Any]] = []
    typed = _validate(schema, records, 0, set(), problems)
    if problems:
        raise _invalid(problems, len(records))
    return typed


def _invalid(problems: list[dict[str, Any]], total: int) -> ValidationFailed:
    return ValidationFailed(f"{len(problems)} of {total} records are invalid; nothing was queued",
                            code="invalid_records", details=problems)


def _usable(conn: Connection) -> None:
    if conn.status != "connected":
        raise NotConnected(f"the {conn.provider} connection is {conn.status}")


async def start_outbound(
    hub: Hub, session: AsyncSession, conn: Connection, entity: str, records: list[dict[str, Any]]
) -> SyncRun:
    _usable(conn)
    handler = outbound_handler(hub, conn.provider, entity)
    schema = entity_schema(handler)
    if schema is None:
        raise ValidationFailed(f"no schema for entity {entity!r}", code="unknown_entity")
    run = SyncRun(id=new_id(), tenant_id=conn.tenant_id, connection_id=conn.id, provider=conn.provider,
                  entity=entity, direction="outbound", type="full", status="queued", total=len(records), errors=[])
    session.add(run)
    await session.flush()
    # Validate and store in chunks, so memory holds one chunk of rows, not the whole request twice over.
    # A bad record anywhere raises after every record was checked; the caller's transaction then rolls
    # back the chunks already stored, so nothing is queued.
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    seq = 0
    for start in range(0, len(records), INSERT_CHUNK):
        typed = _validate(schema, records[start:start + INSERT_CHUNK], start, seen, problems)
        if problems:
            continue
        await session.execute(insert(SyncRunItem), [
            {"run_id": run.id, "seq": seq + n, "internal_id": record.id, "record": canonical(record),
             "hash": record_hash(record), "status": "pending"}
            for n, record in enumerate(typed)
        ])
        seq += len(typed)
    if problems:
        raise _invalid(problems, len(records))
    run.job_id = enqueue(session, "sync.run", {"run_id": str(run.id)}, tenant_id=conn.tenant_id).id
    return run


async def start_inbound(hub: Hub, session: AsyncSession, conn: Connection, entity: str, type: str) -> SyncRun:
    _usable(conn)
    inbound_handler(hub, conn.provider, entity)
    run = SyncRun(id=new_id(), tenant_id=conn.tenant_id, connection_id=conn.id, provider=conn.provider,
                  entity=entity, direction="inbound", type=type, status="queued", errors=[])
    try:
        async with session.begin_nested():  # the unique index says whether one is already in flight
            session.add(run)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"an inbound {entity} sync is already queued or running", code="sync_in_progress") from None
    await upsert(session, SyncCursor, [
        {"tenant_id": conn.tenant_id, "connection_id": conn.id, "entity": entity, "last_started_at": run.created_at,
         "updated_at": run.created_at}
    ], conflict=("connection_id", "entity"), update=("last_started_at",))
    run.job_id = enqueue(session, "sync.run", {"run_id": str(run.id)}, tenant_id=conn.tenant_id).id
    return run


async def read_changes(hub: Hub, session: AsyncSession, conn: Connection, entity: str) -> SyncRun | None:
    """The provider announced a change (a webhook): make sure an incremental read sees it. Starts one; if one
    is already running, it may be past the provider call that would have seen the change, so it is marked
    to read again when it ends (``rerun_requested``); a queued one has not read yet and will. Returns the
    run started, if one was."""
    active = (SyncRun.connection_id == conn.id, SyncRun.entity == entity, SyncRun.direction == "inbound")
    for _ in range(3):  # the run in the way may finish between the tries below; then start one again
        try:
            async with session.begin_nested():
                return await start_inbound(hub, session, conn, entity, "incremental")
        except Conflict:
            pass
        marked = await session.execute(
            update(SyncRun).where(*active, SyncRun.status == "running").values(rerun_requested=True)
            .execution_options(synchronize_session=False))
        if marked.rowcount or await session.scalar(select(SyncRun.id).where(*active, SyncRun.status == "queued")):
            return None
    raise Conflict(f"the inbound {entity} sync kept changing state; try again", code="sync_in_progress")


async def get_run(session: AsyncSession, tenant_id: uuid.UUID, run_id: uuid.UUID) -> SyncRun:
    run = await session.get(SyncRun, run_id)
    if run is None or run.tenant_id != tenant_id:
        raise NotFound("no such sync run", code="sync_not_found")
    return run


async def cancel_run(session: AsyncSession, tenant_id: uuid.UUID, run_id: uuid.UUID) -> SyncRun:
    run = await get_run(session, tenant_id, run_id)
    if run.status not in ACTIVE:
        raise Conflict(f"the run is already {run.status}", code="sync_finished")
    run.cancel_requested = True
    job_status = await session.scalar(select(Job.status).where(Job.id == run.job_id))
    if run.status == "queued" or job_status != "running":
        # Nobody is working on it (not picked up yet, or waiting for a retry): it ends now, and its job
        # finds it cancelled and does nothing. A running job stops at its next batch.
        run.status, run.finished_at = "cancelled", utcnow()
    await session.flush()
    return run
