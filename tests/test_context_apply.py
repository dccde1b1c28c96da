"""``ConnectionContext.apply``: an action stores what it changed (records, events) as a webhook handler's
outcome is stored; ``ConnectionContext.now`` is the hub's clock."""

from __future__ import annotations

from datetime import timedelta

from hub.connections import connection_context, get_connection
from hub.handlers import InboundRecord, NewEvent, WebhookOutcome
from tests.flows import connect


async def _context(hub, tenant):
    async with hub.session(tenant.id) as session:
        return await connection_context(hub, session, await get_connection(session, tenant.id, "testoauth"))


async def test_an_action_stores_its_records_and_events_in_one_go(client, hub, tenant):
    await connect(client, tenant)
    ctx = await _context(hub, tenant)
    await ctx.apply(WebhookOutcome(
        records={"envelope": [InboundRecord(external_id="env-1", data={"status": "sent"})]},
        events=[NewEvent(type="esign.envelope.created", data={"envelope_id": "env-1"})]))
    await ctx.apply(WebhookOutcome(records={"envelope": [InboundRecord(external_id="env-1",
                                                                       data={"status": "completed"})]}))

    records = (await client.get("/v1/records/testoauth/envelope", headers=tenant.headers)).json()["items"]
    assert [(r["external_id"], r["data"]) for r in records] == [("env-1", {"status": "completed"})]
    assert await ctx.records("envelope", ["env-1"]) == {"env-1": {"status": "completed"}}
    events = (await client.get("/v1/events?type=esign.envelope.created", headers=tenant.headers)).json()
    assert [(e["provider"], e["data"]) for e in events] == [("testoauth", {"envelope_id": "env-1"})]


async def test_now_is_the_hubs_clock(client, hub, tenant, clock):
    await connect(client, tenant)
    ctx = await _context(hub, tenant)
    before = ctx.now()
    clock.advance(timedelta(minutes=16))
    assert ctx.now() - before == timedelta(minutes=16)
