"""One tick of the background loop: re-send due, lost or orphaned jobs and start scheduled syncs.
Only one process acts per tick (a PostgreSQL advisory lock; on SQLite, the database write lock)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from hub.counters import reserve
from hub.db.locks import try_xact_lock
from hub.jobs import outbox

if TYPE_CHECKING:
    from hub.runtime import Hub

RESEND_AFTER = timedelta(seconds=60)
TICK_LOCK = "hub.tick"


async def take_tick_lock(session: AsyncSession) -> bool:
    if session.bind.dialect.name == "postgresql":
        return await try_xact_lock(session, TICK_LOCK)
    await reserve(session, "tick")  # a write: holds SQLite's lock until this transaction ends
    return True


async def tick(hub: Hub) -> list:
    """Returns the ids of the jobs it sent."""
    from hub.sync.schedule import schedule_due_syncs

    async with hub.session() as session:
        if not await take_tick_lock(session):
            return []
        ids = await outbox.due_job_ids(session, RESEND_AFTER)
        await schedule_due_syncs(hub, session)
    if hub.dispatch is not None:
        for job_id in ids:
            hub.dispatch(job_id)
    return ids
