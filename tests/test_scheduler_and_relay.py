"""The background tick: periodic inbound syncs as providers declare and connections override, and the
relay that re-sends lost jobs and hands orphaned ones on."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, update

from hub.db.models import Job, SyncCursor, SyncRun, utcnow
from hub.jobs import outbox
from hub.jobs.ticks import tick
from tests.flows import connect


async def inbound_runs(hub) -> list[SyncRun]:
    async with hub.session() as session:
        return list((await session.scalars(select(SyncRun).where(SyncRun.direction == "inbound"))).all())


async def rewind(hub, ago: timedelta) -> None:
    """As if every inbound run had started ``ago`` and finished."""
    async with hub.session() as session:
        await session.execute(update(SyncRun).values(status="completed"))
        await session.execute(update(SyncCursor).values(last_started_at=utcnow() - ago))


async def test_periodic_inbound_sync_is_started_once_per_interval(client, hub, tenant):
    await connect(client, tenant)

    await tick(hub)
    await tick(hub)  # a run is in flight: no second one

    runs = await inbound_runs(hub)
    assert [(r.entity, r.type, r.status) for r in runs] == [("payment", "incremental", "queued")]
    await rewind(hub, timedelta(minutes=20))  # it ran and finished 20 minutes ago (the interval is 15)
    await tick(hub)
    assert len(await inbound_runs(hub)) == 2


async def test_connection_can_switch_a_schedule_off_or_change_its_interval(client, hub, tenant):
    await connect(client, tenant)
    off = await client.patch("/v1/connections/testoauth", json={"sync_schedules": {"payment": {"enabled": False}}},
                             headers=tenant.headers)
    assert off.status_code == 200 and off.json()["sync_schedules"] == {"payment": {"enabled": False}}
    await tick(hub)
    assert await inbound_runs(hub) == []

    await client.patch("/v1/connections/testoauth",
                       json={"sync_schedules": {"payment": {"enabled": True, "every_seconds": 3600}}},
                       headers=tenant.headers)
    await tick(hub)
    await rewind(hub, timedelta(minutes=30))
    await tick(hub)
    assert len(await inbound_runs(hub)) == 1  # 30 minutes ago is inside the connection's own hour

    bad = await client.patch("/v1/connections/testoauth", json={"sync_schedules": {"client": {"enabled": True}}},
                             headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_schedule"


async def test_sync_disabled_connections_are_not_scheduled(client, hub, tenant):
    await connect(client, tenant)
    await client.patch("/v1/connections/testoauth", json={"sync_enabled": False}, headers=tenant.headers)
    await tick(hub)
    assert await inbound_runs(hub) == []


async def test_relay_resends_lost_jobs_and_orphans_but_not_fresh_ones(client, hub, tenant):
    await connect(client, tenant)
    sent: list = []
    hub.dispatch = sent.append
    try:
        async with hub.session() as session:
            fresh = outbox.enqueue(session, "sync.run", {"run_id": "x"})  # sent at commit
            later = outbox.enqueue(session, "sync.run", {"run_id": "y"}, run_at=utcnow() + timedelta(hours=1))
        assert sent == [fresh.id]
        async with hub.session() as session:
            lost = outbox.enqueue(session, "sync.run", {"run_id": "z"})
            orphan = outbox.enqueue(session, "sync.run", {"run_id": "w"})
        async with hub.session() as session:  # lost: sent long ago, never picked up; orphan: its worker died
            await session.execute(update(Job).where(Job.id == lost.id).values(sent_at=utcnow() - timedelta(hours=1)))
            await session.execute(update(Job).where(Job.id == orphan.id).values(
                status="running", locked_until=utcnow() - timedelta(seconds=1), sent_at=utcnow() - timedelta(hours=1)))
        sent.clear()
        relayed = await tick(hub)
        assert set(relayed) == {lost.id, orphan.id} and set(sent) >= {lost.id, orphan.id}
        assert later.id not in sent and fresh.id not in sent
        sent.clear()
        assert await tick(hub) == []  # re-sent once a minute at most, not every tick
    finally:
        hub.dispatch = None


async def test_a_job_runs_once_however_often_it_is_sent(client, hub, tenant):
    await connect(client, tenant)
    async with hub.session() as session:
        job = outbox.enqueue(session, "sync.run", {"run_id": "00000000-0000-0000-0000-000000000000"})
    assert await outbox.execute(hub, job.id) == "done"
    assert await outbox.execute(hub, job.id) is None  # a duplicate nudge: nothing to claim
    async with hub.session() as session:
        row = await session.get(Job, job.id)
    assert (row.status, row.attempts) == ("done", 1)


async def test_operators_see_failed_jobs_and_retry_them(client, hub, tenant):
    import asyncio

    from click.testing import CliRunner

    from hub.cli import main
    from tests.conftest import ADMIN_TOKEN, ENCRYPTION_KEY

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with hub.session() as session:
        job = outbox.enqueue(session, "sync.run", {"run_id": "00000000-0000-0000-0000-000000000000"},
                             tenant_id=tenant.id)
    async with hub.session() as session:
        await session.execute(update(Job).where(Job.id == job.id).values(status="failed", last_error="boom"))

    listed = (await client.get("/v1/admin/jobs?status=failed", headers=admin)).json()
    assert [(j["id"], j["last_error"]) for j in listed] == [(str(job.id), "boom")]
    env = {"HUB_HOME": str(hub.settings.home), "HUB_DATABASE_URL": hub.settings.database_url,
           "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY, "HUB_PLUGINS": ""}
    cli_list = await asyncio.to_thread(CliRunner().invoke, main, ["jobs", "list", "--status", "failed"], env=env)
    assert json.loads(cli_list.stdout)[0]["id"] == str(job.id)

    retried = await asyncio.to_thread(CliRunner().invoke, main, ["jobs", "retry", str(job.id)], env=env)
    assert retried.exit_code == 0 and json.loads(retried.stdout)["status"] == "pending"
    again = await client.post(f"/v1/admin/jobs/{job.id}/retry", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_not_failed"
    assert await outbox.execute(hub, job.id) == "done"


async def test_jobs_are_sent_when_the_transaction_commits_not_when_a_savepoint_ends(hub):
    """SQLAlchemy reports a released SAVEPOINT as a commit and a rolled-back one as a rollback: neither
    may send (or forget) the transaction's jobs."""
    from sqlalchemy import text

    from hub.jobs.outbox import enqueue

    sent = []
    hub.dispatch = sent.append
    try:
        async with hub.session() as session:
            first = enqueue(session, "sync.run", {"run_id": "x"})
            async with session.begin_nested():
                await session.execute(text("select 1"))
            assert sent == []  # released, not committed: a worker would not see the row yet
            try:
                async with session.begin_nested():
                    second = enqueue(session, "sync.run", {"run_id": "y"})
                    raise LookupError("undo this part")
            except LookupError:
                pass
            third = enqueue(session, "sync.run", {"run_id": "z"})
        assert first.id in sent and third.id in sent  # a SAVEPOINT rolled back forgot nothing else
        assert set(sent) <= {first.id, second.id, third.id}
    finally:
        hub.dispatch = None
