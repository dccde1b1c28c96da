"""Fan-out: each event becomes one delivery per enabled endpoint of its tenant whose patterns match.

Runs inside ``record_event``, in the transaction that records the event, so an event and its deliveries
commit together or not at all: one query for the tenant's enabled endpoints, one bulk insert. After that
transaction commits, the sender in this process (if one runs) is woken; senders elsewhere find the rows
on their next poll.
"""

from __future__ import annotations

import uuid

from sqlalchemy import event as sa_event
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hub.db.models import Event, WebhookDelivery, WebhookEndpoint, utcnow
from hub.ids import new_id
from hub.webhooks.patterns import matches

WAKE_KEY = "hub_wake_webhooks"
CLOCK_KEY = "hub_clock"
_PENDING_KEY = "hub_webhooks_queued"
_ENDPOINTS_KEY = "hub_webhook_endpoints"


async def fan_out(session: AsyncSession, event: Event) -> int:
    """Queue the event for every matching endpoint; returns how many deliveries it queued."""
    endpoint_ids = [endpoint_id for endpoint_id, patterns in await _enabled_endpoints(session, event.tenant_id)
                    if matches(patterns, event.type)]
    if not endpoint_ids:
        return 0
    now = session.info.get(CLOCK_KEY, utcnow)()
    await session.execute(insert(WebhookDelivery), [
        {"id": new_id(), "tenant_id": event.tenant_id, "endpoint_id": endpoint_id, "event_id": event.id,
         "event_type": event.type, "status": "pending", "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for endpoint_id in endpoint_ids
    ])
    queued(session)
    return len(endpoint_ids)


async def _enabled_endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> list[tuple[uuid.UUID, list]]:
    """The tenant's enabled endpoints, read once per transaction (a page of an inbound read may record a
    thousand events); a change to an endpoint in the transaction drops what was read."""
    cache = session.info.setdefault(_ENDPOINTS_KEY, {})
    if tenant_id not in cache:
        cache[tenant_id] = [tuple(row) for row in (await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types)
            .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True))
        )).all()]
    return cache[tenant_id]


@sa_event.listens_for(Session, "after_flush")
def _endpoints_changed(session: Session, _context) -> None:
    if _ENDPOINTS_KEY in session.info and any(
            isinstance(obj, WebhookEndpoint) for obj in (*session.new, *session.dirty, *session.deleted)):
        del session.info[_ENDPOINTS_KEY]


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_endpoints(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_ENDPOINTS_KEY, None)


def queued(session: AsyncSession) -> None:
    """Deliveries became due in this transaction: wake the sender once it commits."""
    session.info[_PENDING_KEY] = True


@sa_event.listens_for(Session, "after_commit")
def _wake_sender(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released, not the transaction
    if session.info.pop(_PENDING_KEY, False) and (wake := session.info.get(WAKE_KEY)) is not None:
        wake()


@sa_event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_PENDING_KEY, None)
