"""Schedule items out to Google Calendar: the fewest calls, patches of what changed, deletes, time zones,
reminders, sendUpdates, and an insert repeated after a lost answer."""

from __future__ import annotations

import json

import msgspec
import pytest
from gcal_flows import connect, context, items, mappings, sync

from hub import OutboundItem
from hub.entities import ScheduleItem
from hub.testing import run_jobs
from hub_google_calendar.syncs import DELETED

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")

EVENTS = "/calendar/v3/calendars/primary/events"


def writes(google, method: str) -> list:
    return [e.request for e in google.logged(lambda r: r.method == method and r.path.startswith(EVENTS))]


async def test_twenty_items_then_three_changed_and_two_deleted_match_the_calendar_with_the_fewest_calls(
        client, hub, tenant, simulator):
    google = simulator
    await connect(client, tenant)
    job = items(20)
    job[5]["timezone"] = "America/New_York"  # the item's own zone wins over the tenant's

    first = await sync(client, hub, tenant, "schedule_item", job)

    assert (first["created"], first["failed"]) == (20, 0), first
    assert google.calls("/calendar/v3/") == 20 and len(writes(google, "POST")) == 20  # one insert each, no reads
    events = google.events()
    mapped = await mappings(client, tenant)
    assert set(mapped) == {i["id"] for i in job} and set(mapped.values()) == set(events)
    sample = events[mapped["item-0"]]
    assert sample["summary"] == "Task 0" and sample["location"] == "42 Elm St, Boulder"
    assert sample["start"] == {"dateTime": "2026-12-01T07:00:00-07:00", "timeZone": "America/Denver"}
    assert events[mapped["item-5"]]["start"] == {"dateTime": "2026-12-06T07:00:00-05:00",
                                                 "timeZone": "America/New_York"}
    assert [a["email"] for a in sample["attendees"]] == ["ana@example.com", "bo@example.com"]
    assert sample["reminders"] == {"useDefault": False, "overrides": [{"method": "email", "minutes": 1440},
                                                                      {"method": "popup", "minutes": 30}]}
    assert sample["extendedProperties"]["private"]["hubJobName"] == "Elm St kitchen"
    assert {send for _, _, send in google.sent_updates} == {"all"}

    changed = [dict(i) for i in job]
    changed[1]["title"] = "Task 1: demolition"
    changed[2] |= {"start": "2026-12-03T09:00:00", "end": "2026-12-03T17:00:00"}  # moved two hours
    changed[3]["attendees"] = ["ana@example.com"]
    changed[4]["sync_to_calendar"] = False
    changed[6]["sync_to_calendar"] = False
    before = len(google.requests)

    second = await sync(client, hub, tenant, "schedule_item", changed)

    assert (second["updated"], second["unchanged"], second["created"], second["failed"]) == (5, 15, 0, 0), second
    made = [(e.request.method, e.request.path.rsplit("/", 1)[1]) for e in google.requests[before:]]
    assert sorted(made) == sorted([("PATCH", mapped[f"item-{n}"]) for n in (1, 2, 3)]
                                  + [("DELETE", mapped[f"item-{n}"]) for n in (4, 6)])
    patches = {r.path.rsplit("/", 1)[1]: json.loads(r.body) for r in writes(google, "PATCH")}
    assert set(patches[mapped["item-1"]]) == {"summary", "extendedProperties"}  # only what changed
    assert set(patches[mapped["item-2"]]) == {"start", "end", "extendedProperties"}
    assert set(patches[mapped["item-3"]]) == {"attendees", "extendedProperties"}

    live = google.events()
    assert len(live) == 18
    for item in changed:
        event_id = mapped[item["id"]]
        if not item.get("sync_to_calendar", True):
            assert event_id not in live
            continue
        event = live[event_id]
        assert event["summary"] == item["title"]
        assert event["start"]["dateTime"].startswith(item["start"]) and event["end"]["dateTime"].startswith(item["end"])
        assert [a["email"] for a in event["attendees"]] == item["attendees"]
    now_mapped = await mappings(client, tenant)
    assert now_mapped["item-4"] == DELETED + mapped["item-4"]

    before = len(google.requests)
    third = await sync(client, hub, tenant, "schedule_item", changed)  # the same again: nothing to send
    assert third["unchanged"] == 20 and len(google.requests) == before

    changed[4]["sync_to_calendar"] = True  # marked again: a new event
    fourth = await sync(client, hub, tenant, "schedule_item", changed)
    assert (fourth["created"], fourth["unchanged"]) == (1, 19), fourth
    assert len(google.events()) == 19 and (await mappings(client, tenant))["item-4"] in google.events()


async def test_settings_choose_the_calendar_reminders_and_whom_google_emails(client, hub, tenant, simulator):
    await connect(client, tenant, timezone=None)
    crew = "c_crew0schedule@group.calendar.google.com"
    answer = await client.patch("/v1/connections/google_calendar", headers=tenant.headers, json={"settings": {
        "calendar_id": crew, "send_updates": "none", "reminders": [{"method": "popup", "minutes": 10}]}})
    assert answer.status_code == 200, answer.text
    for bad in ({"send_updates": "everyone"}, {"reminders": [{"method": "sms", "minutes": 5}]},
                {"reminders": [{"method": "popup", "minutes": 10}] * 6}, {"calendar_id": ""}):
        refused = await client.patch("/v1/connections/google_calendar", headers=tenant.headers, json={"settings": bad})
        assert refused.status_code == 422, bad

    all_day = items(1, all_day=True, start="2026-12-24T00:00:00", end="2026-12-25T00:00:00")
    two_days = items(1, first=1, all_day=True, start="2026-12-28T00:00:00", end="2026-12-29T23:59:00")
    assert (await sync(client, hub, tenant, "schedule_item", all_day + two_days))["created"] == 2

    assert simulator.events() == {} and len(simulator.events(crew)) == 2
    mapped = await mappings(client, tenant)
    first, second = simulator.events(crew)[mapped["item-0"]], simulator.events(crew)[mapped["item-1"]]
    assert (first["start"]["date"], first["end"]["date"]) == ("2026-12-24", "2026-12-25")  # Google's end is exclusive
    assert (second["start"]["date"], second["end"]["date"]) == ("2026-12-28", "2026-12-30")
    assert first["start"]["timeZone"] == "UTC"  # the tenant set none: the hub's default, never a coded-in zone
    assert first["reminders"] == {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]}
    assert {send for _, _, send in simulator.sent_updates} == {"none"}


async def test_an_insert_repeated_after_a_lost_answer_makes_no_second_event(client, hub, tenant, simulator):
    await connect(client, tenant)
    ctx = await context(hub, tenant.id)
    push = hub.registry.syncs[("google_calendar", "schedule_item", "outbound")].push
    record = msgspec.convert(items(1)[0], ScheduleItem)
    item = OutboundItem(internal_id="item-0", record=record, idempotency_key="0123456789abcdef0123456789abcdef")

    [first] = await push(ctx, [item])
    [again] = await push(ctx, [item])  # the answer to the first was lost: the job runs it again

    assert first.outcome == again.outcome == "created" and first.external_id == again.external_id
    assert len(simulator.events()) == 1 and first.external_id == "0123456789abcdef0123456789abcdef"
    assert [r.request.method for r in simulator.requests if r.request.path.startswith(EVENTS)] == \
        ["POST", "POST", "PATCH"]  # the repeat met 409 duplicate and made the event match instead


async def test_schedule_item_events_the_tenant_publishes_reach_the_calendar_while_auto_sync_is_on(
        client, hub, tenant, simulator):
    await connect(client, tenant)

    async def publish(type: str, data: dict) -> None:
        response = await client.post("/v1/events", json={"type": type, "data": data}, headers=tenant.headers)
        assert response.status_code == 201, response.text
        await run_jobs(hub)

    first, second = items(2)
    await publish("schedule_item.created", {"schedule_item": first})
    await publish("schedule_item.created", second)  # the item itself as the data
    mapped = await mappings(client, tenant)
    assert set(simulator.events()) == set(mapped.values()) and len(mapped) == 2

    await publish("schedule_item.updated", first | {"title": "Task 0 (moved to Friday)"})
    assert simulator.events()[mapped["item-0"]]["summary"] == "Task 0 (moved to Friday)"
    await publish("schedule_item.deleted", {"schedule_item": first})
    await publish("schedule_item.deleted", {"id": "item-1"})  # only the id: its event is deleted all the same
    assert simulator.events() == {}

    await client.patch("/v1/connections/google_calendar", json={"settings": {"auto_sync": False}},
                       headers=tenant.headers)
    await publish("schedule_item.created", items(1, first=5)[0])
    assert simulator.events() == {}
