"""Outbound: schedule items to events. A new item is inserted with an event id derived from its idempotency
key, so a repeated insert is Google's 409 ``duplicate`` (then read, and patched if it differs) and never a
second event. An update patches only the fields whose fingerprint changed since the hub last set them (kept
on the mapping); an item no longer marked ``sync_to_calendar`` has its event deleted (the mapping then says
``deleted:<event id>``, and marking it again makes a new event).

Inbound: ``calendar_event`` records. A full read lists every event (cancelled ones too); it ends with
Google's ``nextSyncToken``, from which each read asks only for what changed. A sync token Google no longer
takes (410 GONE) starts a full read over, and since records are kept per event id, nothing is stored twice.
A change made in Google to an event the hub made becomes ``calendar.event.updated`` (or ``.deleted``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from hub import ConnectionContext, InboundRecord, NewEvent, OutboundItem, Page, PushResult
from hub_google_calendar import channels
from hub_google_calendar.client import CalendarApi, CalendarError
from hub_google_calendar.config import Google
from hub_google_calendar.mappers import HUB_ITEM

ENTITY = "calendar_event"
DELETED = "deleted:"
RECORD_FIELD = {"summary": "title"}
"""A Google field's name in the record, where it differs."""
ITEM_FAILURES = frozenset({400, 404, 409, 410, 412})
"""Google refused this item (bad data, gone): the item fails and the run goes on. Anything else (401, 403,
429 or 5xx after the hub's retries) fails the job, which is retried later with the same event ids."""


def _clean(value: Any) -> Any:
    """Without None values, for an insert (a patch keeps them: null clears a field)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def field_hashes(payload: dict[str, Any]) -> dict[str, str]:
    return {name: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
            for name, value in payload.items()}


class Outbound:
    def __init__(self, google: Google) -> None:
        self.google = google

    async def __call__(self, ctx: ConnectionContext, items: Sequence[OutboundItem]) -> list[PushResult]:
        api = CalendarApi(ctx, self.google)
        return list(await asyncio.gather(*(self.push(ctx, api, item) for item in items)))

    async def push(self, ctx: ConnectionContext, api: CalendarApi, item: OutboundItem) -> PushResult:
        try:
            return await self._push(ctx, api, item)
        except CalendarError as exc:
            if exc.http_status not in ITEM_FAILURES:
                raise
            return PushResult(internal_id=item.internal_id, external_id=item.external_id, outcome="failed",
                              error=exc.message)

    async def _push(self, ctx: ConnectionContext, api: CalendarApi, item: OutboundItem) -> PushResult:
        record, send = item.record, ctx.settings.send_updates
        event_id = item.external_id if item.external_id and not item.external_id.startswith(DELETED) else None
        calendar_id = item.metadata.get("calendar_id") if event_id else ctx.settings.calendar_id
        calendar_id = calendar_id or ctx.settings.calendar_id
        if not record.sync_to_calendar:
            if event_id is None:
                return PushResult(internal_id=item.internal_id, external_id=item.external_id, outcome="unchanged")
            try:
                await api.delete(calendar_id, event_id, send)
            except CalendarError as exc:
                if exc.http_status not in (404, 410):  # gone already is what was wanted
                    raise
            return PushResult(internal_id=item.internal_id, external_id=DELETED + event_id, outcome="updated",
                              metadata={"calendar_id": calendar_id})
        payload = ctx.to_provider("schedule_item", record)
        hashes = field_hashes(payload)
        metadata = {"calendar_id": calendar_id, "fields": hashes}
        if event_id is None:
            event = await self._insert(api, calendar_id, item.idempotency_key, payload, send)
            return PushResult(internal_id=item.internal_id, external_id=event["id"], outcome="created",
                              metadata=metadata)
        before = item.metadata.get("fields") or {}
        changed = {name: value for name, value in payload.items() if before.get(name) != hashes[name]}
        if not changed:
            return PushResult(internal_id=item.internal_id, external_id=event_id, outcome="unchanged",
                              metadata=metadata)
        try:
            event = await api.patch(calendar_id, event_id, changed, send)
        except CalendarError as exc:
            if exc.http_status != 404:
                raise
            event = await self._insert(api, calendar_id, item.idempotency_key, payload, send)  # purged in Google
            return PushResult(internal_id=item.internal_id, external_id=event["id"], outcome="created",
                              metadata=metadata)
        if event.get("status") == "cancelled":  # deleted in Google: the hub's update brings it back
            await api.patch(calendar_id, event_id, {"status": "confirmed"}, send)
        return PushResult(internal_id=item.internal_id, external_id=event_id, outcome="updated", metadata=metadata)

    @staticmethod
    async def _insert(api: CalendarApi, calendar_id: str, event_id: str, payload: dict[str, Any],
                      send: str) -> dict[str, Any]:
        """Insert with an id of our own (the idempotency key: 32 hex digits, valid base32hex): a repeat after a
        lost answer is a 409, and the event is then made to match instead of made twice."""
        try:
            return await api.insert(calendar_id, {**_clean(payload), "id": event_id}, send)
        except CalendarError as exc:
            if exc.http_status != 409:
                raise
        return await api.patch(calendar_id, event_id, {**payload, "status": "confirmed"}, send)


class Inbound:
    """Cursor (JSON): ``{"calendar": id, "all": import_all_events, "sync": token}`` between reads, and
    ``"page"`` while a read pages. A cursor of another calendar or another ``all`` starts a full read."""

    def __init__(self, google: Google) -> None:
        self.google = google

    async def __call__(self, ctx: ConnectionContext, cursor: str | None) -> Page:
        api = CalendarApi(ctx, self.google)
        calendar_id = ctx.settings.calendar_id
        everything = ctx.settings.import_all_events
        state = json.loads(cursor) if cursor else {}
        if state.get("calendar") != calendar_id or state.get("all", False) != everything:
            state = {}  # another calendar, or every event wanted now: read it whole
        try:
            body = await api.list(calendar_id, sync_token=state.get("sync"), page_token=state.get("page"))
        except CalendarError as exc:
            if exc.http_status != 410 or not state:
                raise
            ctx.log.info("connection %s: Google expired the sync token; reading the calendar again",
                         ctx.connection_id)
            state = {}
            body = await api.list(calendar_id)
        records = await self.records(ctx, body.get("items") or [])
        if body.get("nextPageToken"):
            following = {"calendar": calendar_id, "all": everything, "sync": state.get("sync"),
                         "page": body["nextPageToken"]}
            return Page(records=records, cursor=json.dumps(following), has_more=True)
        await channels.ensure(ctx, api, self.google, calendar_id)
        return Page(records=records, cursor=json.dumps({"calendar": calendar_id, "all": everything,
                                                        "sync": body["nextSyncToken"]}))

    async def records(self, ctx: ConnectionContext, events: list[dict[str, Any]]) -> list[InboundRecord]:
        ids = [str(e["id"]) for e in events if e.get("id")]
        if not ids:
            return []
        made_by_hub = await ctx.internal_ids("schedule_item", ids)
        held = await ctx.records(ENTITY, ids)
        out = []
        for event in events:
            event_id = str(event.get("id") or "")
            tagged = ((event.get("extendedProperties") or {}).get("private") or {}).get(HUB_ITEM)
            ours = made_by_hub.get(event_id)
            if not (ours or tagged or event_id in held or ctx.settings.import_all_events):
                continue  # someone's own event: not the hub's business unless asked for
            if event.get("status") == "cancelled" and "start" not in event:
                data = {**held.get(event_id, {"id": event_id}), "status": "cancelled"}  # Google sends only the id
            else:
                data = ctx.from_provider(ENTITY, event)
            if ours:
                data["schedule_item_id"] = ours
            out.append(InboundRecord(external_id=event_id, data=data,
                                     change_events=self._changes(event_id, ours, data, held.get(event_id))))
        return out

    @staticmethod
    def _changes(event_id: str, item_id: str | None, data: dict[str, Any], before: dict[str, Any] | None
                 ) -> list[NewEvent]:
        """What happened in Google to an event the hub made, as the tenant hears of it. The hub stores the
        record (and these are recorded) only when it differs from the version held."""
        if item_id is None or before is None:
            return []
        summary = {"event_id": event_id, "schedule_item_id": item_id, "job_id": data.get("job_id"),
                   "title": data.get("title"), "start": data.get("start"), "end": data.get("end"),
                   "all_day": data.get("all_day", False), "status": data["status"]}
        if data["status"] == "cancelled":
            return [] if before.get("status") == "cancelled" else [NewEvent(type="calendar.event.deleted",
                                                                             data=summary)]
        changed = data.get("changed_in_google") or []
        restored = before.get("status") == "cancelled"
        if not changed and not restored:
            return []  # as the hub left it
        news = [f for f in changed if data.get(RECORD_FIELD.get(f, f)) != before.get(RECORD_FIELD.get(f, f))]
        if not restored and not news and changed == (before.get("changed_in_google") or []):
            return []  # nothing new from Google: the hub's own write, read back
        return [NewEvent(type="calendar.event.updated", data=summary | {"changed": changed})]
