"""The Google Calendar plugin's conformance adapter: how ``hub.testing.conformance`` (and the demo mode)
starts the simulator, points the plugin at it, connects through Google's consent, and what schedule items,
calendar events and push notifications look like."""

from __future__ import annotations

import hub_google_calendar.plugin
from hub.testing.adapter import ProviderAdapter
from hub.testing.flows import connect_oauth
from hub.testing.jobs import run_jobs
from hub_google_calendar.mappers import HUB_ITEM
from hub_google_calendar.simulator import GoogleCalendarSimulator

CHANNEL_SECRET = "sim-calendar-channel-secret"


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
        """The consent; the hub's scheduler then makes the first read, which opens the push channel."""
        outcome = await connect_oauth(client, tenant, self.provider)
        assert outcome["status"] == ["connected"], outcome

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
