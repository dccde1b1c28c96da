"""The outbox: work is a row written in the same transaction as its cause.

After the transaction commits, the ids of jobs that are due are sent to the broker (a nudge). A worker
claims the row atomically, so a duplicate nudge is harmless; a lost one is re-sent by the relay. A job
that fails waits in its row (``run_at``) for its next attempt; one that exhausts its attempts stays
``failed`` with its error until someone retries it.
"""

from __future__ import annotations

import importlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hub.db.models import Job
from hub.errors import Conflict, NotFound

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.jobs")

JobHandler = Callable[["Hub", Job], Awaitable[None]]
OUTBOX_KEY = "hub_outbox"

# Every kind of job the core runs: kind -> "module:function", imported when a job of that kind runs.
JOB_KINDS = {
    "sync.run": "hub.sync.engine:run_sync",
}


def handler_for(kind: str) -> JobHandler:
    module, _, name = JOB_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def now() -> datetime:
    return datetime.now(UTC)


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at an hour, with jitter so retries of a failed batch spread out."""
    base = min(5 * 2 ** (attempt - 1), 3600)
    return timedelta(seconds=base * random.uniform(0.75, 1.25))


def enqueue(
    session: AsyncSession, kind: str, payload: dict[str, Any], *, tenant_id: uuid.UUID | None = None,
    run_at: datetime | None = None, max_attempts: int = 8,
) -> Job:
    """Add a job to the caller's transaction. It is sent to a worker only if that transaction commits."""
    if kind not in JOB_KINDS:
        raise ValueError(f"no job handler for {kind!r}")
    due = run_at is None or run_at <= now()
    dispatch = session.info.get("hub_dispatch")
    job = Job(id=uuid.uuid4(), tenant_id=tenant_id, kind=kind, payload=payload, status="pending",
              run_at=run_at or now(), max_attempts=max_attempts,
              sent_at=now() if due and dispatch is not None else None)
    session.add(job)
    if due and dispatch is not None:
        session.info.setdefault(OUTBOX_KEY, []).append(job.id)
    return job


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    ids = session.info.pop(OUTBOX_KEY, None)
    dispatch = session.info.get("hub_dispatch")
    if ids and dispatch is not None:
        for job_id in ids:
            try:
                dispatch(job_id)
            except Exception as exc:  # the relay re-sends it; the work itself is safe in its row
                log.warning("could not send job %s to the broker (%s); the relay will", job_id, type(exc).__name__)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(OUTBOX_KEY, None)


async def claim(hub: Hub, job_id: uuid.UUID) -> Job | None:
    """Take the job if it is due and nobody holds it (or its holder's lease ran out). None otherwise."""
    moment = now()
    async with hub.session() as session:
        result = await session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(
                    (Job.status == "pending") & (Job.run_at <= moment),
                    (Job.status == "running") & (Job.locked_until < moment),
                ),
            )
            .values(status="running", attempts=Job.attempts + 1, locked_until=moment + hub.settings.job_lease,
                    updated_at=moment)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return None
        return await session.get(Job, job_id)


async def heartbeat(hub: Hub, job: Job) -> None:
    """Extend the lease of a long job so the relay does not hand it to another worker."""
    async with hub.session() as session:
        await session.execute(
            update(Job).where(Job.id == job.id, Job.status == "running")
            .values(locked_until=now() + hub.settings.job_lease)
        )


async def complete(hub: Hub, job: Job) -> None:
    async with hub.session() as session:
        await session.execute(
            update(Job).where(Job.id == job.id)
            .values(status="done", locked_until=None, finished_at=now(), last_error=None)
        )


async def fail(hub: Hub, job: Job, error: BaseException) -> str:
    """Record a failed attempt: back to ``pending`` after a backoff, or ``failed`` when out of attempts."""
    message = f"{type(error).__name__}: {error}"[:2000]
    exhausted = job.attempts >= job.max_attempts
    values: dict[str, Any] = {"last_error": message, "locked_until": None, "sent_at": None}
    if exhausted:
        values |= {"status": "failed", "finished_at": now()}
    else:
        values |= {"status": "pending", "run_at": now() + backoff(job.attempts)}
    async with hub.session() as session:
        await session.execute(update(Job).where(Job.id == job.id).values(**values))
    log.warning("job %s (%s) attempt %d failed%s: %s", job.id, job.kind, job.attempts,
                "; giving up" if exhausted else "; will retry", message)
    return values["status"]


async def execute(hub: Hub, job_id: uuid.UUID) -> str | None:
    """Run one job if it can be claimed. Returns its new status (None: not claimable, nothing done)."""
    job = await claim(hub, job_id)
    if job is None:
        return None
    try:
        await handler_for(job.kind)(hub, job)
    except Exception as exc:
        return await fail(hub, job, exc)
    await complete(hub, job)
    return "done"


async def retry(session: AsyncSession, job_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> Job:
    """Give a failed job a fresh set of attempts, due now."""
    job = await session.get(Job, job_id)
    if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
        raise NotFound("no such job", code="job_not_found")
    if job.status != "failed":
        raise Conflict(f"only failed jobs can be retried; this one is {job.status}", code="job_not_failed")
    job.status, job.attempts, job.run_at, job.finished_at, job.sent_at = "pending", 0, now(), None, None
    await session.flush()
    if session.info.get("hub_dispatch") is not None:
        job.sent_at = now()
        session.info.setdefault(OUTBOX_KEY, []).append(job.id)
    return job


async def due_job_ids(session: AsyncSession, resend_after: timedelta, limit: int = 500) -> list[uuid.UUID]:
    """Jobs a worker should be nudged about: due and never sent (or sent long ago without being
    picked up), or running past their lease (their worker died)."""
    moment = now()
    stmt = (
        select(Job.id)
        .where(or_(
            (Job.status == "pending") & (Job.run_at <= moment)
            & (Job.sent_at.is_(None) | (Job.sent_at < moment - resend_after)),
            (Job.status == "running") & (Job.locked_until < moment),
        ))
        .order_by(Job.run_at)
        .limit(limit)
    )
    ids = list((await session.scalars(stmt)).all())
    if ids:
        await session.execute(update(Job).where(Job.id.in_(ids)).values(sent_at=moment))
    return ids
