"""Hook implementations only: what Google Calendar brings to the hub."""

from __future__ import annotations

import logging
from datetime import timedelta

from hub import (
    Action,
    EntityMapper,
    InboundSync,
    NotFound,
    OutboundSync,
    ProviderInfo,
    ValidationFailed,
    WebhookVerifier,
    hookimpl,
)
from hub.entities import ScheduleItem
from hub_google_calendar import actions, mappers, webhooks
from hub_google_calendar.auth import GoogleOAuth2
from hub_google_calendar.config import RATE_LIMITS, SLUG, CalendarSettings, Google
from hub_google_calendar.syncs import ENTITY, Inbound, Outbound

log = logging.getLogger("hub_google_calendar")

BATCH_SIZE = 25
READ_EVERY = timedelta(hours=1)
"""The scheduled incremental read: the safety net behind push notifications, and the renewal of the channel."""


@hookimpl
def hub_register_providers(register, config):
    register(ProviderInfo(
        slug=SLUG, title="Google Calendar", category="calendar", auth_kind="oauth2",
        description="Job schedule items onto the crew's Google calendars (created, updated, deleted); events "
                    "moved or cancelled in Google come back as records and calendar.event.* events.",
        scopes=Google.from_environ(config.environ).scopes, settings=CalendarSettings, webhooks=True,
        rate_limits=RATE_LIMITS, docs_url="https://developers.google.com/workspace/calendar/api/v3/reference",
    ))


@hookimpl
def hub_register_auth(register, config):
    register(GoogleOAuth2(Google.from_environ(config.environ)))


@hookimpl
def hub_register_entity_mappers(register):
    register(EntityMapper(provider=SLUG, entity="schedule_item", to_provider=mappers.item_to_event))
    register(EntityMapper(provider=SLUG, entity=ENTITY, from_provider=mappers.event_to_record))


@hookimpl
def hub_register_syncs(register, config):
    google = Google.from_environ(config.environ)
    register(OutboundSync(provider=SLUG, entity="schedule_item", push=Outbound(google), batch_size=BATCH_SIZE))
    register(InboundSync(provider=SLUG, entity=ENTITY, pull=Inbound(google), every=READ_EVERY,
                         schema=mappers.CalendarEvent))


@hookimpl
def hub_register_webhook_verifiers(register, config):
    register(WebhookVerifier(provider=SLUG, verify=webhooks.make_verify(Google.from_environ(config.environ)),
                             parse=webhooks.parse, handle=webhooks.handle, per_connection=True,
                             max_body_bytes=65_536))


@hookimpl
def hub_register_actions(register, config):
    google = Google.from_environ(config.environ)
    register(Action(provider=SLUG, name="create_event", input=ScheduleItem, output=actions.EventOut,
                    handler=actions.create_event,
                    description="Put a schedule item on the calendar (or update its event: the same item twice "
                                "is one event)."))
    register(Action(provider=SLUG, name="update_event", input=ScheduleItem, output=actions.EventOut,
                    handler=actions.update_event,
                    description="Patch the event of a schedule item already on the calendar with what changed."))
    register(Action(provider=SLUG, name="delete_event", input=actions.DeleteEventIn, output=actions.EventOut,
                    handler=actions.make_delete_event(google),
                    description="Delete the event of a schedule item (or an event by its id)."))
    register(Action(provider=SLUG, name="list_calendars", input=actions.NoInput, output=actions.CalendarsOut,
                    handler=actions.make_list_calendars(google),
                    description="The calendars the connected account can see, for the calendar_id setting."))


@hookimpl
async def hub_event(event, context):
    """Auto-sync: the tenant's own ``schedule_item.created`` / ``.updated`` events push that item, and
    ``schedule_item.deleted`` (carrying the item) deletes its event."""
    if event.provider is not None or event.type not in ("schedule_item.created", "schedule_item.updated",
                                                         "schedule_item.deleted"):
        return
    ctx = await context.connection(SLUG)
    if ctx is None or not ctx.settings.auto_sync:
        return
    record = event.data.get("schedule_item", event.data) if isinstance(event.data, dict) else event.data
    deleted = event.type == "schedule_item.deleted"
    if deleted and isinstance(record, dict):
        record = {**record, "sync_to_calendar": False}
    try:
        results = await ctx.push("schedule_item", [record])
    except ValidationFailed as exc:  # the event will not get better on a retry
        if deleted and isinstance(record, dict) and isinstance(record.get("id"), str):
            await _delete_by_id(ctx, context, event, record["id"])  # only the id: delete its event
            return
        log.warning("event %s: not a schedule item Google Calendar can take: %s", event.id, exc.message)
        return
    for result in results.values():
        if result.outcome == "failed":
            log.warning("event %s: Google refused schedule item %s: %s", event.id, result.internal_id, result.error)


async def _delete_by_id(ctx, context, event, item_id: str) -> None:
    delete = actions.make_delete_event(Google.from_environ(context.config.environ))
    try:
        await delete(ctx, actions.DeleteEventIn(schedule_item_id=item_id))
    except NotFound:
        log.info("event %s: schedule item %s has no event to delete", event.id, item_id)
