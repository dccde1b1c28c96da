"""The outbox: work is a row written in the same transaction as its cause.

After the transaction commits, the ids of jobs that are due are sent to the broker (a nudge). A worker
claims the row atomically, so a duplicate nudge is harmless; a lost one is re-sent by the relay. A job
that fails waits in its row (``run_at``) for its next attempt; one that exhausts its attempts stays
``failed`` with its error until someone retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hub.db.models import Job
from hub.errors import Conflict, HubError, NotFound
from hub.ids import new_id
from hub.logs import log_context
from hub.metrics import JOBS
from hub.webhooks.fanout import CLOCK_KEY

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.jobs")

JobHandler = Callable[["Hub", Job], Awaitable[None]]
OUTBOX_KEY = "hub_outbox"

# Every kind of job the core runs: kind -> ("module:handler", "module:give_up" or None), imported when a
# job of that kind runs. A give-up handler runs when the job fails for good, in that same transaction.
JOB_KINDS: dict[str, tuple[str, str | None]] = {
    "sync.run": ("hub.sync.engine:run_sync", "hub.sync.engine:run_gave_up"),
    "webhook.process": ("hub.webhooks.process:process_webhook", "hub.webhooks.process:webhook_gave_up"),
    "event.observe": ("hub.observers:observe", None),
}


def _resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def handler_for(kind: str) -> JobHandler:
    return _resolve(JOB_KINDS[kind][0])


def give_up_handler_for(kind: str):
    target = JOB_KINDS.get(kind, (None, None))[1]
    return _resolve(target) if target else None


def now() -> datetime:
    return datetime.now(UTC)


def _clock(session: AsyncSession | Session) -> datetime:
    """Now by the clock of the Hub that opened the session (``Hub.clock``; tests move it by hand)."""
    return session.info.get(CLOCK_KEY, now)()


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at an hour, with jitter so retries of a failed batch spread out."""
    base = min(5 * 2 ** (attempt - 1), 3600)
    return timedelta(seconds=base * random.uniform(0.75, 1.25))


def enqueue(
    session: AsyncSession, kind: str, payload: dict[str, Any], *, tenant_id: uuid.UUID | None = None,
    run_at: datetime | None = None, max_attempts: int = 8, id: uuid.UUID | None = None,
) -> Job:
    """Add a job to the caller's transaction. It is sent to a worker only if that transaction commits."""
    if kind not in JOB_KINDS:
        raise ValueError(f"no job handler for {kind!r}")
    moment = _clock(session)
    due = run_at is None or run_at <= moment
    dispatch = session.info.get("hub_dispatch")
    job = Job(id=id or new_id(), tenant_id=tenant_id, kind=kind, payload=payload, status="pending",
              run_at=run_at or moment, max_attempts=max_attempts,
              sent_at=moment if due and dispatch is not None else None)
    session.add(job)
    if due and dispatch is not None:
        session.info.setdefault(OUTBOX_KEY, []).append(job.id)
    return job


def job_rows(kind: str, jobs: Sequence[tuple[uuid.UUID, dict[str, Any], uuid.UUID | None]], *,
             max_attempts: int = 8, sent: bool = False, moment: datetime | None = None) -> list[dict[str, Any]]:
    """Rows of the ``jobs`` table for many jobs of one kind due now — (id, payload, tenant id) each — for
    a caller that inserts them in bulk in its own transaction and, with ``sent``, nudges the workers
    about each id once it commits (as ``enqueue`` does after commit)."""
    if kind not in JOB_KINDS:
        raise ValueError(f"no job handler for {kind!r}")
    moment = moment or now()
    return [
        {"id": job_id, "tenant_id": tenant_id, "kind": kind, "payload": payload, "status": "pending",
         "attempts": 0, "max_attempts": max_attempts, "run_at": moment, "sent_at": moment if sent else None,
         "created_at": moment, "updated_at": moment}
        for job_id, payload, tenant_id in jobs
    ]


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released (SQLAlchemy calls that a commit too): the jobs are not committed yet
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
    if session.in_nested_transaction():
        return  # back to a SAVEPOINT: jobs enqueued before it still commit with the transaction
    session.info.pop(OUTBOX_KEY, None)


class Defer(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised by a handler that cannot run yet (e.g. an earlier run of the same entity is still going):
    the job goes back to its row, due again after ``seconds``, without spending an attempt."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


def is_permanent(error: BaseException) -> bool:
    """Errors no retry can fix: the connection is gone, the plugin no longer handles this, bad input."""
    return isinstance(error, LookupError) or (isinstance(error, HubError) and error.status < 500)


def describe(error: BaseException) -> str:
    """What is stored and shown of an error: its type and message, without a URL's query string (which
    may carry a key) or the SQL parameters of a database error (which are tenant data)."""
    message = str(getattr(error, "orig", None) or error).splitlines()[0] if str(error) else ""
    message = _QUERY.sub("?…", message)
    return f"{type(error).__name__}: {message}"[:2000]


_QUERY = re.compile(r"\?[^\s'\"<>]*")


async def claim(hub: Hub, job_id: uuid.UUID) -> Job | None:
    """Take the job if it is due and nobody holds it (or its holder's lease ran out). None otherwise."""
    moment = hub.clock()
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


def _held(job: Job):
    """The claim this worker holds: a stale worker (whose lease another took over) matches nothing."""
    return (Job.id == job.id) & (Job.status == "running") & (Job.attempts == job.attempts)


async def heartbeat(hub: Hub, job: Job) -> bool:
    """Extend the lease; False when this worker no longer holds the job."""
    async with hub.session() as session:
        result = await session.execute(
            update(Job).where(_held(job)).values(locked_until=hub.clock() + hub.settings.job_lease)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


async def _keep_lease(hub: Hub, job: Job, work: asyncio.Task) -> None:
    """Renew the lease for as long as the job runs; stop the work if the lease was lost."""
    interval = max(0.05, hub.settings.job_lease_seconds / 3)
    while not work.done():
        await asyncio.sleep(interval)
        if not work.done() and not await heartbeat(hub, job):
            log.warning("job %s lost its lease to another worker; stopping here", job.id)
            work.cancel()
            return


async def complete(hub: Hub, job: Job) -> bool:
    async with hub.session() as session:
        result = await session.execute(
            update(Job).where(_held(job))
            .values(status="done", locked_until=None, finished_at=hub.clock(), last_error=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


async def fail(hub: Hub, job: Job, error: BaseException) -> str | None:
    """Record a failed attempt: back to ``pending`` after a backoff, or ``failed`` when out of attempts
    (or the error is permanent), in which case the job kind's give-up handler runs in the same
    transaction (a sync run is marked failed with it). None when this worker no longer held the job."""
    message = describe(error)
    exhausted = job.attempts >= job.max_attempts or is_permanent(error)
    values: dict[str, Any] = {"last_error": message, "locked_until": None, "sent_at": None}
    if exhausted:
        values |= {"status": "failed", "finished_at": hub.clock()}
    else:
        values |= {"status": "pending", "run_at": hub.clock() + backoff(job.attempts)}
    async with hub.session() as session:
        result = await session.execute(update(Job).where(_held(job)).values(**values)
                                       .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            return None
        if exhausted and (give_up := give_up_handler_for(job.kind)) is not None:
            await give_up(session, job, message)
    log.warning("job %s (%s) attempt %d failed%s: %s", job.id, job.kind, job.attempts,
                "; giving up" if exhausted else "; will retry", message)
    return values["status"]


async def defer(hub: Hub, job: Job, wait: Defer) -> str | None:
    async with hub.session() as session:
        result = await session.execute(
            update(Job).where(_held(job)).values(
                status="pending", attempts=Job.attempts - 1, run_at=hub.clock() + timedelta(seconds=wait.seconds),
                locked_until=None, sent_at=None,
            ).execution_options(synchronize_session=False)
        )
    return "pending" if result.rowcount == 1 else None


async def execute(hub: Hub, job_id: uuid.UUID, *, reraise: bool = False) -> str | None:
    """Run one job if it can be claimed. Returns its new status (None: not claimable, or another worker
    took it over meanwhile). With ``reraise`` a failed attempt is recorded as usual and its error then
    raised (``hub.testing.run_jobs``: a test sees the plugin's own exception)."""
    job = await claim(hub, job_id)
    if job is None:
        return None
    with log_context(job_id=str(job.id), tenant_id=str(job.tenant_id) if job.tenant_id else None):
        return await _run(hub, job, reraise)


async def _run(hub: Hub, job: Job, reraise: bool) -> str | None:
    work = asyncio.ensure_future(handler_for(job.kind)(hub, job))
    lease = asyncio.create_task(_keep_lease(hub, job, work))
    try:
        await work
    except asyncio.CancelledError:
        if lease.done() and work.cancelled():
            return None  # the lease was lost and the work stopped; the new holder carries on
        lease.cancel()
        raise  # cancelled from outside: pass it on
    except Defer as wait:
        await _stop(lease)
        JOBS.labels(job.kind, "deferred").inc()
        return await defer(hub, job, wait)
    except Exception as exc:
        await _stop(lease)
        status = await fail(hub, job, exc)
        JOBS.labels(job.kind, "retry" if status == "pending" else "failed").inc()
        if reraise:
            raise
        return status
    await _stop(lease)
    JOBS.labels(job.kind, "done").inc()
    return "done" if await complete(hub, job) else None


async def _stop(lease: asyncio.Task) -> None:
    """Stop renewing the lease, and wait for a renewal in flight, before the job's row is written back
    (else the two transactions wait on each other's row lock)."""
    lease.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await lease


async def retry(session: AsyncSession, job_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> Job:
    """Give a failed job a fresh set of attempts, due now."""
    job = await session.get(Job, job_id)
    if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
        raise NotFound("no such job", code="job_not_found")
    if job.status != "failed":
        raise Conflict(f"only failed jobs can be retried; this one is {job.status}", code="job_not_failed")
    job.status, job.attempts, job.run_at, job.finished_at, job.sent_at = "pending", 0, _clock(session), None, None
    await session.flush()
    if session.info.get("hub_dispatch") is not None:
        job.sent_at = _clock(session)
        session.info.setdefault(OUTBOX_KEY, []).append(job.id)
    return job


async def due_job_ids(session: AsyncSession, resend_after: timedelta, limit: int = 500) -> list[uuid.UUID]:
    """Jobs a worker should be nudged about: due and never sent (or sent long ago without being
    picked up), or running past their lease (their worker died)."""
    moment = _clock(session)
    stmt = (
        select(Job.id)
        .where(or_(
            (Job.status == "pending") & (Job.run_at <= moment)
            & (Job.sent_at.is_(None) | (Job.sent_at < moment - resend_after)),
            # An orphan is sent once when its lease runs out (not on every tick while workers are busy),
            # and again only if that message too seems lost.
            (Job.status == "running") & (Job.locked_until < moment)
            & (Job.sent_at.is_(None) | (Job.sent_at < Job.locked_until) | (Job.sent_at < moment - resend_after)),
        ))
        .order_by(Job.run_at)
        .limit(limit)
    )
    ids = list((await session.scalars(stmt)).all())
    if ids:
        await session.execute(update(Job).where(Job.id.in_(ids)).values(sent_at=moment))
    return ids
