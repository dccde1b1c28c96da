"""Sync runs, mappings, inbound records, jobs and events for the calling tenant."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy import select

from hub.api.deps import Db, HubDep, TenantId
from hub.connections import get_connection
from hub.db.models import EntityMapping, Job, Record, SyncRun, SyncRunItem
from hub.errors import InvalidRequest, NotFound
from hub.events import EventOut, event_out, list_events
from hub.jobs import outbox
from hub.jobs.schemas import JobOut, job_out
from hub.sync import service
from hub.sync.schemas import (
    Page,
    RecordOut,
    SyncIn,
    SyncRunOut,
    mapping_out,
    record_out,
    sync_run_out,
)

Limit = Annotated[int, QueryParameter(ge=1, le=1000)]


def _int_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise InvalidRequest("cursor must be the next_cursor of a previous page", code="invalid_cursor")
    return int(cursor)


class SyncController(Controller):
    path = "/v1"
    tags = ["syncs"]

    @post("/connections/{provider:str}/syncs", status_code=202,
          summary="Start a sync: push records (outbound) or pull from the provider (inbound)")
    async def start(self, hub: HubDep, db: Db, tenant_id: TenantId, provider: FromPath[str],
                    data: JSONBody[SyncIn]) -> SyncRunOut:
        conn = await get_connection(db, tenant_id, provider)
        if data.records is not None:
            run = await service.start_outbound(hub, db, conn, data.entity, data.records)
        else:
            run = await service.start_inbound(hub, db, conn, data.entity, data.type)
        return sync_run_out(run)

    @get("/syncs", summary="The sync log")
    async def list_runs(
        self, db: Db, tenant_id: TenantId, provider: FromQuery[str | None] = None,
        entity: FromQuery[str | None] = None, status: FromQuery[str | None] = None, limit: Limit = 50,
        before: FromQuery[str | None] = None,
    ) -> list[SyncRunOut]:
        stmt = select(SyncRun).where(SyncRun.tenant_id == tenant_id)
        for column, value in ((SyncRun.provider, provider), (SyncRun.entity, entity), (SyncRun.status, status)):
            if value is not None:
                stmt = stmt.where(column == value)
        if before is not None:
            anchor = await service.get_run(db, tenant_id, _uuid(before))
            stmt = stmt.where(SyncRun.created_at < anchor.created_at)
        runs = (await db.scalars(stmt.order_by(SyncRun.created_at.desc()).limit(limit))).all()
        return [sync_run_out(r) for r in runs]

    @get("/syncs/{run_id:uuid}", summary="One sync run with its counts and first errors")
    async def get_run(self, db: Db, tenant_id: TenantId, run_id: FromPath[uuid.UUID]) -> SyncRunOut:
        return sync_run_out(await service.get_run(db, tenant_id, run_id))

    @get("/syncs/{run_id:uuid}/failures", summary="Every record that failed in an outbound run")
    async def failures(self, db: Db, tenant_id: TenantId, run_id: FromPath[uuid.UUID]) -> list[dict]:
        await service.get_run(db, tenant_id, run_id)
        rows = (await db.execute(select(SyncRunItem.internal_id, SyncRunItem.error).where(
            SyncRunItem.run_id == run_id, SyncRunItem.status == "failed").order_by(SyncRunItem.seq))).all()
        return [{"id": r.internal_id, "error": r.error} for r in rows]

    @post("/syncs/{run_id:uuid}/cancel", status_code=200, summary="Cancel a queued or running sync")
    async def cancel(self, db: Db, tenant_id: TenantId, run_id: FromPath[uuid.UUID]) -> SyncRunOut:
        return sync_run_out(await service.cancel_run(db, tenant_id, run_id))

    @get("/connections/{provider:str}/mappings", summary="Hub id <-> provider id mappings")
    async def mappings(self, db: Db, tenant_id: TenantId, provider: FromPath[str], entity: FromQuery[str | None] = None,
                       cursor: FromQuery[str | None] = None, limit: Limit = 100) -> Page:
        conn = await get_connection(db, tenant_id, provider)
        stmt = select(EntityMapping).where(EntityMapping.connection_id == conn.id)
        if entity is not None:
            stmt = stmt.where(EntityMapping.entity == entity)
        if cursor is not None:
            stmt = stmt.where(EntityMapping.id > _uuid(cursor))
        rows = (await db.scalars(stmt.order_by(EntityMapping.id).limit(limit))).all()
        return Page(items=[mapping_out(m) for m in rows],
                    next_cursor=str(rows[-1].id) if len(rows) == limit else None)

    @get("/records/{provider:str}/{entity:str}", summary="Inbound records, in change order from a cursor")
    async def records(self, db: Db, tenant_id: TenantId, provider: FromPath[str], entity: FromPath[str],
                      cursor: FromQuery[str | None] = None, limit: Limit = 100) -> Page:
        conn = await get_connection(db, tenant_id, provider)
        rows = (await db.scalars(
            select(Record).where(Record.connection_id == conn.id, Record.entity == entity,
                                 Record.seq > _int_cursor(cursor)).order_by(Record.seq).limit(limit)
        )).all()
        items: list[RecordOut] = [record_out(r) for r in rows]
        return Page(items=items, next_cursor=str(rows[-1].seq) if rows else cursor)

    @get("/connections/{provider:str}/{listing:str}",
         summary="A list the provider declares over its records (Twilio's opt-outs), in change order")
    async def record_list(self, hub: HubDep, db: Db, tenant_id: TenantId, provider: FromPath[str],
                          listing: FromPath[str], cursor: FromQuery[str | None] = None, limit: Limit = 100) -> Page:
        info = hub.registry.provider(provider)
        entity = info.record_lists.get(listing) if info is not None else None
        if entity is None:
            raise NotFound(f"{provider} has no list {listing!r}", code="list_not_found")
        conn = await get_connection(db, tenant_id, provider)
        rows = (await db.scalars(
            select(Record).where(Record.connection_id == conn.id, Record.entity == entity, Record.deleted.is_(False),
                                 Record.seq > _int_cursor(cursor)).order_by(Record.seq).limit(limit)
        )).all()
        return Page(items=[record_out(r) for r in rows], next_cursor=str(rows[-1].seq) if len(rows) == limit else None)

    @get("/events", summary="The tenant's events, in order")
    async def events(self, db: Db, tenant_id: TenantId, after: FromQuery[str | None] = None,
                     type: FromQuery[str | None] = None, limit: Limit = 100) -> list[EventOut]:
        return [event_out(e) for e in await list_events(db, tenant_id, _int_cursor(after), limit, type)]

    @get("/jobs", summary="The tenant's background jobs (e.g. status=failed)")
    async def jobs(self, db: Db, tenant_id: TenantId, status: FromQuery[str | None] = None,
                   limit: Limit = 50) -> list[JobOut]:
        stmt = select(Job).where(Job.tenant_id == tenant_id)
        if status is not None:
            stmt = stmt.where(Job.status == status)
        return [job_out(j) for j in (await db.scalars(stmt.order_by(Job.created_at.desc()).limit(limit))).all()]

    @post("/jobs/{job_id:uuid}/retry", status_code=200, summary="Retry a failed job")
    async def retry_job(self, db: Db, tenant_id: TenantId, job_id: FromPath[uuid.UUID]) -> JobOut:
        return job_out(await outbox.retry(db, job_id, tenant_id))


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest("cursor must be the next_cursor of a previous page", code="invalid_cursor") from None

