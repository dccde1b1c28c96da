"""The ``event.observe`` job: one plugin's ``hub_event`` observer, called for one recorded event.
One job per (event, observer), so a failing observer is retried alone and never re-runs the others."""

from __future__ import annotations

import inspect
import uuid
from typing import TYPE_CHECKING

from hub.context import EventContext
from hub.db.models import Event, Job
from hub.types import HubEvent

if TYPE_CHECKING:
    from hub.runtime import Hub


async def observe(hub: Hub, job: Job) -> None:
    impl = hub.registry.observers.get(job.payload["plugin"])
    if impl is None:
        raise LookupError(f"plugin {job.payload['plugin']!r} no longer observes events")
    async with hub.session() as session:
        row = await session.get(Event, uuid.UUID(job.payload["event_id"]))
        if row is None:
            return  # its tenant is gone
        event = HubEvent(id=str(row.id), type=row.type, tenant_id=row.tenant_id, provider=row.provider,
                         data=row.data, occurred_at=row.occurred_at)
    context = EventContext(tenant_id=event.tenant_id, config=hub.settings, _hub=hub)
    arguments = {"event": event, "context": context}
    result = impl.function(*(arguments[name] for name in impl.argnames))
    if inspect.isawaitable(result):
        await result
