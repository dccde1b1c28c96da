"""The plugin authors' kit itself (hub.testing): the simulator base's faults and log, ``run_jobs``, the
clock the hub reads, and the receiver's signature check."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from hub.testing import Receiver, run_jobs, signature_holds, subscribe
from hub.testing.simulator import Request, Response, Simulator
from hub.webhooks.signing import new_secret, signed_headers
from tests.flows import connect


class Echo(Simulator):
    def handle(self, request: Request) -> Response:
        return Response.json({"path": request.path, "query": request.query, "body": request.json()})


def test_the_simulator_serves_real_http_and_logs_every_request():
    with Echo() as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        answer = httpx.post(f"{sim.url}/v1/things?x=1", json={"a": 1})
        assert answer.json() == {"path": "/v1/things", "query": {"x": "1"}, "body": {"a": 1}}
        httpx.get(f"{sim.url}/other")
    assert [(e.request.method, e.request.path, e.status) for e in sim.requests] == [
        ("POST", "/v1/things", 200), ("GET", "/other", 200)]
    assert (sim.calls("/v1/"), sim.calls(), sim.calls(method="GET")) == (1, 2, 1)


def test_faults_apply_in_order_to_matching_paths_then_stop():
    with Echo() as sim:
        sim.throttle_next(retry_after=7, path="/v1/")
        sim.fail_next(503, times=2)
        assert httpx.get(f"{sim.url}/other").status_code == 503  # the throttle only matches /v1/
        throttled = httpx.get(f"{sim.url}/v1/x")
        assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "7")
        assert httpx.get(f"{sim.url}/v1/x").status_code == 503
        assert httpx.get(f"{sim.url}/v1/x").status_code == 200
        assert sim.faults == []


def test_a_dropped_connection_is_closed_without_an_answer():
    with Echo() as sim:
        sim.drop_next()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{sim.url}/v1/x")
        assert httpx.get(f"{sim.url}/v1/x").status_code == 200
        assert [e.status for e in sim.requests] == [None, 200]


def test_latency_holds_every_answer_back():
    with Echo() as sim:
        sim.latency = 0.2
        started = time.perf_counter()
        httpx.get(f"{sim.url}/v1/x")
        assert time.perf_counter() - started >= 0.2


def test_a_simulator_without_tokens_says_so_when_asked_to_expire_them():
    with Echo() as sim, pytest.raises(TypeError, match="issues no access tokens"):
        sim.expire_tokens()


async def test_expiring_the_test_providers_tokens_makes_the_hub_refresh(client, hub, tenant, provider):
    await connect(client, tenant)
    assert provider.expire_tokens() == 1
    response = await client.post("/v1/connections/testoauth/actions/echo", json={"text": "hi"},
                                 headers=tenant.headers)
    assert response.status_code == 502  # the hub believes its token is fresh: the provider's 401 is an error
    assert provider.state.refresh_calls == 0


async def test_run_jobs_runs_a_sync_to_completion_without_workers(client, hub, tenant, provider):
    await connect(client, tenant)
    provider.state.put_payment("pay_1", "10.00")
    started = await client.post("/v1/connections/testoauth/syncs", json={"entity": "payment"}, headers=tenant.headers)
    assert started.status_code == 202
    ran = await run_jobs(hub)
    assert [(r.kind, r.status) for r in ran] == [("sync.run", "done")]
    run = (await client.get(f"/v1/syncs/{started.json()['id']}", headers=tenant.headers)).json()
    assert (run["status"], run["created"]) == ("completed", 1)
    assert await run_jobs(hub) == []


async def test_run_jobs_raises_the_jobs_own_error_and_the_clock_brings_its_retry_forward(
        client, hub, tenant, provider, clock):
    await connect(client, tenant)
    provider.state.fail_api_with = 503
    await client.post("/v1/connections/testoauth/syncs", json={"entity": "client", "records": [
        {"id": "c-1", "company_name": "Smith Homes"}]}, headers=tenant.headers)
    with pytest.raises(Exception, match="batch failed"):
        await run_jobs(hub)
    provider.state.fail_api_with = None
    assert await run_jobs(hub) == []  # the retry waits for its backoff
    clock.advance(timedelta(hours=1))
    assert [r.status for r in await run_jobs(hub)] == ["done"]
    assert len(provider.state.customers) == 1


async def test_run_jobs_without_raising_reports_the_retry(client, hub, tenant, provider):
    await connect(client, tenant)
    provider.state.fail_api_with = 503
    await client.post("/v1/connections/testoauth/syncs", json={"entity": "client", "records": [
        {"id": "c-1", "company_name": "Smith Homes"}]}, headers=tenant.headers)
    assert [(r.kind, r.status) for r in await run_jobs(hub, raise_errors=False)] == [("sync.run", "pending")]


def test_the_receiver_checks_standard_webhooks_signatures_from_the_specification():
    secret, body = new_secret(), b'{"type":"invoice.paid"}'
    headers = signed_headers([secret], "msg_1", int(time.time()), body)
    assert signature_holds([secret], headers, body)
    assert not signature_holds([secret], headers, body + b" ")
    assert not signature_holds([new_secret()], headers, body)
    stale = signed_headers([secret], "msg_1", int(time.time()) - 3600, body)
    assert not signature_holds([secret], stale, body)
    assert signature_holds([secret], stale, body, tolerance=None)


async def test_a_subscribed_receiver_gets_verified_deliveries(client, hub, tenant, webhook_receiver):
    assert hub.settings.allow_private_webhook_urls  # asked for a local receiver: the hub may deliver to it
    await subscribe(client, tenant, webhook_receiver, ["invoice.*"])
    published = await client.post("/v1/events", json={"type": "invoice.paid", "data": {"n": 1}},
                                  headers=tenant.headers)
    assert published.status_code in (200, 201, 202), published.text
    from hub.webhooks.delivery import deliver_due

    await deliver_due(hub)
    (delivery,) = webhook_receiver.deliveries()
    assert delivery.verified and delivery.json()["type"] == "invoice.paid"
    assert webhook_receiver.unverified() == []


def test_a_receiver_with_the_wrong_secret_verifies_nothing():
    with Receiver(secrets=[new_secret()]) as receiver:
        body = b"{}"
        httpx.post(receiver.url, content=body, headers=signed_headers([new_secret()], "m", int(time.time()), body))
    assert receiver.deliveries() == [] and len(receiver.unverified()) == 1


@pytest.mark.only_on(database="sqlite", jobs=("embedded",))
async def test_only_on_runs_just_the_variants_it_names(request, hub, jobs):
    # Without the marker this test would also run on PostgreSQL and Redis (and fail there).
    assert request.node.callspec.params == {"database_url": "sqlite", "jobs": "embedded"}
