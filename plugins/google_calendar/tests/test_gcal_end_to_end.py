"""The whole path, with the hub's workers running (every database and broker of the matrix): connect, the
scheduler's first read opens the push channel, a job's schedule pushed, a crew lead moves one event in
Google, Google's notification reaches the hub, the read it starts finds the move, and the tenant's endpoint
receives ``calendar.event.updated``, signed, once."""

from __future__ import annotations

import json

from gcal_flows import SLUG, connect, events, items, mappings, notify, records

from hub.testing import subscribe, wait_for


async def test_a_move_in_google_reaches_the_tenants_endpoint_through_a_push_notification(
        client, hub, tenant, simulator, jobs, webhook_receiver):
    google = simulator
    await subscribe(client, tenant, webhook_receiver, ["calendar.event.*"])
    await connect(client, tenant)

    async def channel_open():  # the scheduler reads a new connection at once; that read opens the channel
        connection = (await client.get(f"/v1/connections/{SLUG}", headers=tenant.headers)).json()
        return connection if "channel" in connection["metadata"] else None

    connection = await wait_for(channel_open, timeout=60)
    started = await client.post(f"/v1/connections/{SLUG}/syncs", headers=tenant.headers,
                                json={"entity": "schedule_item", "records": items(3)})
    assert started.status_code == 202, started.text

    async def pushed():
        mapped = await mappings(client, tenant)
        return mapped if len(mapped) == 3 else None

    mapped = await wait_for(pushed, timeout=60)

    async def read_back():  # Google told the hub about its own inserts; the reads store them
        await notify(client, connection, google.take_notifications())
        return len(await records(client, tenant)) == 3

    await wait_for(read_back, timeout=60)
    assert await events(client, tenant) == []

    google.edit_event(mapped["item-2"], {"start": {"dateTime": "2026-12-03T12:00:00-07:00"},
                                         "end": {"dateTime": "2026-12-03T20:30:00-07:00"}})
    assert await notify(client, connection, google.take_notifications()) == [200]

    async def delivered():
        return webhook_receiver.deliveries() or None

    [delivery] = await wait_for(delivered, timeout=60)
    sent = json.loads(delivery.body)
    assert (sent["type"], sent["provider"]) == ("calendar.event.updated", SLUG)
    assert (sent["data"]["schedule_item_id"], sent["data"]["start"]) == ("item-2", "2026-12-03T12:00:00-07:00")
    assert [e["id"] for e in await events(client, tenant)] == [sent["id"]]
