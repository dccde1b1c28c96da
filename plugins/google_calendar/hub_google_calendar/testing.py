"""The Google Calendar plugin's conformance adapter: how ``hub.testing.conformance`` (and the demo mode)
starts the simulator, points the plugin at it, connects through Google's consent, and what schedule items,
calendar events and push notifications look like."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta
from typing import Any

import hub_google_calendar.plugin
from hub.testing.adapter import DemoPlace, DemoStep, ProviderAdapter
from hub.testing.flows import connect_oauth
from hub.testing.jobs import run_jobs
from hub_google_calendar.mappers import HUB_ITEM
from hub_google_calendar.simulator import GoogleCalendarSimulator

CHANNEL_SECRET = "sim-calendar-channel-secret"
DEMO_WAIT_SECONDS = 30.0
"""How long demo mode waits for the hub to have done what a step builds on (a first read, a read of an event)."""


class GoogleCalendarAdapter(ProviderAdapter):
    provider = "google_calendar"
    plugin = ("google_calendar", hub_google_calendar.plugin)
    probe = ("list_calendars", {})

    def simulator(self) -> GoogleCalendarSimulator:
        """Notifications are queued for the test to post (``take_notifications``); a hub served over HTTP at
        ``HUB_PUBLIC_URL`` (demo mode) sets ``auto_deliver = True`` and receives them as they happen."""
        return GoogleCalendarSimulator()

    def environ(self, simulator: GoogleCalendarSimulator) -> dict[str, str]:
        return {"GOOGLE_CALENDAR_BASE_URL": simulator.url, "GOOGLE_CALENDAR_CLIENT_ID": simulator.client_id,
                "GOOGLE_CALENDAR_CLIENT_SECRET": simulator.client_secret,
                "GOOGLE_CALENDAR_CHANNEL_SECRET": CHANNEL_SECRET}

    def wrong_client_environ(self, simulator: GoogleCalendarSimulator) -> dict[str, str]:
        return self.environ(simulator) | {"GOOGLE_CALENDAR_CLIENT_SECRET": "GOCSPX-not-the-client-secret"}

    def secrets(self, simulator: GoogleCalendarSimulator) -> list[str]:
        with simulator.lock:
            issued = simulator.issued + list(simulator.refresh_tokens) + list(simulator.revoked) + \
                [c.token for c in simulator.channels.values() if c.token]
        return super().secrets(simulator) + [simulator.client_secret, CHANNEL_SECRET] + issued

    async def connect(self, client, tenant, simulator: GoogleCalendarSimulator) -> None:
        """The consent, then the first read the hub's scheduler would start: it opens the push channel."""
        outcome = await connect_oauth(client, tenant, self.provider)
        assert outcome["status"] == ["connected"], outcome
        started = await client.post(f"/v1/connections/{self.provider}/syncs", json={"entity": "calendar_event"},
                                    headers=tenant.headers)
        assert started.status_code == 202, started.text
        await run_jobs(client.app.state.hub)
        simulator.take_notifications()  # the channel's opening "sync" message

    def demo_simulator(self) -> GoogleCalendarSimulator:
        return GoogleCalendarSimulator(auto_deliver=True)

    async def demo_connect(self, client, tenant, simulator: GoogleCalendarSimulator) -> None:
        """The consent; the hub's scheduler then makes the first read, which opens the push channel. Waits
        for the channel: an event moved in Google before it is open would reach the hub only at the next
        hourly read."""
        outcome = await connect_oauth(client, tenant, self.provider)
        assert outcome["status"] == ["connected"], outcome
        connection = (await client.get(f"/v1/connections/{self.provider}", headers=tenant.headers)).json()
        deadline = time.monotonic() + DEMO_WAIT_SECONDS
        while simulator.channel_for(str(connection["id"])) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the hub's first Google Calendar read opened no push channel")
            await asyncio.sleep(0.05)

    def demo_steps(self, simulator: GoogleCalendarSimulator) -> list[DemoStep]:
        job = {"job_id": "job-oak", "job_name": "Oak St remodel", "location": "1420 Oak St, Chicago",
               "attendees": ["framing.crew@example.com"]}
        items = [{"id": f"sched-framing-{day}", "title": f"Framing, day {day}", "start": f"2026-12-0{6 + day}T08:00:00",
                  "end": f"2026-12-0{6 + day}T16:00:00"} | job for day in (1, 2)]
        synced = {"provider": "google_calendar", "entity": "schedule_item", "direction": "outbound",
                  "status": "completed", "failed": 0}
        return [
            DemoStep("Google Calendar: put two schedule items on the crew's calendar", "POST",
                     "/v1/connections/google_calendar/syncs", {"entity": "schedule_item", "records": items},
                     events=("sync.completed",), data={"sync.completed": synced},
                     note="run it again and nothing is sent; change a title and only the title is patched"),
            DemoStep("Google Calendar: the crew lead drags framing day 2 to the next day in Google (Google "
                     "notifies the hub's push channel; the hub reads what changed)", "POST", "move-event",
                     {"schedule_item_id": "sched-framing-2", "days": 1}, target="provider",
                     events=("calendar.event.updated",),
                     data={"calendar.event.updated": {"schedule_item_id": "sched-framing-2",
                                                      "changed": ["start", "end"]}},
                     note="the hub's own writes read back are no news: only changes made in Google are reported"),
        ]

    def demo_triggers(self):
        return {"move-event": _move_event}

    def outbound_samples(self):
        return {"schedule_item": [
            {"id": f"item-{n}", "title": f"Framing, day {n + 1}", "start": f"2026-12-0{n + 1}T08:00:00",
             "end": f"2026-12-0{n + 1}T16:00:00", "location": "12 Oak St", "attendees": ["crew@example.com"],
             "job_id": "job-7", "job_name": "Oak St remodel"}
            for n in range(3)]}

    def remote_count(self, simulator: GoogleCalendarSimulator, entity: str) -> int:
        return len(simulator.events())

    def seed_inbound(self, simulator: GoogleCalendarSimulator) -> None:
        """Two events the hub made earlier (tagged with its item ids) and someone's own lunch."""
        for n in range(2):
            simulator.add_event({"summary": f"Inspection {n}", "start": {"dateTime": f"2026-12-1{n}T09:00:00-06:00"},
                                 "end": {"dateTime": f"2026-12-1{n}T10:00:00-06:00"},
                                 "extendedProperties": {"private": {HUB_ITEM: f"seeded-{n}"}}})
        simulator.add_event({"summary": "Lunch", "start": {"dateTime": "2026-12-10T12:00:00-06:00"},
                             "end": {"dateTime": "2026-12-10T13:00:00-06:00"}})

    def webhook(self, simulator: GoogleCalendarSimulator, connection, *, secret: str = "good"):
        channel = simulator.channel_for(str(connection["id"]))
        assert channel is not None, "the connection opened no push channel"
        simulator.take_notifications()
        simulator.touch(channel.calendar_id)
        (note,) = [n for n in simulator.take_notifications() if n.headers["X-Goog-Channel-ID"] == channel.id]
        headers = dict(note.headers)
        if secret != "good":
            headers["X-Goog-Channel-Token"] = "a-token-someone-guessed"
        return b"", headers

    def webhook_path(self, connection) -> str:
        return f"/v1/webhooks/{self.provider}/{connection['id']}"


def _move_event(simulator: GoogleCalendarSimulator, body: dict, place: DemoPlace) -> dict[str, Any]:
    """Someone moves a schedule item's event in Google Calendar by whole days; Google notifies the channel."""
    item, days = body.get("schedule_item_id"), body.get("days", 1)
    if not isinstance(item, str) or not item:
        raise ValueError("schedule_item_id (the id of a schedule item synced to the calendar) is required")
    if isinstance(days, bool) or not isinstance(days, int) or days == 0 or abs(days) > 366:
        raise ValueError("days (how far to move the event, e.g. 1 or -2) is a whole number from -366 to 366, not 0")
    found = _event_of(simulator, item)
    if found is None:
        raise LookupError(f"Google Calendar has no event of schedule item {item} (sync it first)")
    calendar_id, event = found
    # A person moves an event the hub has long known of. Right after the sync, the hub's read of its own new
    # events may still be on the way, and a move it read as the event's first version would be no news.
    deadline = time.monotonic() + DEMO_WAIT_SECONDS
    while not simulator.listed(event["id"], calendar_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    moved = simulator.edit_event(event["id"], {"start": _shifted(event["start"], days),
                                               "end": _shifted(event["end"], days)}, calendar_id)
    return {"schedule_item_id": item, "event_id": moved["id"], "start": moved["start"], "end": moved["end"]}


def _event_of(simulator: GoogleCalendarSimulator, item_id: str) -> tuple[str, dict[str, Any]] | None:
    """(calendar id, event) of the live event the hub made for a schedule item."""
    with simulator.lock:
        calendars = list(simulator.calendars)
    for calendar_id in calendars:
        for event in simulator.events(calendar_id).values():
            if ((event.get("extendedProperties") or {}).get("private") or {}).get(HUB_ITEM) == item_id:
                return calendar_id, event
    return None


def _shifted(when: dict[str, Any], days: int) -> dict[str, Any]:
    if when.get("date"):
        return {"date": (date.fromisoformat(when["date"]) + timedelta(days=days)).isoformat()}
    moved = datetime.fromisoformat(when["dateTime"]) + timedelta(days=days)
    return {"dateTime": moved.isoformat(), "timeZone": when.get("timeZone")}
