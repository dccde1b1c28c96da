"""Expired OAuth states and hosted-connect links are deleted once they have been kept long enough."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from hub.db.models import ConnectSession, OAuthState
from hub.housekeeping import purge_expired
from hub.jobs.broker import relay_forever
from tests.conftest import wait_for
from tests.flows import authorize


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
