"""Periodic inbound syncs: providers declare a default interval (``InboundSync.every``); each connection
can switch an entity's schedule off or change its interval (``sync_schedules``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import Connection, SyncCursor
from hub.errors import Conflict, ValidationFailed
from hub.handlers import InboundSync

if TYPE_CHECKING:
    from hub.runtime import Hub


class Schedule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    enabled: bool = True
    every_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.every_seconds is not None and not 1 <= self.every_seconds <= 31 * 24 * 3600:
            raise ValueError("every_seconds is between 1 and 2678400")


def validate_schedules(hub: Hub, provider: str, raw: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for entity, value in raw.items():
        if not isinstance(hub.registry.syncs.get((provider, entity, "inbound")), InboundSync):
            raise ValidationFailed(f"{provider} has no inbound {entity!r} sync to schedule", code="invalid_schedule")
        try:
            out[entity] = msgspec.to_builtins(msgspec.convert(value, Schedule))
        except (msgspec.ValidationError, ValueError) as exc:
            raise ValidationFailed(f"invalid schedule for {entity}: {exc}", code="invalid_schedule") from None
    return out


def interval(handler: InboundSync, override: dict[str, Any] | None) -> timedelta | None:
    if override is not None:
        if not override.get("enabled", True):
            return None
        if override.get("every_seconds"):
            return timedelta(seconds=override["every_seconds"])
    return handler.every


async def schedule_due_syncs(hub: Hub, session: AsyncSession) -> int:
    """Start an incremental inbound run for every (connection, entity) whose interval has passed since
    its last run began. Two queries however many connections and runs there are; a run already in flight
    is refused by the one-active-inbound-run index and skipped."""
    from hub.sync.service import start_inbound

    periodic = {(s.provider, s.entity): s for s in hub.registry.syncs.values() if isinstance(s, InboundSync)}
    providers = {provider for provider, _ in periodic}
    if not providers:
        return 0
    connections = (await session.scalars(select(Connection).where(
        Connection.provider.in_(providers), Connection.status == "connected", Connection.sync_enabled.is_(True),
    ))).all()
    if not connections:
        return 0
    last = {
        (row.connection_id, row.entity): row.last_started_at
        for row in (await session.execute(
            select(SyncCursor.connection_id, SyncCursor.entity, SyncCursor.last_started_at)
            .where(SyncCursor.connection_id.in_([c.id for c in connections]))
        )).all()
    }
    now, started = hub.clock(), 0
    for conn in connections:
        for (provider, entity), handler in periodic.items():
            if provider != conn.provider:
                continue
            every = interval(handler, conn.sync_schedules.get(entity))
            last_at = last.get((conn.id, entity))
            if every is None or (last_at is not None and last_at + every > now):
                continue
            try:
                await start_inbound(hub, session, conn, entity, "incremental")
            except Conflict:
                continue
            started += 1
    return started
