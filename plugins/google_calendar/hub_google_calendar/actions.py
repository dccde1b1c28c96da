"""Actions: one Google Calendar operation each, behind ``POST /v1/connections/google_calendar/actions/{name}``.
Creating and updating go through the outbound sync (``ctx.push``), so the item's mapping is kept exactly as a
sync run keeps it and an unchanged item makes no call."""

from __future__ import annotations

import msgspec

from hub import ConnectionContext, InvalidRequest, NotFound, ValidationFailed
from hub.entities import ScheduleItem
from hub_google_calendar.client import CalendarApi, CalendarError
from hub_google_calendar.config import Google
from hub_google_calendar.syncs import DELETED


class EventOut(msgspec.Struct, kw_only=True):
    schedule_item_id: str
    event_id: str | None
    outcome: str
    """``created``, ``updated``, ``unchanged`` (nothing to send), or ``deleted``."""


class DeleteEventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    schedule_item_id: str | None = None
    """The hub's schedule item whose event to delete; or:"""
    event_id: str | None = None
    calendar_id: str | None = None
    """Where the event is (default: the connection's calendar)."""

    def __post_init__(self) -> None:
        if (self.schedule_item_id is None) == (self.event_id is None):
            raise ValueError("give schedule_item_id or event_id")


class NoInput(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CalendarOut(msgspec.Struct, kw_only=True):
    id: str
    summary: str | None = None
    primary: bool = False
    access_role: str | None = None
    time_zone: str | None = None


class CalendarsOut(msgspec.Struct, kw_only=True):
    calendars: list[CalendarOut]


def _out(item_id: str, result) -> EventOut:
    if result.outcome == "failed":  # Google refused this item (bad data, gone): the tenant's to fix
        raise ValidationFailed(f"Google Calendar refused the event: {result.error}", code="event_refused")
    event_id = result.external_id
    if event_id and event_id.startswith(DELETED):
        return EventOut(schedule_item_id=item_id, event_id=event_id[len(DELETED):], outcome="deleted")
    return EventOut(schedule_item_id=item_id, event_id=event_id, outcome=result.outcome)


async def create_event(ctx: ConnectionContext, item: ScheduleItem) -> EventOut:
    return _out(item.id, (await ctx.push("schedule_item", [item]))[item.id])


async def update_event(ctx: ConnectionContext, item: ScheduleItem) -> EventOut:
    mapped = (await ctx.external_ids("schedule_item", [item.id])).get(item.id)
    if mapped is None or mapped.startswith(DELETED):
        raise NotFound(f"schedule item {item.id!r} has no event in Google Calendar", code="event_not_found")
    return _out(item.id, (await ctx.push("schedule_item", [item]))[item.id])


def make_delete_event(google: Google):
    async def delete_event(ctx: ConnectionContext, data: DeleteEventIn) -> EventOut:
        event_id = data.event_id
        if data.schedule_item_id is not None:
            event_id = (await ctx.external_ids("schedule_item", [data.schedule_item_id])).get(data.schedule_item_id)
            if event_id is None or event_id.startswith(DELETED):
                raise NotFound(f"schedule item {data.schedule_item_id!r} has no event in Google Calendar",
                               code="event_not_found")
        try:
            await CalendarApi(ctx, google).delete(data.calendar_id or ctx.settings.calendar_id, event_id,
                                                  ctx.settings.send_updates)
        except CalendarError as exc:
            if exc.http_status == 404:
                raise NotFound(f"Google Calendar has no event {event_id!r}", code="event_not_found") from None
            if exc.http_status == 410:
                raise NotFound(f"event {event_id!r} was already deleted", code="event_not_found") from None
            if exc.http_status == 400:
                raise InvalidRequest(exc.message, code="invalid_event_id") from None
            raise
        return EventOut(schedule_item_id=data.schedule_item_id or "", event_id=event_id, outcome="deleted")

    return delete_event


def make_list_calendars(google: Google):
    async def list_calendars(ctx: ConnectionContext, data: NoInput) -> CalendarsOut:
        entries = await CalendarApi(ctx, google).calendars()
        return CalendarsOut(calendars=[
            CalendarOut(id=e["id"], summary=e.get("summary"), primary=bool(e.get("primary")),
                        access_role=e.get("accessRole"), time_zone=e.get("timeZone"))
            for e in entries])

    return list_calendars
