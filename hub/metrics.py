"""Prometheus metrics: what each process counts as it works, and what ``/metrics`` reads from the database
when scraped (queue depth and age, which no one process could count).

HTTP requests by route template and status are Litestar's own Prometheus middleware (``hub_requests_total``,
``hub_request_duration_seconds``). ``hub serve`` serves ``/metrics``; ``hub worker --metrics-port`` serves
the same registry from each worker process. Labels are low-cardinality: provider, entity, job kind,
outcome, status — never a tenant, connection, URL or id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from hub.db.models import Job, WebhookDelivery

if TYPE_CHECKING:
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


async def read_queue_gauges(hub: Hub) -> None:
    """Queue depth and age, from the tables that are the queues (one query each)."""
    now = hub.clock()
    async with hub.session() as session:
        counts = dict((await session.execute(
            select(Job.status, func.count()).where(Job.status.in_(("pending", "running"))).group_by(Job.status)
        )).all())
        oldest_job = await session.scalar(select(func.min(Job.run_at)).where(Job.status == "pending",
                                                                              Job.run_at <= now))
        waiting = await session.scalar(select(func.count()).select_from(WebhookDelivery)
                                       .where(WebhookDelivery.status == "pending"))
        oldest_delivery = await session.scalar(select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now))
    for status in ("pending", "running"):
        JOBS_WAITING.labels(status).set(counts.get(status, 0))
    JOBS_OLDEST_DUE.set(_age(now, oldest_job))
    DELIVERIES_WAITING.set(waiting or 0)
    DELIVERIES_OLDEST_DUE.set(_age(now, oldest_delivery))


def _age(now, since) -> float:
    if since is None:
        return 0.0
    if since.tzinfo is None:  # SQLite's MIN() returns the stored text, without the column's conversion
        from datetime import UTC

        since = since.replace(tzinfo=UTC)
    return max(0.0, (now - since).total_seconds())


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
