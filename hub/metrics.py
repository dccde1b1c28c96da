"""Prometheus metrics: what each process counts as it works, and what ``/metrics`` reads from the database
when scraped (queue depth and age, which no one process could count).

HTTP requests by route template and status are Litestar's own Prometheus middleware (``hub_requests_total``,
``hub_request_duration_seconds``). ``hub serve`` serves ``/metrics``; ``hub worker --metrics-port`` serves
the same registry from each worker process. Labels are low-cardinality: provider, entity, job kind,
outcome, status — never a tenant, connection, URL or id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from hub.db.models import Job, WebhookDelivery

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from hub.runtime import Hub

PROVIDER_REQUESTS = Counter(
    "hub_provider_requests", "Requests to providers, each attempt, by provider and status (or error type)",
    ["provider", "status"])
PROVIDER_RETRIES = Counter("hub_provider_retries", "Provider requests retried, by provider and reason",
                           ["provider", "reason"])
PROVIDER_SECONDS = Histogram("hub_provider_request_duration_seconds", "Time a provider took to answer",
                             ["provider"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
TOKEN_REFRESHES = Counter("hub_token_refreshes", "OAuth token refreshes, by provider and outcome",
                          ["provider", "outcome"])
JOBS = Counter("hub_jobs", "Job attempts finished, by kind and outcome (done, retry, failed, deferred)",
               ["kind", "outcome"])
SYNC_RECORDS = Counter("hub_sync_records", "Records through syncs, by provider, entity, direction and outcome",
                       ["provider", "entity", "direction", "outcome"])
WEBHOOKS_RECEIVED = Counter("hub_webhooks_received", "Provider webhooks, by provider and outcome "
                            "(stored, duplicate, rejected)", ["provider", "outcome"])
DELIVERIES = Counter("hub_webhook_deliveries", "Outgoing webhook attempts, by outcome "
                     "(delivered, failed, refused)", ["outcome"])
DELIVERY_SECONDS = Histogram("hub_webhook_delivery_duration_seconds", "Time tenants' endpoints took to answer",
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15))

JOBS_WAITING = Gauge("hub_jobs_waiting", "Jobs not finished, by status (pending, running)", ["status"])
JOBS_OLDEST_DUE = Gauge("hub_jobs_oldest_due_seconds", "How long the longest-waiting due job has waited")
DELIVERIES_WAITING = Gauge("hub_webhook_deliveries_waiting", "Outgoing webhooks not yet delivered")
DELIVERIES_OLDEST_DUE = Gauge("hub_webhook_deliveries_oldest_due_seconds",
                              "How long the longest-waiting due outgoing webhook has waited")


class QueueDepth(msgspec.Struct, kw_only=True):
    """The queues are tables: jobs not finished, and outgoing webhooks not yet delivered."""

    jobs_pending: int
    jobs_running: int
    oldest_due_job_seconds: float
    """How long the longest-waiting due job has waited (0 when none is due)."""
    deliveries_waiting: int
    oldest_due_delivery_seconds: float


async def queue_depth(session: AsyncSession, now: datetime) -> QueueDepth:
    """Queue depth and age (one query each): the gauges below, and ``hub status``."""
    counts = dict((await session.execute(
        select(Job.status, func.count()).where(Job.status.in_(("pending", "running"))).group_by(Job.status)
    )).all())
    oldest_job = await session.scalar(select(func.min(Job.run_at)).where(Job.status == "pending",
                                                                          Job.run_at <= now))
    waiting = await session.scalar(select(func.count()).select_from(WebhookDelivery)
                                   .where(WebhookDelivery.status == "pending"))
    oldest_delivery = await session.scalar(select(func.min(WebhookDelivery.next_attempt_at)).where(
        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now))
    return QueueDepth(jobs_pending=counts.get("pending", 0), jobs_running=counts.get("running", 0),
                      oldest_due_job_seconds=age_seconds(now, oldest_job), deliveries_waiting=waiting or 0,
                      oldest_due_delivery_seconds=age_seconds(now, oldest_delivery))


async def read_queue_gauges(hub: Hub) -> None:
    async with hub.session() as session:
        depth = await queue_depth(session, hub.clock())
    JOBS_WAITING.labels("pending").set(depth.jobs_pending)
    JOBS_WAITING.labels("running").set(depth.jobs_running)
    JOBS_OLDEST_DUE.set(depth.oldest_due_job_seconds)
    DELIVERIES_WAITING.set(depth.deliveries_waiting)
    DELIVERIES_OLDEST_DUE.set(depth.oldest_due_delivery_seconds)


def age_seconds(now: datetime, since: datetime | None) -> float:
    since = aware(since)
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def aware(value: datetime | str | None) -> datetime | None:
    """An aggregate's datetime as a UTC one: SQLite's MIN() and MAX() return the stored value (naive, or text)
    without the column's conversion."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
