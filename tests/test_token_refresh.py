"""Valid tokens: refresh ahead of expiry, single-flight across coroutines and processes, rotation kept,
invalid_grant marks the connection."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from hub.db.models import Connection
from hub.errors import NotConnected
from hub.tokens import valid_access_token
from tests.conftest import ENCRYPTION_KEY
from tests.flows import connect

ROOT = Path(__file__).resolve().parents[1]


async def connected(client, hub, tenant) -> Connection:
    assert (await connect(client, tenant))["status"] == ["connected"]
    async with hub.session() as session:
        return (await session.scalars(select(Connection))).one()


async def expire(hub, conn: Connection, in_: timedelta = timedelta(minutes=-1)) -> None:
    async with hub.session() as session:
        await session.execute(
            update(Connection).where(Connection.id == conn.id).values(token_expires_at=datetime.now(UTC) + in_)
        )


async def stored_refresh_token(hub, conn: Connection) -> str:
    async with hub.session() as session:
        row = await session.get(Connection, conn.id)
        return hub.vault.decrypt(row.refresh_token_enc, row.tenant_id, row.id, "refresh_token")


async def test_fresh_token_is_returned_without_refresh(client, hub, tenant, provider):
    conn = await connected(client, hub, tenant)
    token = await valid_access_token(hub, conn.id)
    assert token in provider.state.access_tokens
    assert provider.state.refresh_calls == 0


async def test_token_inside_the_five_minute_buffer_is_refreshed_and_rotation_persisted(client, hub, tenant, provider):
    conn = await connected(client, hub, tenant)
    old_refresh = await stored_refresh_token(hub, conn)
    await expire(hub, conn, timedelta(minutes=4))

    token = await valid_access_token(hub, conn.id)

    assert provider.state.refresh_calls == 1
    new_refresh = await stored_refresh_token(hub, conn)
    assert new_refresh != old_refresh and new_refresh in provider.state.refresh_tokens
    assert old_refresh not in provider.state.refresh_tokens  # the provider killed the old one
    assert await valid_access_token(hub, conn.id) == token  # now fresh: no second refresh
    assert provider.state.refresh_calls == 1


async def test_invalid_grant_marks_the_connection_error(client, hub, tenant, provider):
    conn = await connected(client, hub, tenant)
    provider.state.refresh_tokens.clear()  # the provider forgot the grant (revoked at its end)
    await expire(hub, conn)

    try:
        await valid_access_token(hub, conn.id)
        raise AssertionError("expected NotConnected")
    except NotConnected as exc:
        assert exc.code == "invalid_grant"

    body = (await client.get("/v1/connections/testoauth", headers=tenant.headers)).json()
    assert body["status"] == "error" and "invalid_grant" in body["last_error"]
    events = (await client.get("/v1/events?type=connection.error", headers=tenant.headers)).json()
    assert [(e["provider"], e["data"]["connection_id"], e["data"]["error_code"]) for e in events] == [
        ("testoauth", str(conn.id), "invalid_grant")]  # its webhook endpoints hear of it too: one event, once
    assert "token" not in json.dumps(events[0]["data"]).replace("token refresh rejected", "")


async def test_provider_outage_during_refresh_keeps_the_old_tokens(client, hub, tenant, provider):
    conn = await connected(client, hub, tenant)
    old_refresh = await stored_refresh_token(hub, conn)
    await expire(hub, conn)
    provider.state.fail_token_with = 503

    try:
        await valid_access_token(hub, conn.id)
        raise AssertionError("expected a provider error")
    except Exception as exc:
        assert type(exc).__name__ == "ProviderError"

    assert await stored_refresh_token(hub, conn) == old_refresh
    provider.state.fail_token_with = None
    assert await valid_access_token(hub, conn.id) in provider.state.access_tokens


async def test_fifty_concurrent_callers_in_one_process_cause_one_refresh(client, hub, tenant, provider):
    conn = await connected(client, hub, tenant)
    await expire(hub, conn)
    provider.state.refresh_delay = 0.2

    tokens = await asyncio.gather(*(valid_access_token(hub, conn.id) for _ in range(50)))

    assert provider.state.refresh_calls == 1
    assert len(set(tokens)) == 1 and tokens[0] in provider.state.access_tokens


async def test_fifty_concurrent_callers_across_five_processes_cause_one_refresh(
    client, hub, tenant, provider, settings
):
    conn = await connected(client, hub, tenant)
    await expire(hub, conn)
    provider.state.refresh_delay = 0.3
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.refresh_worker", settings.database_url, ENCRYPTION_KEY,
             provider.url, str(settings.home), str(conn.id), "10"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for _ in range(5)
    ]
    try:
        for worker in workers:  # every process is up and connected before any asks
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        tokens = []
        for worker in workers:
            out, _ = await asyncio.to_thread(worker.communicate, timeout=60)
            assert worker.returncode == 0
            tokens += json.loads(out.strip().splitlines()[-1])
    finally:
        for worker in workers:
            worker.kill()

    assert len(tokens) == 50
    assert provider.state.refresh_calls == 1
    assert len(set(tokens)) == 1 and tokens[0] in provider.state.access_tokens
