"""Storing provider records in ``records``: the latest version per (connection, entity, external id),
upserted in bulk, with unchanged records left alone and every change given the next ``seq`` of the
connection (the change cursor of ``GET /v1/records``). Inbound reads and webhook handlers both use it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.counters import reserve
from hub.db.models import Record, utcnow
from hub.db.upsert import upsert
from hub.entities import canonical, record_hash
from hub.events import record_event
from hub.handlers import InboundRecord
from hub.ids import new_id


@dataclass
class Stored:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)


async def store_records(
    session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, entity: str,
    schema: type[msgspec.Struct] | None, records: Iterable[InboundRecord], deleted: Iterable[str] = (),
    *, provider: str | None = None,
) -> Stored:
    """Upsert ``records`` (validated against ``schema`` where there is one) and mark ``deleted`` ones;
    returns which external ids were created or updated, and the records that failed validation. The
    ``new_events`` of a record stored for the first time, and the ``change_events`` of a changed version of one
    already held, are recorded for the tenant (as ``provider``'s)."""
    records = list(records)
    result = Stored()
    rows: dict[str, tuple[dict[str, Any], str]] = {}
    for record in records:
        try:
            data = canonical(msgspec.convert(record.data, schema)) if schema else record.data
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            result.errors.append({"id": record.external_id, "error": str(exc)})
            continue
        rows[record.external_id] = (data, record_hash(data))
    gone_ids = [external_id for external_id in dict.fromkeys(deleted) if external_id not in rows]
    ids = list(rows) + gone_ids
    if not ids:
        return result
    now = utcnow()
    existing = {r.external_id: (r.hash, r.deleted) for r in (await session.execute(
        select(Record.external_id, Record.hash, Record.deleted).where(
            Record.connection_id == connection_id, Record.entity == entity, Record.external_id.in_(ids))
    )).all()}
    changed = [eid for eid, (_, h) in rows.items() if existing.get(eid) != (h, False)]
    gone = [eid for eid in gone_ids if eid in existing and not existing[eid][1]]
    if not changed and not gone:
        result.unchanged = len(rows)
        return result
    seqs = iter(await reserve(session, f"records:{connection_id}", len(changed) + len(gone)))
    await upsert(session, Record, [
        {"id": new_id(), "tenant_id": tenant_id, "connection_id": connection_id, "entity": entity,
         "external_id": eid, "data": rows[eid][0], "hash": rows[eid][1], "deleted": False, "seq": next(seqs),
         "updated_at": now}
        for eid in changed
    ], conflict=("connection_id", "entity", "external_id"), update=("data", "hash", "deleted", "seq", "updated_at"))
    for eid in gone:  # deletions are rare: one statement each
        await session.execute(update(Record).where(
            Record.connection_id == connection_id, Record.entity == entity, Record.external_id == eid,
        ).values(deleted=True, seq=next(seqs), updated_at=now))
    result.created = [eid for eid in changed if eid not in existing]
    first_seen = set(result.created)
    for record in records:
        if record.external_id in first_seen:
            first_seen.discard(record.external_id)  # a page listing an id twice records its events once
            for event in record.new_events:
                await record_event(session, tenant_id, event.type, event.data, provider=provider)
    result.updated = [eid for eid in changed if eid in existing]
    changed_again = set(result.updated)
    for record in records:
        if record.external_id in changed_again:
            changed_again.discard(record.external_id)
            for event in record.change_events:
                await record_event(session, tenant_id, event.type, event.data, provider=provider)
    result.unchanged = len(rows) - len(changed)
    result.deleted = len(gone)
    return result
