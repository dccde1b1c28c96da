"""Normalized events for a tenant (``sync.completed``, ``payment.succeeded`` ...), ordered by ``seq``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.counters import reserve
from hub.db.models import Event, utcnow
from hub.ids import new_id
from hub.jobs.outbox import enqueue
from hub.webhooks.fanout import fan_out

OBSERVE_JOB = "event.observe"


class EventOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    seq: int
    type: str
    provider: str | None
    data: dict[str, Any]
    occurred_at: datetime


def event_out(event: Event) -> EventOut:
    return EventOut(id=event.id, seq=event.seq, type=event.type, provider=event.provider, data=event.data,
                    occurred_at=event.occurred_at)


async def record_event(
    session: AsyncSession, tenant_id: uuid.UUID, type: str, data: dict[str, Any], provider: str | None = None
) -> Event:
    (seq,) = await reserve(session, f"events:{tenant_id}")  # ordered per tenant; tenants never contend
    event = Event(id=new_id(), tenant_id=tenant_id, seq=seq, type=type, provider=provider, data=data,
                  occurred_at=utcnow())
    session.add(event)
    await session.flush()
    await fan_out(session, event)  # one delivery per matching webhook endpoint, in this transaction
    for plugin in session.info.get("hub_observers", ()):
        enqueue(session, OBSERVE_JOB, {"event_id": str(event.id), "plugin": plugin}, tenant_id=tenant_id)
    return event


async def list_events(session: AsyncSession, tenant_id: uuid.UUID, after: int, limit: int,
                      type: str | None = None) -> list[Event]:
    stmt = select(Event).where(Event.tenant_id == tenant_id, Event.seq > after).order_by(Event.seq).limit(limit)
    if type:
        stmt = stmt.where(Event.type == type)
    return list((await session.scalars(stmt)).all())
