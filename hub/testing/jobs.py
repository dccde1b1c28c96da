"""Run the hub's jobs inline, in the test's own event loop, until none is due: the simplest way for a
plugin's test to see a sync, a webhook's processing or an observer through to the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from hub.db.models import Job
from hub.jobs import outbox

if TYPE_CHECKING:
    from hub.runtime import Hub


@dataclass(frozen=True)
class Ran:
    kind: str
    status: str | None
    """What the job's row says after the attempt: ``done``, ``pending`` (deferred or retried later) ..."""


async def run_jobs(hub: Hub, *, limit: int = 1000, raise_errors: bool = True) -> list[Ran]:
    """Execute every job that is due by ``hub.clock()`` — and the jobs those create — one at a time, until
    none is left; return what ran. The first job that raises is recorded as a failed attempt, as a worker
    would record it, and its exception is raised here (``raise_errors=False`` goes on instead: the job
    waits for its retry, which a moved ``Clock`` can bring forward). A job deferred (say, behind another
    run of the same entity) waits in its row; advance the clock to run it.

    Do not mix this with the ``jobs`` fixture's workers: both would take the same rows."""
    ran: list[Ran] = []
    skipped: set = set()
    while len(ran) < limit:
        async with hub.session() as session:
            job = (await session.execute(
                select(Job.id, Job.kind).where(Job.status == "pending", Job.run_at <= hub.clock(),
                                               Job.id.not_in(skipped) if skipped else True)
                .order_by(Job.run_at, Job.created_at).limit(1))).first()
        if job is None:
            return ran
        status = await outbox.execute(hub, job.id, reraise=raise_errors)
        if status is None:  # another runner holds it
            skipped.add(job.id)
            continue
        if status != "done":
            skipped.add(job.id)  # retried or deferred: due later, not again in this call
        ran.append(Ran(job.kind, status))
    raise AssertionError(f"run_jobs ran {limit} jobs and more are due: a job that keeps making jobs?")
