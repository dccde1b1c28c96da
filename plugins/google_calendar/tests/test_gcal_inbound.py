"""Changes made in Google come back: incremental reads with sync tokens (a 410 starts a full read over, with
no duplicates), push notifications through a watch channel (verified, renewed, stopped), and
``calendar.event.updated`` / ``.deleted`` for the events the hub made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from gcal_flows import connect, context, events, items, mappings, notify, read, records, sync
from sqlalchemy import select

from hub.db.models import WebhookInbox
from hub.testing import run_jobs
from hub_google_calendar.channels import channel_token
from hub_google_calendar.testing import CHANNEL_SECRET

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")


async def connected_with_channel(client, hub, tenant, google, n: int = 3) -> tuple[dict, dict[str, str]]:
    """Connected, ``n`` items pushed, the calendar read (which opens the push channel)."""
    await connect(client, tenant)
    assert (await sync(client, hub, tenant, "schedule_item", items(n)))["created"] == n
    assert (await read(client, hub, tenant))["status"] == "completed"
    connection = (await client.get("/v1/connections/google_calendar", headers=tenant.headers)).json()
    assert connection["metadata"]["channel"]["id"] in google.channels
    assert "token" not in str(connection["metadata"])  # the channel's token is never stored nor shown
    google.take_notifications()  # the channel's "sync" message and the reads' echoes
    return connection, await mappings(client, tenant)


async def test_an_event_moved_in_google_comes_back_as_calendar_event_updated_after_a_push(
        client, hub, tenant, simulator):
    google = simulator
    connection, mapped = await connected_with_channel(client, hub, tenant, google)
    assert await events(client, tenant) == []  # the hub's own events read back: no news
    moved = mapped["item-1"]

    google.edit_event(moved, {"start": {"dateTime": "2026-12-02T10:00:00-07:00"},
                              "end": {"dateTime": "2026-12-02T18:30:00-07:00"}})
    notes = google.take_notifications()
    assert [n.headers["X-Goog-Resource-State"] for n in notes] == ["exists"]
    assert await notify(client, connection, notes + notes) == [200, 200]  # Google retries: stored once
    await run_jobs(hub)

    [updated] = await events(client, tenant, "calendar.event.updated")
    assert updated["provider"] == "google_calendar"
    assert {k: updated["data"][k] for k in ("event_id", "schedule_item_id", "job_id", "start", "changed")} == {
        "event_id": moved, "schedule_item_id": "item-1", "job_id": "job-42", "start": "2026-12-02T10:00:00-07:00",
        "changed": ["start", "end"]}
    assert (await records(client, tenant))[moved]["changed_in_google"] == ["start", "end"]

    retitled = items(3)
    retitled[0]["title"] = "Task 0, again"  # the hub's own change to another item, read back: no event
    await sync(client, hub, tenant, "schedule_item", retitled)
    await read(client, hub, tenant)
    assert len(await events(client, tenant)) == 1

    google.cancel_event(mapped["item-2"])
    await notify(client, connection, google.take_notifications())
    await run_jobs(hub)
    [deleted] = await events(client, tenant, "calendar.event.deleted")
    assert (deleted["data"]["event_id"], deleted["data"]["schedule_item_id"]) == (mapped["item-2"], "item-2")
    assert (await records(client, tenant))[mapped["item-2"]]["status"] == "cancelled"
    await read(client, hub, tenant, type="full")  # read again from scratch: nothing new to say
    assert len(await events(client, tenant)) == 2


async def test_a_wrong_channel_token_channel_or_resource_is_rejected_and_nothing_is_stored(
        client, hub, tenant, simulator):
    connection, _ = await connected_with_channel(client, hub, tenant, simulator, n=1)
    simulator.touch()
    [note] = simulator.take_notifications()
    good = note.headers
    other = "0" * 32
    forged = [
        good | {"X-Goog-Channel-Token": "guessed"},
        {k: v for k, v in good.items() if k != "X-Goog-Channel-Token"},
        good | {"X-Goog-Channel-Token": good["X-Goog-Channel-Token"][:-1]
                + ("B" if good["X-Goog-Channel-Token"].endswith("A") else "A")},
        # a token rightly derived for another channel id still names no channel of this connection
        good | {"X-Goog-Channel-ID": other,
                "X-Goog-Channel-Token": channel_token(CHANNEL_SECRET.encode(), connection["id"], other)},
        good | {"X-Goog-Resource-ID": "another-calendars-resource"},
    ]
    for headers in forged:
        assert (await client.post(note.path, content=b"", headers=headers)).status_code == 401, headers
    elsewhere = (await client.post("/v1/webhooks/google_calendar", content=b"", headers=good)).status_code
    assert elsewhere in (401, 404)  # only the connection's own URL takes Google's notifications
    async with hub.session() as session:
        assert list(await session.scalars(select(WebhookInbox))) == []

    assert (await client.post(note.path, content=b"", headers=good)).status_code == 200


async def test_a_410_on_the_sync_token_recovers_with_a_full_read_and_no_duplicate_records(
        client, hub, tenant, simulator):
    _, mapped = await connected_with_channel(client, hub, tenant, simulator, n=4)
    held = await records(client, tenant)
    assert set(held) == set(mapped.values())
    simulator.expire_sync_tokens()
    simulator.edit_event(mapped["item-3"], {"location": "7 Pine St"})
    before = len(simulator.requests)

    run = await read(client, hub, tenant)

    assert run["status"] == "completed", run
    lists = [(e.status, "syncToken" in e.request.query) for e in simulator.requests[before:]
             if e.request.method == "GET" and e.request.path.endswith("/events")]
    assert lists == [(410, True), (200, False)]  # the expired token, then a full read
    after = await records(client, tenant)
    assert set(after) == set(held) and after[mapped["item-3"]]["location"] == "7 Pine St"
    assert (await client.get("/v1/records/google_calendar/calendar_event?limit=1000",
                             headers=tenant.headers)).json()["items"].__len__() == 4
    assert len(await events(client, tenant, "calendar.event.updated")) == 1

    again = await read(client, hub, tenant)  # the new token works
    assert (again["created"], again["updated"]) == (0, 0)


async def test_the_channel_is_renewed_before_it_expires_and_stopped_on_disconnect(client, hub, tenant, simulator):
    connection, _ = await connected_with_channel(client, hub, tenant, simulator, n=1)
    first = connection["metadata"]["channel"]
    await read(client, hub, tenant)
    assert set(simulator.channels) == {first["id"]}  # a week left: kept

    ctx = await context(hub, tenant.id)
    soon = (datetime.now(UTC) + timedelta(hours=20)).isoformat()
    await ctx.save_metadata({"channel": first | {"expires_at": soon}})
    await read(client, hub, tenant)

    shown = (await client.get("/v1/connections/google_calendar", headers=tenant.headers)).json()
    renewed = shown["metadata"]["channel"]
    assert renewed["id"] != first["id"] and set(simulator.channels) == {renewed["id"]}
    assert simulator.stopped_channels == [first["id"]]
    assert datetime.fromisoformat(renewed["expires_at"]) > datetime.now(UTC) + timedelta(days=6)

    answer = await client.delete("/v1/connections/google_calendar", headers=tenant.headers)
    assert answer.status_code == 200 and answer.json()["revoked_at_provider"] is True
    assert simulator.channels == {} and simulator.stopped_channels == [first["id"], renewed["id"]]
    assert simulator.grants == {}  # the grant is revoked too


async def test_switching_push_notifications_off_stops_the_channel(client, hub, tenant, simulator):
    await connected_with_channel(client, hub, tenant, simulator, n=1)
    answer = await client.patch("/v1/connections/google_calendar", headers=tenant.headers,
                                json={"settings": {"push_notifications": False}})
    assert answer.status_code == 200
    await read(client, hub, tenant)
    assert simulator.channels == {}
    assert "channel" not in (await client.get("/v1/connections/google_calendar",
                                              headers=tenant.headers)).json()["metadata"]


async def test_someones_own_events_stay_out_unless_the_tenant_asks_for_every_event(client, hub, tenant, simulator):
    await connect(client, tenant)
    simulator.add_event({"summary": "Dentist", "start": {"dateTime": "2026-12-09T08:00:00-07:00"},
                         "end": {"dateTime": "2026-12-09T09:00:00-07:00"}})
    await read(client, hub, tenant)
    assert await records(client, tenant) == {}
    await client.patch("/v1/connections/google_calendar", headers=tenant.headers,
                       json={"settings": {"import_all_events": True}})
    await read(client, hub, tenant)  # incremental, but the setting changed what a read keeps: read it whole
    [(_, dentist)] = (await records(client, tenant)).items()
    assert (dentist["title"], dentist["start"]) == ("Dentist", "2026-12-09T08:00:00-07:00")


async def test_the_simulator_says_whether_a_read_has_returned_an_events_latest_change(client, hub, tenant, simulator):
    """Demo mode's "someone moves an event" waits on it: a move the hub reads as an event's first version
    is no news."""
    google = simulator
    await connect(client, tenant)
    await sync(client, hub, tenant, "schedule_item", items(1))
    event_id = (await mappings(client, tenant))["item-0"]
    assert not google.listed(event_id)
    await read(client, hub, tenant)
    assert google.listed(event_id)
    google.edit_event(event_id, {"location": "14 Elm St"})
    assert not google.listed(event_id)
    await read(client, hub, tenant)
    assert google.listed(event_id)
