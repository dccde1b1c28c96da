"""``hub sync``: start a run, drive it (embedded) or wait for the workers (Redis), with a progress bar."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import TYPE_CHECKING, Any

import click

from hub.connections import get_connection
from hub.db.models import SyncRun
from hub.jobs import outbox
from hub.sync import service
from hub.sync.schemas import SyncRunOut, sync_run_out

if TYPE_CHECKING:
    from hub.runtime import Hub

POLL_SECONDS = 0.25


async def run_sync_command(
    hub: Hub, tenant_id: uuid.UUID, provider: str, entity: str, records: list[dict[str, Any]] | None, type: str
) -> SyncRunOut:
    background = None
    if hub.settings.broker_url is not None:  # workers run it: send the job when the run is committed
        from hub.jobs.worker import SendOnlyJobs

        background = SendOnlyJobs()
        await background.start(hub)
    try:
        async with hub.session(tenant_id) as session:
            conn = await get_connection(session, tenant_id, provider)
            if records is not None:
                run = await service.start_outbound(hub, session, conn, entity, records)
            else:
                run = await service.start_inbound(hub, session, conn, entity, type)
            run_id, job_id, total = run.id, run.job_id, run.total
        work = asyncio.create_task(outbox.execute(hub, job_id)) if background is None else None
        final = await _follow(hub, tenant_id, run_id, total, work)
    finally:
        if background is not None:
            await background.stop()
    return final


async def _follow(hub: Hub, tenant_id: uuid.UUID, run_id: uuid.UUID, total: int | None, work) -> SyncRunOut:
    label = "outbound" if total is not None else "inbound"
    with click.progressbar(length=total or 0, label=label, file=sys.stderr,
                           show_pos=total is not None) as bar:
        shown = 0
        while True:
            async with hub.session(tenant_id) as session:
                run = await session.get(SyncRun, run_id)
            if total is not None:
                bar.update(run.processed - shown)
                shown = run.processed
            bar.label = (f"{label}: processed {run.processed}, created {run.created}, updated {run.updated}, "
                         f"unchanged {run.unchanged}, failed {run.failed}")
            if run.status not in ("queued", "running"):
                break
            if work is not None and work.done():
                status = work.result()
                if status in ("pending", "failed"):  # the job failed; its row says why
                    from hub.db.models import Job

                    async with hub.session() as session:
                        job = await session.get(Job, run.job_id)
                    raise click.ClickException(f"the sync job failed ({job.status}): {job.last_error}")
            await asyncio.sleep(POLL_SECONDS)
    click.echo(f"{bar.label} ({run.status})", err=True)
    return sync_run_out(run)
