"""The sender: the retry schedule on a clock the test controls, disabling, Retry-After, a restart between a
failure and its retry, and a slow endpoint beside a fast one."""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import uuid
from datetime import timedelta

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from hub.api.app import create_app
from hub.db.migrate import upgrade_async
from hub.db.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from hub.events import record_event
from hub.testing.clock import Clock
from hub.testing.receiver import Answer, Receiver
from hub.webhooks.delivery import SCHEDULE, Sender, deliver_due
from tests.conftest import make_hub, new_tenant, wait_for


@pytest.fixture
def settings(settings):
    return msgspec.structs.replace(settings, allow_private_webhook_urls=True, tick_seconds=0.05)


async def endpoint(client, tenant, url: str, event_types: list[str] | None = None) -> uuid.UUID:
    response = await client.post("/v1/webhook-endpoints", json={"url": url, "event_types": event_types or ["*"]},
                                 headers=tenant.headers)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def publish(hub, tenant, type: str, n: int = 1) -> None:
    async with hub.session() as session:
        for i in range(n):
            await record_event(session, tenant.id, type, {"n": i})


async def rows(hub, endpoint_id: uuid.UUID) -> list[WebhookDelivery]:
    async with hub.session() as session:
        return list((await session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                                           .order_by(WebhookDelivery.created_at))).all())


async def test_a_receiver_that_fails_three_times_gets_four_attempts_at_the_scheduled_times(client, hub, tenant):
    clock = hub.clock = Clock()
    with Receiver(script=[500, 502, Answer(500, b"still down")], then=Answer(200, b"thanks")) as receiver:
        endpoint_id = await endpoint(client, tenant, receiver.url)
        await publish(hub, tenant, "invoice.paid")
        sent_at = [clock()]
        assert (await deliver_due(hub)).count("retrying") == 1
        for wait in SCHEDULE[:3]:
            [row] = await rows(hub, endpoint_id)
            assert row.status == "pending"
            assert wait * 0.9 <= row.next_attempt_at - sent_at[-1] <= wait * 1.1  # the schedule, with jitter
            clock.set(row.next_attempt_at - timedelta(seconds=1))
            assert (await deliver_due(hub)).sent == 0  # not a moment early
            sent_at.append(clock.set(row.next_attempt_at))
            assert (await deliver_due(hub)).sent == 1
        assert (await deliver_due(hub)).sent == 0

    [row] = await rows(hub, endpoint_id)
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == ("succeeded", 4, 200, None)
    log = (await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries/{row.id}", headers=tenant.headers)).json()
    attempts = log["attempt_log"]
    assert [a["status_code"] for a in attempts] == [500, 502, 500, 200]
    assert [a["attempted_at"] for a in attempts] == [t.isoformat().replace("+00:00", "Z") for t in sent_at]
    assert attempts[2]["response_body"] == "still down" and attempts[3]["response_body"] == "thanks"
    assert len(receiver.received) == 4
    assert [int(r.headers["webhook-timestamp"]) for r in receiver.received] == [int(t.timestamp()) for t in sent_at]


async def drive_schedule(hub, clock: Clock) -> None:
    """Every attempt of every delivery, moving the clock past each wait (8 attempts span about 33 hours)."""
    for _ in range(8):
        await deliver_due(hub)
        clock.advance(timedelta(hours=11))


async def test_an_endpoint_that_always_fails_is_disabled_after_ten_failed_events(client, hub, tenant):
    clock = hub.clock = Clock()
    with Receiver(then=500) as failing, Receiver() as watcher:
        failing_id = await endpoint(client, tenant, failing.url)
        watcher_id = await endpoint(client, tenant, watcher.url, ["endpoint.*"])
        await publish(hub, tenant, "invoice.created", 9)
        await drive_schedule(hub, clock)
        async with hub.session() as session:
            assert (await session.get(WebhookEndpoint, failing_id)).consecutive_failures == 9
        assert watcher.count == 0

        await publish(hub, tenant, "invoice.created")
        await drive_schedule(hub, clock)

        assert failing.count == 10 * 8
        async with hub.session() as session:
            row = await session.get(WebhookEndpoint, failing_id)
            events = (await session.scalars(select(Event).where(Event.type == "endpoint.disabled"))).all()
        assert not row.enabled and row.consecutive_failures == 10
        assert row.disabled_reason == "10 consecutive events failed to deliver"
        assert [e.data for e in events] == [{"endpoint_id": str(failing_id), "url": failing.url,
                                             "reason": row.disabled_reason}]
        assert [json.loads(r.body)["type"] for r in watcher.received] == ["endpoint.disabled"]
        assert all(json.loads(r.body)["type"] == "invoice.created" for r in failing.received)

        await publish(hub, tenant, "invoice.created")  # a disabled endpoint gets no new deliveries
        assert len(await rows(hub, failing_id)) == 10 and len(await rows(hub, watcher_id)) == 1


async def test_a_success_resets_the_count_of_failed_events(client, hub, tenant):
    clock = hub.clock = Clock()
    with Receiver(answer=lambda r: Answer(200 if json.loads(r.body)["type"] == "job.created" else 500)) as receiver:
        endpoint_id = await endpoint(client, tenant, receiver.url)
        await publish(hub, tenant, "invoice.created", 9)
        await drive_schedule(hub, clock)
        await publish(hub, tenant, "job.created")
        await deliver_due(hub)
        await publish(hub, tenant, "invoice.created", 9)
        await drive_schedule(hub, clock)
    async with hub.session() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
    assert row.enabled and row.consecutive_failures == 9


async def test_410_gone_disables_the_endpoint_at_once(client, hub, tenant):
    clock = hub.clock = Clock()
    with Receiver(script=[500], then=Answer(410, b"gone")) as receiver:
        endpoint_id = await endpoint(client, tenant, receiver.url, ["invoice.*"])
        await publish(hub, tenant, "invoice.created")
        await deliver_due(hub)  # fails; its retry waits
        await publish(hub, tenant, "invoice.paid", 2)
        clock.advance(1)
        report = await deliver_due(hub)

    assert report.sent == 2 and report.count("failed") == 2
    async with hub.session() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
        disabled = await session.scalar(select(func.count()).where(Event.type == "endpoint.disabled"))
    assert not row.enabled and row.disabled_reason == "the endpoint answered 410 Gone" and disabled == 1
    statuses = [r.status for r in await rows(hub, endpoint_id)]
    assert statuses == ["failed"] * 3  # the waiting retry too
    assert receiver.count == 3


async def test_429_and_503_wait_at_least_their_retry_after(client, hub, tenant):
    clock = hub.clock = Clock()
    later = email.utils.format_datetime(utcnow() + timedelta(hours=2), usegmt=True)
    with Receiver(script=[Answer(429, headers={"Retry-After": "3600"}), Answer(503, headers={"Retry-After": later}),
                          Answer(503, headers={"Retry-After": "1"})]) as receiver:
        endpoint_id = await endpoint(client, tenant, receiver.url)
        await publish(hub, tenant, "job.updated")
        expected = [timedelta(hours=1), timedelta(hours=2), SCHEDULE[2] * 0.9]  # the schedule's wait if longer
        for wait in expected:
            await deliver_due(hub)
            [row] = await rows(hub, endpoint_id)
            assert row.next_attempt_at - clock() >= wait - timedelta(seconds=5), row.next_attempt_at - clock()
            clock.set(row.next_attempt_at)
    assert receiver.count == 3


async def test_a_restart_between_a_failure_and_its_retry_loses_nothing(settings, jobs):
    """The hub stops after the first attempt failed; a new hub (a new process) makes the retry."""
    with Receiver(script=[500]) as receiver:
        first = make_hub(settings)
        await upgrade_async(first.engine)
        async with AsyncTestClient(create_app(first, background=jobs.background),
                                   base_url="http://127.0.0.1:8000") as client:
            tenant = await new_tenant(client)
            endpoint_id = await endpoint(client, tenant, receiver.url)
            await client.post("/v1/events", json={"type": "invoice.paid", "data": {}}, headers=tenant.headers)

            async def failed_once():
                [row] = await rows(first, endpoint_id)
                return row.attempts == 1 and row.status == "pending" and row.locked_until is None

            await wait_for(failed_once)
        await first.aclose()

        second = make_hub(settings)
        await upgrade_async(second.engine)  # as `hub serve` does on start
        second.clock = lambda: utcnow() + timedelta(seconds=10)  # the retry fell due while the hub was down
        try:
            async with AsyncTestClient(create_app(second, background=jobs.background),
                                       base_url="http://127.0.0.1:8000"):
                async def delivered():
                    [row] = await rows(second, endpoint_id)
                    return row if row.status == "succeeded" else None

                row = await wait_for(delivered)
        finally:
            await second.aclose()
    assert row.attempts == 2 and receiver.count == 2
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]


async def test_a_slow_endpoint_does_not_hold_up_the_others(client, hub, tenant):
    with Receiver() as slow, Receiver() as fast:
        slow.hold = threading.Event()
        slow_id = await endpoint(client, tenant, slow.url)
        fast_id = await endpoint(client, tenant, fast.url)
        await publish(hub, tenant, "document.uploaded", 40)
        stop = asyncio.Event()
        sender = asyncio.create_task(Sender(hub, per_endpoint=2, backlog_per_endpoint=4).serve(stop))
        try:
            async def fast_done():
                return all(r.status == "succeeded" for r in await rows(hub, fast_id))

            await wait_for(fast_done, timeout=20)
            assert fast.count == 40
            assert slow.count == 2 and slow.waiting == 2  # at most per_endpoint requests in flight
            held = [r for r in await rows(hub, slow_id) if r.locked_until is not None]
            assert len(held) == 4  # and a small backlog claimed; the rest stay in the queue for now
            slow.hold.set()

            async def slow_done():
                return all(r.status == "succeeded" for r in await rows(hub, slow_id))

            await wait_for(slow_done, timeout=20)
        finally:
            stop.set()
            await sender
    assert slow.count == 40
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookAttempt)) == 80


async def test_an_endpoint_gets_as_many_lanes_as_its_latency_needs():
    from hub.webhooks.delivery import Lanes

    lanes = Lanes(2, 8)
    assert lanes.limit == 2
    for _ in range(20):
        lanes.observe(0.5)  # slow answers: more requests at once keep its rate up
    assert lanes.limit == 8
    for _ in range(40):
        lanes.observe(0.002)
    assert lanes.limit == 2

    most = 0

    async def one() -> None:
        nonlocal most
        async with lanes:
            most = max(most, lanes.active)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(one() for _ in range(10)))
    assert most == 2 and lanes.active == 0
