"""``hub status``: what needs attention across every tenant, as text and JSON, with an exit status a cron or
Nagios check can read (0 healthy, 1 something needs attention)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import msgspec
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from hub.cli import main
from hub.db.models import Connection, utcnow
from hub.errors import NotConnected
from hub.jobs import outbox
from hub.testing import run_jobs
from hub.testing.receiver import Answer, Receiver
from hub.tokens import valid_access_token
from hub.webhooks.delivery import deliver_due
from tests.conftest import ENCRYPTION_KEY, new_tenant
from tests.flows import connect
from tests.testprovider.webhooks import oauth_signature

# A path and query an endpoint's owner may treat as a secret: status shows the host only.
SECRET_PATH = "/hooks/T0PSECRET?key=abc123def456"


@pytest.fixture
def settings(settings):
    return msgspec.structs.replace(settings, allow_private_webhook_urls=True)  # the receiver is on 127.0.0.1


async def status(settings, *args: str, columns: int = 200):
    env = {"HUB_HOME": str(settings.home), "HUB_DATABASE_URL": settings.database_url, "HUB_PLUGINS": "",
           "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY, "HUB_BROKER_URL": None, "COLUMNS": str(columns)}
    return await asyncio.to_thread(CliRunner().invoke, main, ["status", *args], env=env, catch_exceptions=False)


async def push(client, tenant, *ids: str) -> str:
    response = await client.post("/v1/connections/testoauth/syncs", headers=tenant.headers, json={
        "entity": "client", "records": [{"id": i, "company_name": f"Co {i}"} for i in ids]})
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def endpoint(client, tenant, url: str, **fields) -> str:
    response = await client.post("/v1/webhook-endpoints", headers=tenant.headers,
                                 json={"url": url, "event_types": ["*"], **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def a_healthy_tenant(client, hub) -> None:
    """Bravo Roofing: a completed sync, and an endpoint it switched off itself (its choice, not a problem)."""
    bravo = await new_tenant(client, "Bravo Roofing")
    assert (await connect(client, bravo))["status"] == ["connected"]
    await push(client, bravo, "b1", "b2")
    assert {r.status for r in await run_jobs(hub)} == {"done"}
    await endpoint(client, bravo, "https://hooks.bravo.example/in", enabled=False)


async def test_a_hub_in_trouble_shows_each_problem_and_exits_1(client, hub, tenant, provider, settings):
    await a_healthy_tenant(client, hub)

    # Acme Builders: a sync queued, then the provider forgets the grant; the refresh marks the connection
    # error and the queued sync fails for good.
    assert (await connect(client, tenant))["status"] == ["connected"]
    await push(client, tenant, "a1")
    provider.state.refresh_tokens.clear()
    async with hub.session() as session:
        conn = await session.scalar(select(Connection).where(Connection.tenant_id == tenant.id))
        await session.execute(update(Connection).where(Connection.id == conn.id)
                              .values(token_expires_at=utcnow() - timedelta(minutes=1)))
    try:
        await valid_access_token(hub, conn.id)
        raise AssertionError("expected NotConnected")
    except NotConnected:
        pass
    assert [r.status for r in await run_jobs(hub, raise_errors=False)] == ["failed"]

    # Its endpoint answers 410 Gone: the hub disables it.
    with Receiver(then=Answer(410, b"gone")) as receiver:
        await endpoint(client, tenant, receiver.url.rstrip("/") + SECRET_PATH)
        await client.post("/v1/events", headers=tenant.headers, json={"type": "invoice.paid", "data": {}})
        await deliver_due(hub)

    # A provider event for an account no tenant has connected.
    event = json.dumps({"id": "evt_9", "type": "payment.created", "account": "acct-nobody", "data": {}}).encode()
    received = await client.post("/v1/webhooks/testoauth", content=event, headers={
        "content-type": "application/json", "x-test-signature": oauth_signature("whsec-test-new", event)})
    assert received.status_code == 200, received.text

    # A job due twenty minutes ago that no worker picked up.
    async with hub.session() as session:
        stuck = outbox.enqueue(session, "sync.run", {"run_id": str(uuid.uuid4())}, tenant_id=tenant.id,
                               run_at=utcnow() - timedelta(minutes=20))

    result = await status(settings, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    [conn_line] = report["connections_in_error"]["items"]
    assert (conn_line["tenant"], conn_line["provider"]) == ("Acme Builders", "testoauth")
    assert "invalid_grant" in conn_line["error"]
    [endpoint_line] = report["failing_endpoints"]["items"]  # not Bravo's: its owner switched it off
    assert (endpoint_line["tenant"], endpoint_line["host"], endpoint_line["enabled"]) == (
        "Acme Builders", "127.0.0.1", False)
    assert endpoint_line["disabled_reason"] == "the endpoint answered 410 Gone"
    assert endpoint_line["last_attempt_at"] is not None
    [stuck_line] = report["stuck_jobs"]["items"]
    assert (stuck_line["id"], stuck_line["tenant"], stuck_line["status"]) == (str(stuck.id), "Acme Builders", "pending")
    [failed_line] = report["failed_jobs_last_24h"]["items"]
    assert (failed_line["kind"], failed_line["tenant"]) == ("sync.run", "Acme Builders")
    assert "the testoauth connection is error" in failed_line["last_error"]
    syncs = {(s["tenant"], s["status"], s["processed"]) for s in report["last_syncs"]["items"]}
    assert syncs == {("Acme Builders", "failed", 0), ("Bravo Roofing", "completed", 2)}
    assert report["last_syncs"]["items"][0]["status"] == "failed"  # problems first
    assert report["queue"]["jobs_pending"] == 1 and report["queue"]["oldest_due_job_seconds"] >= 20 * 60
    assert report["inbound_webhooks"] == [{"provider": "testoauth", "status": "unrouted", "count": 1, "recent": 1,
                                           "newest": report["inbound_webhooks"][0]["newest"]}]
    assert len(report["attention"]) == 6, report["attention"]

    text = await status(settings, columns=100)
    assert text.exit_code == 1
    output = text.stdout
    assert "NEEDS ATTENTION" in output and "\x1b[" not in output  # no colour off a terminal
    for shown in ("Acme Builders", "Bravo Roofing", "invalid_grant", "410 Gone", "not picked up", str(stuck.id),
                  "completed", "sync.run", "unrouted", "1 connection in error", "1 stuck job\n"):
        assert shown in output, shown
    assert "T0PSECRET" not in output and "abc123" not in result.stdout + output
    assert max(len(line) for line in output.splitlines()) <= 100


async def test_a_healthy_hub_exits_0(client, hub, provider, settings):
    empty = await status(settings)
    assert empty.exit_code == 0 and "nothing needs attention" in empty.stdout

    await a_healthy_tenant(client, hub)
    result = await status(settings, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is True and report["attention"] == []
    assert report["failing_endpoints"]["total"] == 0
    [sync] = report["last_syncs"]["items"]
    assert (sync["tenant"], sync["provider"], sync["entity"], sync["status"], sync["created"]) == (
        "Bravo Roofing", "testoauth", "client", "completed", 2)
