"""The tenant's outgoing webhooks: endpoints, their deliveries, and events the tenant publishes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from hub.api.deps import Db, HubDep, TenantId, utc_moment
from hub.errors import InvalidRequest
from hub.events import EventOut, event_out, record_event
from hub.webhooks import endpoints as service
from hub.webhooks.patterns import valid_event_type
from hub.webhooks.schemas import (
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EventIn,
    RecoverOut,
    SecretOut,
    delivery_out,
    endpoint_out,
)

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
EndpointId = FromPath[uuid.UUID]
DeliveryId = FromPath[uuid.UUID]


def _no_nul(value: object) -> None:
    """A NUL character cannot be stored in PostgreSQL's text or JSONB: refuse it on every backend alike."""
    if _has_nul(msgspec.to_builtins(value)):
        raise InvalidRequest("the request holds a NUL character (\\u0000), which cannot be stored",
                             code="invalid_character")


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class WebhookEndpointController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]

    @post("/", status_code=201, summary="Create an endpoint; the response shows its signing secret, once")
    async def create_endpoint(self, hub: HubDep, db: Db, tenant_id: TenantId,
                              data: JSONBody[EndpointIn]) -> EndpointCreated:
        _no_nul(data)
        endpoint, secret = await service.create_endpoint(
            hub, db, tenant_id, url=data.url, event_types=data.event_types, description=data.description,
            enabled=data.enabled)
        out = endpoint_out(endpoint, hub.clock())
        return EndpointCreated(**msgspec.structs.asdict(out), secret=secret)

    @get("/", summary="The tenant's endpoints")
    async def list_endpoints(self, hub: HubDep, db: Db, tenant_id: TenantId) -> list[EndpointOut]:
        now = hub.clock()
        return [endpoint_out(e, now) for e in await service.list_endpoints(db, tenant_id)]

    @get("/{endpoint_id:uuid}", summary="One endpoint")
    async def get_endpoint(self, hub: HubDep, db: Db, tenant_id: TenantId, endpoint_id: EndpointId) -> EndpointOut:
        return endpoint_out(await service.get_endpoint(db, tenant_id, endpoint_id), hub.clock())

    @patch("/{endpoint_id:uuid}", summary="Change the URL, event types, description or enabled")
    async def update_endpoint(self, hub: HubDep, db: Db, tenant_id: TenantId, endpoint_id: EndpointId,
                     data: JSONBody[EndpointPatch]) -> EndpointOut:
        _no_nul(data)
        endpoint = await service.get_endpoint(db, tenant_id, endpoint_id)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        await service.update_endpoint(hub, db, endpoint, changes)
        return endpoint_out(endpoint, hub.clock())

    @delete("/{endpoint_id:uuid}", status_code=204, summary="Delete an endpoint with its pending deliveries and log")
    async def delete_endpoint(self, db: Db, tenant_id: TenantId, endpoint_id: EndpointId) -> None:
        await service.delete_endpoint(db, await service.get_endpoint(db, tenant_id, endpoint_id))

    @post("/{endpoint_id:uuid}/enable", status_code=200, summary="Resume deliveries (the failure count restarts)")
    async def enable_endpoint(self, hub: HubDep, db: Db, tenant_id: TenantId, endpoint_id: EndpointId) -> EndpointOut:
        endpoint = await service.get_endpoint(db, tenant_id, endpoint_id)
        await service.update_endpoint(hub, db, endpoint, {"enabled": True})
        return endpoint_out(endpoint, hub.clock())

    @post("/{endpoint_id:uuid}/disable", status_code=200, summary="Stop deliveries; pending ones end failed")
    async def disable_endpoint(self, hub: HubDep, db: Db, tenant_id: TenantId, endpoint_id: EndpointId) -> EndpointOut:
        endpoint = await service.get_endpoint(db, tenant_id, endpoint_id)
        await service.update_endpoint(hub, db, endpoint, {"enabled": False})
        return endpoint_out(endpoint, hub.clock())

    @post("/{endpoint_id:uuid}/rotate-secret", status_code=200,
          summary="A new signing secret; the previous one also signs for 24 hours")
    async def rotate_secret(self, hub: HubDep, db: Db, tenant_id: TenantId, endpoint_id: EndpointId) -> SecretOut:
        endpoint = await service.get_endpoint(db, tenant_id, endpoint_id)
        secret, until = await service.rotate_secret(hub, db, endpoint)
        return SecretOut(secret=secret, previous_secret_expires_at=until)

    @get("/{endpoint_id:uuid}/deliveries", summary="Deliveries to the endpoint, newest first, with every attempt")
    async def list_deliveries(self, db: Db, tenant_id: TenantId, endpoint_id: EndpointId,
                         status: FromQuery[Literal["pending", "succeeded", "failed"] | None] = None,
                         before: FromQuery[uuid.UUID | None] = None, limit: Limit = 50) -> list[DeliveryOut]:
        endpoint = await service.get_endpoint(db, tenant_id, endpoint_id)
        rows = await service.list_deliveries(db, endpoint, status=status, limit=limit, before=before)
        return [delivery_out(d, attempts) for d, attempts in rows]

    @get("/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}", summary="One delivery with every attempt")
    async def get_delivery(self, db: Db, tenant_id: TenantId, endpoint_id: EndpointId,
                       delivery_id: DeliveryId) -> DeliveryOut:
        endpoint = await service.get_endpoint(db, tenant_id, endpoint_id)
        delivery = await service.get_delivery(db, endpoint, delivery_id)
        return delivery_out(*await service.delivery_with_attempts(db, delivery))

    @post("/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/redeliver", status_code=202,
          summary="Send a finished delivery again now, with a fresh set of attempts")
    async def redeliver(self, hub: HubDep, db: Db, tenant_id: TenantId, endpoint_id: EndpointId,
                        delivery_id: DeliveryId) -> DeliveryOut:
        endpoint = await service.get_endpoint(db, tenant_id, endpoint_id)
        delivery = await service.redeliver(hub, db, endpoint, await service.get_delivery(db, endpoint, delivery_id))
        return delivery_out(*await service.delivery_with_attempts(db, delivery))

    @post("/{endpoint_id:uuid}/recover", status_code=202,
          summary="Send again every delivery that failed since a time (ISO 8601; UTC when no offset)")
    async def recover(self, hub: HubDep, db: Db, tenant_id: TenantId, endpoint_id: EndpointId,
                      since: FromQuery[datetime]) -> RecoverOut:
        endpoint = await service.get_endpoint(db, tenant_id, endpoint_id)
        return RecoverOut(recovered=await service.recover(hub, db, endpoint, utc_moment(since, "since")))


@post("/v1/events", status_code=201, tags=["webhooks"],
      summary="Publish an event of the tenant's own; it is delivered to every matching endpoint")
async def publish_event(db: Db, tenant_id: TenantId, data: JSONBody[EventIn]) -> EventOut:
    if not valid_event_type(data.type):
        raise InvalidRequest("type must be a dotted lowercase name such as invoice.paid", code="invalid_event_type")
    _no_nul(data.data)
    return event_out(await record_event(db, tenant_id, data.type, data.data))
