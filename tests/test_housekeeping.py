"""Expired OAuth states and hosted-connect links are deleted once they have been kept long enough."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from sqlalchemy import func, select, text, update

from hub.db.locks import try_lock, unlock
from hub.db.models import ConnectSession, Event, Job, OAuthState, WebhookAttempt, WebhookDelivery, WebhookInbox
from hub.events import OBSERVE_JOB, record_event
from hub.housekeeping import HOUSEKEEPING_LOCK, housekeep, purge_expired, purge_history
from hub.jobs.broker import relay_forever
from hub.jobs.outbox import enqueue
from hub.testing.receiver import Receiver
from hub.webhooks.delivery import deliver_due
from tests.conftest import wait_for
from tests.flows import authorize
from tests.test_webhooks_in import payment_event, post


@pytest.fixture
def settings(settings):
    return msgspec.structs.replace(settings, allow_private_webhook_urls=True)


async def count(hub, model) -> int:
    async with hub.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def new_link(client, tenant, **body) -> dict:
    body = {"return_url": "https://app.example.com/settings", **body}
    response = await client.post("/v1/connect-sessions", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_expired_states_and_links_are_purged_after_their_keeping_and_no_sooner(client, hub, tenant, clock):
    await authorize(client, tenant)  # an OAuth state, valid for minutes
    short = await new_link(client, tenant, expires_in_seconds=60)
    revoked = await new_link(client, tenant, expires_in_seconds=3600)
    assert (await client.delete(f"/v1/connect-sessions/{revoked['id']}", headers=tenant.headers)).status_code == 200

    assert await purge_expired(hub) == {"oauth_states": 0, "connect_sessions": 0}
    clock.advance(2 * 86400)  # the state is a day past its expiry; the links are kept a week
    assert await purge_expired(hub) == {"oauth_states": 1, "connect_sessions": 0}
    recent = await new_link(client, tenant, expires_in_seconds=3600)
    clock.advance(6 * 86400)

    assert await purge_expired(hub) == {"oauth_states": 0, "connect_sessions": 2}
    assert await count(hub, OAuthState) == 0
    async with hub.session() as session:  # the one that expired only 6 days ago is still kept
        assert [str(i) for i in (await session.scalars(select(ConnectSession.id))).all()] == [recent["id"]]
    gone = await client.get(f"/v1/connect-sessions/{short['id']}", headers=tenant.headers)
    assert gone.status_code == 404


async def test_the_background_loop_purges_on_its_first_tick(client, hub, tenant, clock):
    await authorize(client, tenant)
    clock.advance(2 * 86400)
    stop = asyncio.Event()
    loop = asyncio.create_task(relay_forever(hub, stop))
    try:
        await wait_for(lambda: count_is(hub, OAuthState, 0), timeout=10)
    finally:
        stop.set()
        await loop


async def count_is(hub, model, n: int) -> bool:
    return await count(hub, model) == n


async def deliveries(hub) -> dict:
    async with hub.session() as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
        return {row.id: row.status for row in rows}


async def test_finished_work_past_the_retention_is_purged_and_pending_work_never(client, hub, tenant, clock):
    async with hub.session() as session:  # an old event from before any endpoint: no delivery keeps it
        await record_event(session, tenant.id, "daily_log.created", {"n": 0})
    with Receiver() as receiver:
        for _ in range(2):  # two endpoints: each walked on its own
            made = await client.post("/v1/webhook-endpoints", json={"url": receiver.url, "event_types": ["*"]},
                                     headers=tenant.headers)
            assert made.status_code == 201, made.text
        async with hub.session() as session:
            await record_event(session, tenant.id, "invoice.paid", {"n": 1})
        assert (await deliver_due(hub)).count("succeeded") == 2
        old = await deliveries(hub)
        assert (await post(client, payment_event(account="acct-nobody"))).status_code == 200  # unrouted
        async with hub.session() as session:  # old jobs: one done, one still pending; an old inbox row pending
            enqueue(session, OBSERVE_JOB, {}, tenant_id=tenant.id)
            enqueue(session, OBSERVE_JOB, {}, tenant_id=tenant.id)
            session.add(WebhookInbox(provider="testoauth", dedup_key="id:evt_waiting", status="pending",
                                     received_at=clock()))
        async with hub.session() as session:
            first = (await session.scalars(select(Job.id).limit(1))).one()
            await session.execute(update(Job).where(Job.id == first).values(status="done", finished_at=clock()))

        clock.advance(hub.settings.retention_days * 86400 + 3600)
        redelivered = next(iter(old))  # an old delivery sent again today: it counts from its new attempt
        endpoint_id = await _endpoint_of(hub, redelivered)
        again = await client.post(f"/v1/webhook-endpoints/{endpoint_id}/deliveries/{redelivered}/redeliver",
                                  headers=tenant.headers)
        assert again.status_code in (200, 202), again.text
        assert (await deliver_due(hub)).count("succeeded") == 1
        async with hub.session() as session:
            await record_event(session, tenant.id, "invoice.paid", {"n": 2})  # recent: two pending deliveries
    before = {m.__name__: await count(hub, m) for m in (WebhookDelivery, WebhookAttempt, WebhookInbox, Job, Event)}

    purged = await purge_history(hub)

    after = {m.__name__: await count(hub, m) for m in (WebhookDelivery, WebhookAttempt, WebhookInbox, Job, Event)}
    assert before == {"WebhookDelivery": 4, "WebhookAttempt": 3, "WebhookInbox": 2, "Job": 2, "Event": 3}
    assert purged == {"webhook_deliveries": 1, "webhook_inbox": 1, "jobs": 1, "events": 1}
    assert after == {"WebhookDelivery": 3, "WebhookAttempt": 2, "WebhookInbox": 1, "Job": 1, "Event": 2}
    kept = await deliveries(hub)
    assert kept[redelivered] == "succeeded" and sorted(kept.values()) == ["pending", "pending", "succeeded"]
    async with hub.session() as session:
        assert (await session.scalars(select(Job.status))).all() == ["pending"]
        assert (await session.scalars(select(WebhookInbox.status))).all() == ["pending"]
    assert await purge_history(hub) == {"webhook_deliveries": 0, "webhook_inbox": 0, "jobs": 0, "events": 0}


async def _endpoint_of(hub, delivery_id):
    async with hub.session() as session:
        return (await session.get(WebhookDelivery, delivery_id)).endpoint_id


async def test_one_process_at_a_time_purges_on_postgresql(hub, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's write lock already puts purges one after another")
    async with hub.engine.connect() as other:  # another process holding the housekeeping lock
        assert await try_lock(other, HOUSEKEEPING_LOCK)
        assert await housekeep(hub) == {}
        await unlock(other, HOUSEKEEPING_LOCK)
    assert "webhook_deliveries" in await housekeep(hub)
    async with hub.engine.connect() as other:  # a hub in another schema of the same database
        await other.execute(text("set search_path to public"))
        assert await try_lock(other, HOUSEKEEPING_LOCK)
        assert "webhook_deliveries" in await housekeep(hub)
        await unlock(other, HOUSEKEEPING_LOCK)
        await other.rollback()


async def test_a_retention_of_zero_keeps_everything(hub, clock):
    hub.settings = msgspec.structs.replace(hub.settings, retention_days=0)
    assert await purge_history(hub) == {}
