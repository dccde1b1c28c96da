"""The sync engine through the API, with a real Dramatiq worker (in-process stub broker, and Redis)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from hub.db.models import EntityMapping, Job
from tests.conftest import wait_for
from tests.flows import connect


def clients(n: int, start: int = 0, **overrides) -> list[dict]:
    return [{"id": f"client-{i}", "company_name": f"Client {i} LLC", "email": f"c{i}@example.com", **overrides}
            for i in range(start, start + n)]


async def sync(client, tenant, entity: str, records: list[dict] | None = None, **extra) -> dict:
    body = {"entity": entity, **extra} | ({"records": records} if records is not None else {})
    response = await client.post("/v1/connections/testoauth/syncs", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    return response.json()


async def finished(client, tenant, run_id: str, timeout: float = 30) -> dict:
    async def done():
        run = (await client.get(f"/v1/syncs/{run_id}", headers=tenant.headers)).json()
        return run if run["status"] not in ("queued", "running") else None

    return await wait_for(done, timeout)


async def test_outbound_push_then_resync_unchanged_makes_no_provider_calls(client, hub, tenant, provider, jobs):
    await connect(client, tenant)

    first = await finished(client, tenant, (await sync(client, tenant, "client", clients(75)))["id"])

    assert first["status"] == "completed"
    assert (first["processed"], first["created"], first["updated"], first["failed"]) == (75, 75, 0, 0)
    assert provider.state.batch_calls == 3  # 30 + 30 + 15: the plugin's batch size
    assert len(provider.state.customers) == 75
    mappings = (await client.get("/v1/connections/testoauth/mappings?entity=client&limit=1000",
                                 headers=tenant.headers)).json()["items"]
    assert len(mappings) == 75 and {m["internal_id"] for m in mappings} == {f"client-{i}" for i in range(75)}

    again = await finished(client, tenant, (await sync(client, tenant, "client", clients(75)))["id"])
    assert (again["unchanged"], again["created"], again["updated"]) == (75, 0, 0)
    assert provider.state.batch_calls == 3  # not one call

    changed = clients(75)
    changed[10]["email"] = "new@example.com"
    third = await finished(client, tenant, (await sync(client, tenant, "client", changed))["id"])
    assert (third["unchanged"], third["updated"]) == (74, 1)
    assert provider.state.batch_calls == 4
    assert provider.state.customers[mappings_by_id(mappings)["client-10"]]["PrimaryEmailAddr"] == {
        "Address": "new@example.com"}
    assert len(provider.state.customers) == 75

    events = (await client.get("/v1/events?type=sync.completed", headers=tenant.headers)).json()
    client_runs = [e["data"]["id"] for e in events if e["data"]["entity"] == "client"]
    assert client_runs == [first["id"], again["id"], third["id"]]


def mappings_by_id(mappings: list[dict]) -> dict[str, str]:
    return {m["internal_id"]: m["external_id"] for m in mappings}


async def test_one_bad_record_at_the_provider_never_aborts_the_run(client, hub, tenant, provider, jobs):
    await connect(client, tenant)
    records = clients(5)
    records[2]["company_name"] = "REJECT me"

    run = await finished(client, tenant, (await sync(client, tenant, "client", records))["id"])

    assert run["status"] == "completed_with_errors"
    assert (run["created"], run["failed"]) == (4, 1)
    assert run["errors"] == [{"id": "client-2", "error": "Duplicate Name Exists Error"}]
    failures = (await client.get(f"/v1/syncs/{run['id']}/failures", headers=tenant.headers)).json()
    assert failures == [{"id": "client-2", "error": "Duplicate Name Exists Error"}]
    retried = await finished(client, tenant, (await sync(client, tenant, "client", clients(5)))["id"])
    assert (retried["created"], retried["unchanged"]) == (1, 4)  # the failed one was never mapped


async def test_invalid_records_are_a_422_listing_each_and_nothing_is_queued(client, hub, tenant):
    await connect(client, tenant)
    records = clients(3) + [{"id": "x"}, {"id": "client-0", "company_name": "dup"}, {"company_name": "no id"}]
    response = await client.post("/v1/connections/testoauth/syncs", json={"entity": "client", "records": records},
                                 headers=tenant.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_records"
    assert [d["index"] for d in error["details"]] == [3, 4, 5]
    assert "company_name" in error["details"][0]["error"] and "duplicate" in error["details"][1]["error"]
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0
    assert (await client.get("/v1/syncs", headers=tenant.headers)).json() == []


async def test_inbound_pull_pages_records_and_changes(client, hub, tenant, provider, jobs):
    await connect(client, tenant)
    for n in range(250):
        provider.state.put_payment(f"pay-{n}", f"{n}.50")

    first = await finished(client, tenant, (await sync(client, tenant, "payment"))["id"])

    assert first["status"] == "completed"
    assert (first["processed"], first["created"]) == (250, 250)
    page1 = (await client.get("/v1/records/testoauth/payment?limit=200", headers=tenant.headers)).json()
    page2 = (await client.get(f"/v1/records/testoauth/payment?limit=200&cursor={page1['next_cursor']}",
                              headers=tenant.headers)).json()
    assert len(page1["items"]) == 200 and len(page2["items"]) == 50
    assert page1["items"][0]["data"]["amount"] == "0.50"
    cursor = page2["next_cursor"]

    nothing_new = await finished(client, tenant, (await sync(client, tenant, "payment"))["id"])
    assert (nothing_new["processed"], nothing_new["created"], nothing_new["updated"]) == (0, 0, 0)

    provider.state.put_payment("pay-7", "700.00")
    provider.state.put_payment("pay-8", "8.50", deleted=True)
    provider.state.put_payment("pay-900", "9.00")
    changes = await finished(client, tenant, (await sync(client, tenant, "payment"))["id"])
    assert (changes["created"], changes["updated"], changes["deleted"]) == (1, 1, 1)

    since = (await client.get(f"/v1/records/testoauth/payment?cursor={cursor}", headers=tenant.headers)).json()
    assert sorted((r["external_id"], r["deleted"]) for r in since["items"]) == [
        ("pay-7", False), ("pay-8", True), ("pay-900", False)]
    assert next(r for r in since["items"] if r["external_id"] == "pay-7")["data"]["amount"] == "700.00"

    full = await finished(client, tenant, (await sync(client, tenant, "payment", type="full"))["id"])
    assert (full["processed"], full["created"], full["updated"]) == (250, 0, 0)  # two full reads agree


async def test_a_new_records_events_are_recorded_once_however_often_it_is_read(client, hub, tenant, provider, jobs):
    await connect(client, tenant)
    provider.state.put_payment("pay-1", "10.00")
    provider.state.put_payment("pay-2", "20.00")
    await finished(client, tenant, (await sync(client, tenant, "payment"))["id"])

    provider.state.put_payment("pay-1", "11.00")  # changed: stored again, but not new
    provider.state.put_payment("pay-3", "30.00")
    await finished(client, tenant, (await sync(client, tenant, "payment"))["id"])
    await finished(client, tenant, (await sync(client, tenant, "payment", type="full"))["id"])

    events = (await client.get("/v1/events?type=payment.received", headers=tenant.headers)).json()
    assert [(e["data"]["payment_id"], e["provider"]) for e in events] == [
        ("pay-1", "testoauth"), ("pay-2", "testoauth"), ("pay-3", "testoauth")]
    assert events[0]["data"]["amount"] == "10.00"  # as first seen


async def test_a_failing_provider_retries_then_fails_visibly_and_can_be_retried(client, hub, tenant, provider, jobs):
    await connect(client, tenant)
    provider.state.fail_api_with = 503
    run = await sync(client, tenant, "client", clients(3))

    async def job_state():
        async with hub.session() as session:
            job = await session.get(Job, __import__("uuid").UUID(run["job_id"]))
            return job if job.attempts >= 1 and job.status == "pending" else None

    job = await wait_for(job_state)
    assert "ProviderError" in job.last_error and job.run_at > job.updated_at  # waits in its row for a retry
    assert len(provider.state.customers) == 0

    async with hub.session() as session:  # out of attempts, as if the backoff had run its course
        row = await session.get(Job, job.id)
        row.status, row.finished_at = "failed", row.updated_at
    failed = (await client.get("/v1/jobs?status=failed", headers=tenant.headers)).json()
    assert [j["id"] for j in failed] == [run["job_id"]]

    provider.state.fail_api_with = None
    retried = await client.post(f"/v1/jobs/{run['job_id']}/retry", headers=tenant.headers)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    done = await finished(client, tenant, run["id"])
    assert done["status"] == "completed" and done["created"] == 3
    assert len(provider.state.customers) == 3


async def test_cancel_a_queued_run(client, hub, tenant):
    await connect(client, tenant)
    run = await sync(client, tenant, "client", clients(2))  # no worker in this test: it stays queued
    cancelled = await client.post(f"/v1/syncs/{run['id']}/cancel", headers=tenant.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/v1/syncs/{run['id']}/cancel", headers=tenant.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "sync_finished"


async def test_sync_endpoints_refuse_unknown_entities_and_other_tenants(client, hub, tenant):
    from tests.conftest import new_tenant

    await connect(client, tenant)
    unknown = await client.post("/v1/connections/testoauth/syncs", json={"entity": "vendor", "records": []},
                                headers=tenant.headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "sync_not_supported"
    run = await sync(client, tenant, "client", clients(1))
    other = await new_tenant(client, "Other")
    assert (await client.get(f"/v1/syncs/{run['id']}", headers=other.headers)).status_code == 404
    assert (await client.post(f"/v1/syncs/{run['id']}/cancel", headers=other.headers)).status_code == 404
    assert (await client.post(f"/v1/jobs/{run['job_id']}/retry", headers=other.headers)).status_code == 404
    assert (await client.get("/v1/syncs", headers=other.headers)).json() == []


async def test_mappings_are_bulk_loaded_not_per_record(client, hub, tenant, provider, jobs):
    """The engine reads mappings once per chunk: count the statements a 300-record re-sync issues."""
    from sqlalchemy import event

    await connect(client, tenant)
    await finished(client, tenant, (await sync(client, tenant, "client", clients(300)))["id"])
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "entity_mappings" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(hub.engine.sync_engine, "before_cursor_execute", count)
    worker_hubs = getattr(jobs.runtime, "hubs", None)  # Redis mode: the worker's own Hub; embedded: the app's
    worker_engines = [worker_hubs.get().engine.sync_engine] if worker_hubs else []
    for engine in worker_engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        run = await finished(client, tenant, (await sync(client, tenant, "client", clients(300)))["id"])
    finally:
        event.remove(hub.engine.sync_engine, "before_cursor_execute", count)
        for engine in worker_engines:
            event.remove(engine, "before_cursor_execute", count)
    assert run["unchanged"] == 300
    assert len(statements) == 1
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(EntityMapping)) == 300


async def test_sync_bodies_have_their_own_larger_limit(client, hub, tenant):
    await connect(client, tenant)
    big = clients(16000)
    body = json.dumps({"entity": "client", "records": big}).encode()
    assert len(body) > hub.settings.max_body_bytes  # over the general limit, under the sync one
    response = await client.post("/v1/connections/testoauth/syncs", content=body,
                                 headers={**tenant.headers, "Content-Type": "application/json"})
    assert response.status_code == 202 and response.json()["total"] == 16000
    too_big = b'{"entity": "client", "records": [' + b'{"id": "x"},' * 3_000_000 + b'{"id": "y"}]}'
    response = await client.post("/v1/connections/testoauth/syncs", content=too_big,
                                 headers={**tenant.headers, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


async def test_ctx_push_maps_records_outside_a_run_and_a_later_run_finds_them_unchanged(client, hub, tenant, provider,
                                                                                     jobs):
    from hub.connections import connection_context, get_connection

    await connect(client, tenant)
    async with hub.session(tenant.id) as session:
        ctx = await connection_context(hub, session, await get_connection(session, tenant.id, "testoauth"))

    first = await ctx.push("client", clients(2))
    assert {r.outcome for r in first.values()} == {"created"} and provider.state.batch_calls == 1
    assert await ctx.external_ids("client", ["client-0", "client-1"]) == {
        "client-0": first["client-0"].external_id, "client-1": first["client-1"].external_id}

    again = await ctx.push("client", clients(2))
    assert {r.outcome for r in again.values()} == {"unchanged"} and provider.state.batch_calls == 1

    run = await finished(client, tenant, (await sync(client, tenant, "client", clients(3)))["id"])
    assert (run["unchanged"], run["created"]) == (2, 1) and len(provider.state.customers) == 3


async def test_ctx_push_refuses_an_invalid_record_before_calling_the_provider(client, hub, tenant, provider):
    from hub.connections import connection_context, get_connection
    from hub.errors import ValidationFailed

    await connect(client, tenant)
    async with hub.session(tenant.id) as session:
        ctx = await connection_context(hub, session, await get_connection(session, tenant.id, "testoauth"))
    with pytest.raises(ValidationFailed):
        await ctx.push("client", [*clients(1), {"id": "no-name"}])
    assert provider.state.batch_calls == 0


async def test_two_concurrent_ctx_pushes_of_a_new_record_create_it_once(client, hub, tenant, provider):
    """An action asked for twice at once (or an observer retried while its first run still pushes): the
    second push waits for the first, then finds the record mapped and unchanged."""
    import asyncio

    from hub.connections import connection_context, get_connection

    await connect(client, tenant)
    async with hub.session(tenant.id) as session:
        ctx = await connection_context(hub, session, await get_connection(session, tenant.id, "testoauth"))
    provider.latency = 0.2  # both would be at the provider together, were they not serialized
    first, second = await asyncio.gather(ctx.push("client", clients(1)), ctx.push("client", clients(1)))
    provider.latency = 0.0
    assert sorted([first["client-0"].outcome, second["client-0"].outcome]) == ["created", "unchanged"]
    assert first["client-0"].external_id == second["client-0"].external_id
    assert provider.state.batch_calls == 1
