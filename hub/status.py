"""What needs an operator's attention, across every tenant (``hub status``): connections in error, failing
webhook endpoints, stuck and failed jobs, the last sync of each flow, inbound webhooks that went nowhere,
and the queues' depth. One aggregate query per part, however many tenants there are; each list is cut at
``limit`` rows (the ones that need attention first) and carries its full ``total``.

Nothing here reads a secret: error texts are the hub's own short descriptions, masked again for anything
shaped like a key, and an endpoint is shown by its URL's host only (a path or query may hold a token).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Generic, TypeVar
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import (
    Connection,
    Job,
    SyncRun,
    Tenant,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookInbox,
)
from hub.logs import redact
from hub.metrics import QueueDepth, aware, queue_depth
from hub.webhooks.endpoints import DISABLED_BY_TENANT

T = TypeVar("T")

RECENT = timedelta(hours=24)
"""Failed jobs and inbound webhooks that failed or matched no connection count when this recent."""
RETRYING_AFTER = 3
"""An enabled endpoint is failing once a delivery to it has failed this many attempts in a row (about 35
minutes on the retry schedule) and is still retrying, or an event ran out of attempts since its last success."""
SYNC_PROBLEMS = ("failed", "completed_with_errors")
INBOX_PROBLEMS = ("failed", "unrouted")


class Part(msgspec.Struct, Generic[T]):
    total: int
    items: list[T]


class ConnectionInError(msgspec.Struct, kw_only=True):
    tenant_id: uuid.UUID
    tenant: str
    provider: str
    account: str | None
    since: datetime
    """When the connection last changed: it has been in error at least since then."""
    error: str | None


class FailingEndpoint(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant: str
    host: str
    enabled: bool
    consecutive_failures: int
    """Events in a row that ran out of attempts (ten disable the endpoint)."""
    retrying: int
    """Deliveries that have failed at least ``RETRYING_AFTER`` attempts and will be tried again."""
    disabled_reason: str | None
    disabled_at: datetime | None
    last_attempt_at: datetime | None
    """The latest attempt at a delivery still retrying or created in the last day and a half."""


class JobLine(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    tenant_id: uuid.UUID | None
    tenant: str | None
    status: str
    attempts: int
    since: datetime
    """Stuck: when its lease ran out (running) or when it fell due (pending). Failed: when it gave up."""
    last_error: str | None


class LastSync(msgspec.Struct, kw_only=True):
    tenant_id: uuid.UUID
    tenant: str
    provider: str
    entity: str
    direction: str
    status: str
    processed: int
    created: int
    updated: int
    unchanged: int
    failed: int
    at: datetime
    """When the run finished (or, still going, was created)."""


class InboxProblem(msgspec.Struct, kw_only=True):
    provider: str
    status: str
    count: int
    recent: int
    """How many of them arrived within ``RECENT``."""
    newest: datetime


class Status(msgspec.Struct, kw_only=True):
    checked_at: datetime
    healthy: bool
    attention: list[str]
    """One line per kind of problem, e.g. "2 connections in error"; empty when healthy."""
    stuck_after_minutes: float
    queue: QueueDepth
    connections_in_error: Part[ConnectionInError]
    failing_endpoints: Part[FailingEndpoint]
    stuck_jobs: Part[JobLine]
    failed_jobs_last_24h: Part[JobLine]
    last_syncs: Part[LastSync]
    inbound_webhooks: list[InboxProblem]


async def read_status(session: AsyncSession, now: datetime, *, stuck_after: timedelta, limit: int) -> Status:
    connections = await connections_in_error(session, limit)
    endpoints = await failing_endpoints(session, now, limit)
    stuck = await stuck_jobs(session, now, stuck_after, limit)
    failed = await failed_jobs(session, now - RECENT, limit)
    syncs, failed_syncs = await last_syncs(session, limit)
    inbox = await inbound_problems(session, now - RECENT)
    attention = [f"{count} {noun if count == 1 else plural} {what}".rstrip() for count, noun, plural, what in [
        (connections.total, "connection", "connections", "in error"),
        (endpoints.total, "webhook endpoint", "webhook endpoints", "failing or disabled by the hub"),
        (stuck.total, "stuck job", "stuck jobs", ""),
        (failed.total, "job", "jobs", "failed in the last 24 h"),
        (failed_syncs, "flow", "flows", "whose last sync failed or had failed records"),
        (sum(p.recent for p in inbox), "inbound webhook", "inbound webhooks", "failed or unrouted in the last 24 h"),
    ] if count]
    return Status(checked_at=now, healthy=not attention, attention=attention,
                  stuck_after_minutes=stuck_after.total_seconds() / 60, queue=await queue_depth(session, now),
                  connections_in_error=connections, failing_endpoints=endpoints, stuck_jobs=stuck,
                  failed_jobs_last_24h=failed, last_syncs=syncs, inbound_webhooks=inbox)


def _total():
    return func.count().over().label("total")


def _text(value: str | None) -> str | None:
    return None if value is None else redact(value)


async def connections_in_error(session: AsyncSession, limit: int) -> Part[ConnectionInError]:
    rows = (await session.execute(
        select(Connection.tenant_id, Tenant.name, Connection.provider, Connection.external_account_name,
               Connection.updated_at, Connection.last_error, _total())
        .join(Tenant, Tenant.id == Connection.tenant_id)
        .where(Connection.status == "error")
        .order_by(Connection.updated_at.desc(), Connection.id).limit(limit)
    )).all()
    return Part(rows[0].total if rows else 0, [
        ConnectionInError(tenant_id=r.tenant_id, tenant=r.name, provider=r.provider, account=r.external_account_name,
                          since=r.updated_at, error=_text(r.last_error)) for r in rows])


async def failing_endpoints(session: AsyncSession, now: datetime, limit: int) -> Part[FailingEndpoint]:
    # Deliveries still retrying after repeated failures, per endpoint (the pending backlog is small).
    retrying = (
        select(WebhookDelivery.endpoint_id, func.count().label("retrying"))
        .where(WebhookDelivery.status == "pending", WebhookDelivery.attempts >= RETRYING_AFTER)
        .group_by(WebhookDelivery.endpoint_id).subquery()
    )
    problem = or_(
        and_(WebhookEndpoint.enabled.is_(False), WebhookEndpoint.disabled_reason != DISABLED_BY_TENANT),
        and_(WebhookEndpoint.enabled.is_(True),
             or_(WebhookEndpoint.consecutive_failures > 0, retrying.c.retrying.is_not(None))),
    )
    rows = (await session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.tenant_id, Tenant.name, WebhookEndpoint.url,
               WebhookEndpoint.enabled, WebhookEndpoint.consecutive_failures, retrying.c.retrying,
               WebhookEndpoint.disabled_reason, WebhookEndpoint.disabled_at, _total())
        .join(Tenant, Tenant.id == WebhookEndpoint.tenant_id)
        .outerjoin(retrying, retrying.c.endpoint_id == WebhookEndpoint.id)
        .where(problem)
        .order_by(WebhookEndpoint.enabled, WebhookEndpoint.consecutive_failures.desc(), WebhookEndpoint.id)
        .limit(limit)
    )).all()
    last = await _last_attempts(session, [r.id for r in rows], now)
    return Part(rows[0].total if rows else 0, [
        FailingEndpoint(id=r.id, tenant_id=r.tenant_id, tenant=r.name, host=urlsplit(r.url).hostname or "?",
                        enabled=r.enabled, consecutive_failures=r.consecutive_failures, retrying=r.retrying or 0,
                        disabled_reason=_text(r.disabled_reason), disabled_at=r.disabled_at,
                        last_attempt_at=last.get(r.id)) for r in rows])


async def _last_attempts(session: AsyncSession, endpoint_ids: list[uuid.UUID], now: datetime) -> dict:
    """The latest attempt per endpoint, through its recent deliveries (attempts are indexed by delivery; a
    delivery's eight attempts span about 33 hours, so any attempt of the last day is on one of these)."""
    if not endpoint_ids:
        return {}
    rows = await session.execute(
        select(WebhookDelivery.endpoint_id, func.max(WebhookAttempt.attempted_at))
        .join(WebhookAttempt, WebhookAttempt.delivery_id == WebhookDelivery.id)
        .where(WebhookDelivery.endpoint_id.in_(endpoint_ids), WebhookDelivery.created_at >= now - timedelta(hours=36))
        .group_by(WebhookDelivery.endpoint_id)
    )
    return {endpoint_id: aware(at) for endpoint_id, at in rows.all()}


def _job_lines(rows, since) -> Part[JobLine]:
    return Part(rows[0].total if rows else 0, [
        JobLine(id=r.Job.id, kind=r.Job.kind, tenant_id=r.Job.tenant_id, tenant=r.name, status=r.Job.status,
                attempts=r.Job.attempts, since=since(r.Job), last_error=_text(r.Job.last_error)) for r in rows])


async def stuck_jobs(session: AsyncSession, now: datetime, stuck_after: timedelta, limit: int) -> Part[JobLine]:
    """Running past their lease (the worker died and no other took it over), or due and not picked up for
    longer than ``stuck_after`` (no worker is running, or the broker lost the message and the relay too)."""
    lost = (Job.status == "running") & (Job.locked_until < now)
    waiting = (Job.status == "pending") & (Job.run_at <= now - stuck_after)
    rows = (await session.execute(
        select(Job, Tenant.name, _total()).outerjoin(Tenant, Tenant.id == Job.tenant_id)
        .where(or_(lost, waiting)).order_by(Job.run_at, Job.id).limit(limit)
    )).all()
    return _job_lines(rows, lambda job: job.locked_until if job.status == "running" else job.run_at)


async def failed_jobs(session: AsyncSession, since: datetime, limit: int) -> Part[JobLine]:
    rows = (await session.execute(
        select(Job, Tenant.name, _total()).outerjoin(Tenant, Tenant.id == Job.tenant_id)
        .where(Job.status == "failed", Job.finished_at >= since)
        .order_by(Job.finished_at.desc(), Job.id).limit(limit)
    )).all()
    return _job_lines(rows, lambda job: job.finished_at)


async def last_syncs(session: AsyncSession, limit: int) -> tuple[Part[LastSync], int]:
    """The latest run of each (tenant, provider, entity, direction): those that failed first, then the
    longest ago. Also how many of them failed or had failed records."""
    ranked = select(
        SyncRun.tenant_id, SyncRun.provider, SyncRun.entity, SyncRun.direction, SyncRun.status, SyncRun.processed,
        SyncRun.created, SyncRun.updated, SyncRun.unchanged, SyncRun.failed,
        func.coalesce(SyncRun.finished_at, SyncRun.created_at).label("at"),
        func.row_number().over(partition_by=(SyncRun.connection_id, SyncRun.entity, SyncRun.direction),
                               order_by=(SyncRun.created_at.desc(), SyncRun.id.desc())).label("rank"),
    ).subquery()
    is_problem = case((ranked.c.status.in_(SYNC_PROBLEMS), 1), else_=0)
    rows = (await session.execute(
        select(ranked, Tenant.name, _total(), func.sum(is_problem).over().label("problems"))
        .join(Tenant, Tenant.id == ranked.c.tenant_id)
        .where(ranked.c.rank == 1)
        .order_by(is_problem.desc(), ranked.c.at, ranked.c.provider, ranked.c.entity).limit(limit)
    )).all()
    part = Part(rows[0].total if rows else 0, [
        LastSync(tenant_id=r.tenant_id, tenant=r.name, provider=r.provider, entity=r.entity, direction=r.direction,
                 status=r.status, processed=r.processed, created=r.created, updated=r.updated,
                 unchanged=r.unchanged, failed=r.failed, at=aware(r.at)) for r in rows])
    return part, int(rows[0].problems) if rows else 0


async def inbound_problems(session: AsyncSession, recent_since: datetime) -> list[InboxProblem]:
    """Inbound webhooks that failed or matched no connection, per provider: how many, how many lately."""
    rows = await session.execute(
        select(WebhookInbox.provider, WebhookInbox.status, func.count(),
               func.sum(case((WebhookInbox.received_at >= recent_since, 1), else_=0)),
               func.max(WebhookInbox.received_at))
        .where(WebhookInbox.status.in_(INBOX_PROBLEMS))
        .group_by(WebhookInbox.provider, WebhookInbox.status).order_by(WebhookInbox.provider, WebhookInbox.status)
    )
    return [InboxProblem(provider=provider, status=status, count=count, recent=int(recent or 0),
                         newest=aware(newest)) for provider, status, count, recent, newest in rows.all()]
