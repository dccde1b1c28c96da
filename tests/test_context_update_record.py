"""``ConnectionContext.update_record``: a record that several jobs move on at once loses no change, and its
events are stored with it; ``ConnectionContext.now`` is the hub's clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hub.connections import connection_context, get_connection
from hub.handlers import NewEvent
from tests.flows import connect


async def _context(hub, tenant):
    async with hub.session(tenant.id) as session:
        return await connection_context(hub, session, await get_connection(session, tenant.id, "testoauth"))


def _bump(current):
    count = (current or {"count": 0})["count"] + 1
    return {"count": count}, [NewEvent(type="counter.bumped", data={"count": count})]


async def test_concurrent_changes_of_one_record_are_all_kept_with_their_events(client, hub, tenant):
    await connect(client, tenant)
    contexts = [await _context(hub, tenant) for _ in range(12)]
    await asyncio.gather(*(ctx.update_record("counter", "c-1", _bump) for ctx in contexts))

    records = (await client.get("/v1/records/testoauth/counter", headers=tenant.headers)).json()["items"]
    assert [(r["external_id"], r["data"]) for r in records] == [("c-1", {"count": 12})]
    events = (await client.get("/v1/events?type=counter.bumped", headers=tenant.headers)).json()
    assert sorted(e["data"]["count"] for e in events) == list(range(1, 13))


async def test_a_change_that_returns_none_leaves_the_record_and_records_nothing(client, hub, tenant):
    await connect(client, tenant)
    ctx = await _context(hub, tenant)
    assert await ctx.update_record("counter", "c-1", _bump) == {"count": 1}
    assert await ctx.update_record("counter", "c-1", lambda current: (None, [NewEvent(type="x", data={})])) == {
        "count": 1}
    assert await ctx.records("counter", ["c-1"]) == {"c-1": {"count": 1}}
    assert (await client.get("/v1/events?type=x", headers=tenant.headers)).json() == []


async def test_now_is_the_hubs_clock(client, hub, tenant, clock):
    await connect(client, tenant)
    ctx = await _context(hub, tenant)
    before = ctx.now()
    clock.advance(timedelta(minutes=16))
    assert ctx.now() - before == timedelta(minutes=16)
