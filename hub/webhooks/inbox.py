"""Reading the inbox: what arrived, its status, attempts and last error."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import Counter, WebhookInbox
from hub.errors import NotFound

STATUSES = ("pending", "processed", "failed", "unrouted")


class InboxOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: uuid.UUID
    provider: str
    event_type: str | None
    account_id: str | None
    connection_id: uuid.UUID | None
    status: str
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None
    payload: Any = None
    body: str | None = None


def inbox_out(row: WebhookInbox, full: bool = False) -> InboxOut:
    out = InboxOut(id=row.id, provider=row.provider, event_type=row.event_type, account_id=row.account_id,
                   connection_id=row.connection_id, status=row.status, attempts=row.attempts,
                   last_error=row.last_error, received_at=row.received_at, processed_at=row.processed_at)
    if full:
        out.payload, out.body = row.payload, row.body
    return out


async def list_inbox(session: AsyncSession, *, tenant_id: uuid.UUID | None, status: str | None,
                     provider: str | None, before: datetime | None, limit: int) -> list[WebhookInbox]:
    """Newest first. ``tenant_id`` None: every tenant's and the unrouted (the operator's view)."""
    stmt = select(WebhookInbox).order_by(WebhookInbox.received_at.desc()).limit(limit)
    if tenant_id is not None:
        stmt = stmt.where(WebhookInbox.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(WebhookInbox.status == status)
    if provider is not None:
        stmt = stmt.where(WebhookInbox.provider == provider)
    if before is not None:
        stmt = stmt.where(WebhookInbox.received_at < before)
    return list((await session.scalars(stmt)).all())


async def get_inbox(session: AsyncSession, inbox_id: uuid.UUID, tenant_id: uuid.UUID | None) -> WebhookInbox:
    row = await session.get(WebhookInbox, inbox_id)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise NotFound("no such inbound webhook", code="webhook_not_found")
    return row


async def rejection_counts(session: AsyncSession) -> dict[str, int]:
    """Webhooks refused for a bad signature, per provider, since the database was created."""
    from hub.webhooks.inbound import rejected_counter

    prefix = rejected_counter("")
    rows = await session.execute(select(Counter.name, Counter.value).where(Counter.name.startswith(prefix)))
    return {name.removeprefix(prefix): value for name, value in rows.all()}
