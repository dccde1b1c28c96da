"""Schedule items <-> Google Calendar events (pure functions).

Out: title -> ``summary``, ``description``, ``location``, attendees -> ``attendees[].email``, start/end in
the item's time zone or else the tenant's (``ctx.timezone``; all-day items as ``date``s with Google's
exclusive end date), the connection's reminders, and the hub's identities (item, job id and name) in the
event's private extended properties, with a short fingerprint of each field the hub set, so a read can
tell a change made in Google from one the hub made.

In: an event as a ``calendar_event`` record.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from hub.entities import Entity, ScheduleItem

HUB_ITEM = "hubScheduleItemId"
HUB_JOB = "hubJobId"
HUB_JOB_NAME = "hubJobName"
HUB_FIELDS = "hubFields"
"""``field=fingerprint`` pairs of what the hub last set, comma-separated (extended property values hold 1,024
characters; these take about 90)."""
WATCHED = ("summary", "description", "location", "start", "end", "attendees")
"""The fields a person may change in Google that the hub reports back."""


class Attendee(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    email: str
    response_status: str | None = None


class CalendarEvent(Entity, kw_only=True):
    """A Google Calendar event as the hub keeps it (``GET /v1/records/google_calendar/calendar_event``)."""

    status: str
    """``confirmed``, ``tentative`` or ``cancelled`` (deleted in Google)."""
    title: str | None = None
    description: str | None = None
    location: str | None = None
    start: str | None = None
    """RFC 3339 date-time with its offset, or a date for an all-day event."""
    end: str | None = None
    """Exclusive for all-day events, as Google has it."""
    all_day: bool = False
    timezone: str | None = None
    attendees: list[Attendee] = []
    schedule_item_id: str | None = None
    """The hub's schedule item this event was made from, if the hub made it."""
    job_id: str | None = None
    job_name: str | None = None
    changed_in_google: list[str] = []
    """The fields (``WATCHED``) that differ from what the hub last set: changed by someone in Google."""
    html_link: str | None = None
    updated: str | None = None


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


def _times(item: ScheduleItem, zone_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    zone = ZoneInfo(zone_name)
    start, end = _local(item.start, zone), _local(item.end, zone)
    if item.all_day:
        first = start.date()
        last = end.date() if end.timetz().replace(tzinfo=None) == time(0) and end.date() > first \
            else end.date() + timedelta(days=1)
        return ({"date": first.isoformat(), "dateTime": None, "timeZone": zone_name},
                {"date": last.isoformat(), "dateTime": None, "timeZone": zone_name})
    return ({"date": None, "dateTime": start.isoformat(), "timeZone": zone_name},
            {"date": None, "dateTime": end.isoformat(), "timeZone": zone_name})


def _normal(field: str, value: Any) -> Any:
    """A field's value as Google may return it, reduced to what it means (instants in UTC, emails sorted)."""
    if field in ("start", "end"):
        if not isinstance(value, dict):
            return None
        if value.get("date"):
            return "D" + str(value["date"])
        if value.get("dateTime"):
            moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
            if moment.tzinfo is None and value.get("timeZone"):
                moment = moment.replace(tzinfo=ZoneInfo(value["timeZone"]))
            return moment.timestamp()
        return None
    if field == "attendees":
        return sorted(str(a.get("email", "")).lower() for a in value or [] if isinstance(a, dict))
    return value or None


def fingerprint(field: str, value: Any) -> str:
    return hashlib.sha256(json.dumps(_normal(field, value), sort_keys=True).encode()).hexdigest()[:10]


def fingerprints(event: dict[str, Any]) -> dict[str, str]:
    return {field: fingerprint(field, event.get(field)) for field in WATCHED}


def hub_fields(event: dict[str, Any]) -> dict[str, str]:
    """The fingerprints the hub left on an event (empty: not the hub's, or not yet)."""
    private = (event.get("extendedProperties") or {}).get("private") or {}
    pairs = (p.partition("=") for p in str(private.get(HUB_FIELDS) or "").split(",") if "=" in p)
    return {name: value for name, _, value in pairs}


def item_to_event(item: ScheduleItem, ctx) -> dict[str, Any]:
    """The event for a schedule item; every field the hub sets is present (None: cleared)."""
    zone = item.timezone or ctx.timezone
    start, end = _times(item, zone)
    reminders = ctx.settings.reminders
    event: dict[str, Any] = {
        "summary": item.title, "description": item.description or None, "location": item.location or None,
        "start": start, "end": end, "attendees": [{"email": email} for email in item.attendees] or None,
        "reminders": {"useDefault": False, "overrides": [{"method": r.method, "minutes": r.minutes}
                                                          for r in reminders]} if reminders else {"useDefault": True},
    }
    marks = ",".join(f"{name}={value}" for name, value in fingerprints(event).items())
    event["extendedProperties"] = {"private": {HUB_ITEM: item.id, HUB_JOB: item.job_id or None,
                                               HUB_JOB_NAME: item.job_name or None, HUB_FIELDS: marks}}
    return event


def event_to_record(event: dict[str, Any], ctx) -> dict[str, Any]:
    start, end = event.get("start") or {}, event.get("end") or {}
    private = (event.get("extendedProperties") or {}).get("private") or {}
    marks = hub_fields(event)
    changed = [name for name, mark in fingerprints(event).items() if marks and marks.get(name) != mark]
    record: dict[str, Any] = {
        "id": event["id"], "status": event.get("status") or "confirmed", "title": event.get("summary"),
        "description": event.get("description"), "location": event.get("location"),
        "start": start.get("dateTime") or start.get("date"), "end": end.get("dateTime") or end.get("date"),
        "all_day": bool(start.get("date")), "timezone": start.get("timeZone"),
        "attendees": [{"email": a["email"], "response_status": a.get("responseStatus")}
                      for a in event.get("attendees") or [] if isinstance(a, dict) and a.get("email")],
        "schedule_item_id": private.get(HUB_ITEM), "job_id": private.get(HUB_JOB),
        "job_name": private.get(HUB_JOB_NAME), "changed_in_google": changed,
        "html_link": event.get("htmlLink"), "updated": event.get("updated"),
    }
    return {k: v for k, v in record.items() if v not in (None, [], False) or k in ("id", "status")}

