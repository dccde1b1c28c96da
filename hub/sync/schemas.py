"""What the sync API takes and returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from hub.db.models import EntityMapping, Record, SyncRun


class SyncIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    entity: str
    records: list[dict[str, Any]] | None = None
    """Hub records to push (outbound). Leave out to pull from the provider (inbound)."""
    type: Literal["full", "incremental"] = "incremental"
    """Inbound only: ``full`` reads everything again; ``incremental`` continues from the saved cursor."""


class SyncRunOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    provider: str
    entity: str
    direction: str
    type: str
    status: str
    total: int | None
    processed: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    failed: int
    errors: list[Any]
    cancel_requested: bool
    rerun_requested: bool
    """Inbound: a change was announced while it read; an incremental run follows when it ends."""
    job_id: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def sync_run_out(run: SyncRun) -> SyncRunOut:
    return SyncRunOut(
        id=run.id, provider=run.provider, entity=run.entity, direction=run.direction, type=run.type,
        status=run.status, total=run.total, processed=run.processed, created=run.created, updated=run.updated,
        unchanged=run.unchanged, deleted=run.deleted, failed=run.failed, errors=run.errors,
        cancel_requested=run.cancel_requested, rerun_requested=run.rerun_requested, job_id=run.job_id,
        created_at=run.created_at, started_at=run.started_at, finished_at=run.finished_at,
    )


class MappingOut(msgspec.Struct, kw_only=True):
    entity: str
    internal_id: str
    external_id: str
    last_synced_at: datetime | None
    updated_at: datetime


def mapping_out(m: EntityMapping) -> MappingOut:
    return MappingOut(entity=m.entity, internal_id=m.internal_id, external_id=m.external_id,
                      last_synced_at=m.last_synced_at, updated_at=m.updated_at)


class RecordOut(msgspec.Struct, kw_only=True):
    external_id: str
    data: dict[str, Any]
    deleted: bool
    seq: int
    updated_at: datetime


def record_out(r: Record) -> RecordOut:
    return RecordOut(external_id=r.external_id, data=r.data, deleted=r.deleted, seq=r.seq, updated_at=r.updated_at)


class Page(msgspec.Struct, kw_only=True):
    items: list[Any]
    next_cursor: str | None
