"""Steps the Google Calendar tests share: connect through Google's consent, push schedule items, read the
calendar, deliver Google's push notifications to the hub."""

from __future__ import annotations

import uuid

from hub.connections import connection_context, get_connection
from hub.testing import connect_oauth, run_jobs

SLUG = "google_calendar"


async def connect(client, tenant, timezone: str | None = "America/Denver") -> dict:
    if timezone:
        answer = await client.patch("/v1/tenant", json={"settings": {"timezone": timezone}}, headers=tenant.headers)
        assert answer.status_code == 200, answer.text
    outcome = await connect_oauth(client, tenant, SLUG)
    assert outcome["status"] == ["connected"], outcome
    return (await client.get(f"/v1/connections/{SLUG}", headers=tenant.headers)).json()


async def sync(client, hub, tenant, entity: str, records: list[dict] | None = None, **extra) -> dict:
    body = {"entity": entity, **extra} | ({"records": records} if records is not None else {})
    started = await client.post(f"/v1/connections/{SLUG}/syncs", json=body, headers=tenant.headers)
    assert started.status_code == 202, started.text
    await run_jobs(hub)
    return (await client.get(f"/v1/syncs/{started.json()['id']}", headers=tenant.headers)).json()


async def read(client, hub, tenant, **extra) -> dict:
    return await sync(client, hub, tenant, "calendar_event", **extra)


async def context(hub, tenant_id: uuid.UUID):
    async with hub.session(tenant_id) as session:
        return await connection_context(hub, session, await get_connection(session, tenant_id, SLUG))


async def mappings(client, tenant) -> dict[str, str]:
    page = (await client.get(f"/v1/connections/{SLUG}/mappings?entity=schedule_item&limit=1000",
                             headers=tenant.headers)).json()
    return {m["internal_id"]: m["external_id"] for m in page["items"]}


async def records(client, tenant) -> dict[str, dict]:
    page = (await client.get(f"/v1/records/{SLUG}/calendar_event?limit=1000", headers=tenant.headers)).json()
    return {r["external_id"]: r["data"] for r in page["items"]}


async def events(client, tenant, event_type: str | None = None) -> list[dict]:
    """The tenant's events of ``event_type``, or every ``calendar.event.*`` one."""
    if event_type is None:
        return await events(client, tenant, "calendar.event.updated") + \
            await events(client, tenant, "calendar.event.deleted")
    return (await client.get(f"/v1/events?type={event_type}", headers=tenant.headers)).json()


async def notify(client, connection: dict, notifications) -> list[int]:
    """Post Google's notifications to the hub as Google would (to the connection's own URL)."""
    statuses = []
    for note in notifications:
        assert note.path == f"/v1/webhooks/{SLUG}/{connection['id']}", note.path
        statuses.append((await client.post(note.path, content=b"", headers=note.headers)).status_code)
    return statuses


def items(n: int, first: int = 0, **overrides) -> list[dict]:
    """A job's schedule items: day ``i`` from 07:00 to 15:30 local time, the crew invited."""
    return [{"id": f"item-{i}", "title": f"Task {i}", "description": f"Step {i} of the remodel",
             "start": f"2026-12-{1 + i % 28:02d}T07:00:00", "end": f"2026-12-{1 + i % 28:02d}T15:30:00",
             "location": "42 Elm St, Boulder", "attendees": ["ana@example.com", "bo@example.com"],
             "job_id": "job-42", "job_name": "Elm St kitchen", **overrides}
            for i in range(first, first + n)]
