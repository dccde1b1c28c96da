"""Rows that have served their purpose, deleted by each process's background loop once an hour.

- OAuth states: single-use and valid for minutes; kept a day after they expire (the callback of a late
  user still reads "expired", not "unknown").
- Hosted-connect links: kept a week after they expired or were revoked (their page says "expired" and
  ``GET /v1/connect-sessions/{id}`` still shows them), then deleted with their token hash.
- Finished work, after ``HUB_RETENTION_DAYS`` (90; 0 keeps everything) since it last moved: webhook
  deliveries that succeeded or failed for good, with their attempts; inbound webhooks processed, failed or
  unrouted; jobs done or failed; events (the tenant's feed) none of whose deliveries is left. Pending work
  is never touched. Deleted a batch per transaction, so a large
  backlog never holds the database for long; each delete walks an existing index.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, exists, func, or_, select

from hub.db.locks import try_lock, unlock
from hub.db.models import (
    ConnectSession,
    Event,
    Job,
    OAuthState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookInbox,
)

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.housekeeping")

EVERY_SECONDS = 3600.0
OAUTH_STATES_KEPT = timedelta(days=1)
CONNECT_SESSIONS_KEPT = timedelta(days=7)
BATCH = 5000
HOUSEKEEPING_LOCK = "hub.housekeeping"


async def housekeep(hub: Hub) -> dict[str, int]:
    """Both purges, by one process at a time (on PostgreSQL, an advisory lock held for the run; processes
    that find it taken skip this hour: deleting the same rows side by side would only wait on each other)."""
    if hub.engine.dialect.name != "postgresql":
        return await purge_expired(hub) | await purge_history(hub)
    async with hub.engine.connect() as lock:
        if not await try_lock(lock, HOUSEKEEPING_LOCK):
            return {}
        try:
            return await purge_expired(hub) | await purge_history(hub)
        finally:
            await unlock(lock, HOUSEKEEPING_LOCK)
            await lock.commit()


async def purge_expired(hub: Hub) -> dict[str, int]:
    """Delete what has outlived its keeping; returns how many rows of each kind."""
    now = hub.clock()
    async with hub.session() as session:
        states = await session.execute(delete(OAuthState).where(OAuthState.expires_at < now - OAUTH_STATES_KEPT))
        cutoff = now - CONNECT_SESSIONS_KEPT
        links = await session.execute(delete(ConnectSession).where(
            or_(ConnectSession.expires_at < cutoff, ConnectSession.revoked_at < cutoff)))
    purged = {"oauth_states": states.rowcount, "connect_sessions": links.rowcount}
    if any(purged.values()):
        log.info("purged %d expired OAuth states and %d expired connect links", *purged.values())
    return purged


async def purge_history(hub: Hub) -> dict[str, int]:
    """Delete finished work older than the retention; returns how many rows of each kind. Age counts from
    when the work last moved: a delivery's newest attempt, an inbound webhook's processing, a job's end."""
    if hub.settings.retention_days <= 0:
        return {}
    cutoff = hub.clock() - timedelta(days=hub.settings.retention_days)
    purged = {"webhook_deliveries": 0, "webhook_inbox": 0, "jobs": 0, "events": 0}
    async with hub.session() as session:
        endpoints = list((await session.scalars(select(WebhookEndpoint.id))).all())
    recent_attempt = exists().where(WebhookAttempt.delivery_id == WebhookDelivery.id,
                                    WebhookAttempt.attempted_at >= cutoff)
    for endpoint_id in endpoints:  # by endpoint: (endpoint_id, created_at) is the deliveries' index
        purged["webhook_deliveries"] += await _delete_batches(
            hub, WebhookDelivery, WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.created_at < cutoff,
            WebhookDelivery.status.in_(("succeeded", "failed")), ~recent_attempt)
    purged["webhook_inbox"] = await _delete_batches(
        hub, WebhookInbox, WebhookInbox.status.in_(("processed", "failed", "unrouted")),
        WebhookInbox.received_at < cutoff, func.coalesce(WebhookInbox.processed_at, WebhookInbox.received_at) < cutoff)
    purged["jobs"] = await _delete_batches(
        hub, Job, Job.status.in_(("done", "failed")), Job.run_at < cutoff,
        func.coalesce(Job.finished_at, Job.run_at) < cutoff)
    # Events last: one whose deliveries are all gone (purged above, or there were none). A delivery still
    # pending, or sent again lately, keeps its event.
    purged["events"] = await _delete_batches(
        hub, Event, Event.occurred_at < cutoff, ~exists().where(WebhookDelivery.event_id == Event.id))
    if any(purged.values()):
        log.info("purged work older than %d days: %s", hub.settings.retention_days, purged)
    return purged


async def _delete_batches(hub: Hub, model, *where) -> int:
    total = 0
    while True:
        async with hub.session() as session:
            batch = select(model.id).where(*where).limit(BATCH).scalar_subquery()
            # The conditions again outside: PostgreSQL re-checks only the outer WHERE of a row that another
            # transaction changed meanwhile (a delivery redelivered, a job run again: pending once more).
            deleted = (await session.execute(delete(model).where(model.id.in_(batch), *where))).rowcount
        total += deleted
        if deleted < BATCH:
            return total
