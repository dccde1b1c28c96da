"""hub_event observers: every recorded event reaches every observing plugin once it is committed, each
observer in a job of its own, so one that fails is retried without running the others again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub import hookimpl
from hub.db.models import Job
from hub.runtime import Hub
from tests.conftest import wait_for
from tests.flows import connect
from tests.test_webhooks_in import payment_event, post
from tests.testprovider import plugin as test_plugin


class Recorder:
    def __init__(self, fail_first: bool = False) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.fail_first = fail_first
        self.calls = 0

    @hookimpl
    async def hub_event(self, event, context):
        self.calls += 1
        if self.fail_first and self.calls == 1:
            raise RuntimeError("observer hiccup")
        connection = await context.connection("testoauth")
        self.seen.append((event.type, event.data.get("payment_id"), connection and connection.account_id))


@pytest.fixture
def observers():
    return Recorder(), Recorder(fail_first=True)


@pytest.fixture
def hub_factory(observers):
    steady, flaky = observers
    return lambda settings: Hub.create(settings, entry_points=False, extra_plugins=[
        ("testprovider", test_plugin), ("steady", steady), ("flaky", flaky)])


async def test_each_observer_sees_each_event_once_and_a_failing_one_is_retried_alone(client, hub, tenant, jobs,
                                                                                      observers):
    steady, flaky = observers
    await connect(client, tenant)

    assert (await post(client, payment_event("pay_7"))).status_code == 200

    async def steady_saw_it():
        return [s for s in steady.seen if s[0] == "payment.received"]

    assert await wait_for(steady_saw_it) == [("payment.received", "pay_7", "acct-42")]

    async def flaky_retrying():
        async with hub.session() as session:
            job = (await session.scalars(select(Job).where(Job.kind == "event.observe", Job.status == "pending",
                                                           Job.attempts == 1))).first()
            if job is not None:
                job.run_at = job.run_at.replace(year=2000)  # skip the backoff
            return job

    failed_once = await wait_for(flaky_retrying)
    assert failed_once.payload["plugin"] == "flaky"
    assert "observer hiccup" in failed_once.last_error

    async def flaky_saw_it():
        return [s for s in flaky.seen if s[0] == "payment.received"]

    assert await wait_for(flaky_saw_it) == [("payment.received", "pay_7", "acct-42")]
    assert [s for s in steady.seen if s[0] == "payment.received"] == [("payment.received", "pay_7", "acct-42")]
