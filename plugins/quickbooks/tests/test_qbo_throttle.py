"""QuickBooks' limits, kept: against a simulator enforcing them, a sync of any size and concurrent actions draw
no 429. The limits are scaled down together (a 2-second window instead of a minute) so the test is quick."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from qbo_flows import clients, connect, run_sync

import hub_quickbooks.plugin
from hub import RateLimit, hookimpl
from hub.runtime import Hub

WINDOW = 2.0
SCALED = (RateLimit(requests=30, per_seconds=WINDOW, concurrency=3),
          RateLimit(requests=4, per_seconds=WINDOW, scope="batch"))


class ScaledLimits:
    """Re-registers QuickBooks' ProviderInfo with the scaled limits, as an operator's override plugin would."""

    @hookimpl
    def hub_register_providers(self, register):
        infos = []
        hub_quickbooks.plugin.hub_register_providers(infos.append)
        register(dataclasses.replace(infos[0], rate_limits=SCALED), replace=True)


@pytest.fixture
def hub_factory():
    return lambda settings: Hub.create(settings, entry_points=False, extra_plugins=[
        ("quickbooks", hub_quickbooks.plugin), ("scaled_limits", ScaledLimits())])


async def test_a_sync_of_many_batches_and_concurrent_actions_draw_no_429(client, hub, tenant, qbo, jobs):
    await connect(client, tenant)
    await asyncio.sleep(WINDOW)  # the connect flow's CompanyInfo call is not the connection's yet: unthrottled
    state = qbo.state
    state.per_minute, state.concurrent, state.batch_per_minute, state.window_seconds = 30, 3, 4, WINDOW
    state.latency = 0.02

    async def info():
        response = await client.post("/v1/connections/quickbooks/actions/get_company_info", json={},
                                     headers=tenant.headers)
        assert response.status_code == 200, response.text

    # With Redis the sync runs in a worker process's Hub; the test's app Hub is not given the broker URL, so
    # its throttle is its own: actions from it would not share the worker's limits. Embedded, both share one.
    actions = 40 if jobs.runtime is None else 0
    run, *_ = await asyncio.gather(run_sync(client, tenant, "client", clients(330), timeout=60),
                                   *(info() for _ in range(actions)))

    assert (run["status"], run["created"]) == ("completed", 330)
    assert state.batch_calls == 11
    assert state.throttled == 0
