"""Inbound provider webhooks (public; verified by the provider's plugin) and the inbox they land in."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter

from hub.api.deps import Db, HubDep, TenantId, utc_moment
from hub.errors import InvalidRequest
from hub.webhooks import inbound
from hub.webhooks.inbox import STATUSES, InboxOut, get_inbox, inbox_out, list_inbox
from hub.webhooks.process import reprocess

Limit = Annotated[int, QueryParameter(ge=1, le=1000)]


async def _receive(hub, request: Request, provider: str, connection_id: uuid.UUID | None) -> Response:
    # Read from the ASGI scope, not through ``request.headers``/``url``/``query_params``: each of those
    # builds an object per request (together about 20 of the app's 250 microseconds a webhook).
    scope = request.scope
    query_string = scope.get("query_string", b"").decode("latin-1")
    reply = await inbound.receive(
        hub, provider, await request.body(),
        {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]},
        scope.get("root_path", "") + scope["path"], query_string,
        dict(request.query_params) if query_string else {}, connection_id,
    )
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)


@post("/v1/webhooks/{provider:str}", tags=["webhooks"], status_code=200, security=[],
      summary="A provider's webhook (verified by its plugin; events routed by their account)")
async def receive_webhook(hub: HubDep, request: Request, provider: FromPath[str]) -> Response:
    return await _receive(hub, request, provider, None)


@post("/v1/webhooks/{provider:str}/{connection_id:uuid}", tags=["webhooks"], status_code=200, security=[],
      summary="A provider's webhook for one connection (providers whose secret belongs to the connection)")
async def receive_connection_webhook(hub: HubDep, request: Request, provider: FromPath[str],
                                     connection_id: FromPath[uuid.UUID]) -> Response:
    return await _receive(hub, request, provider, connection_id)


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}", code="invalid_status")


class InboxController(Controller):
    """The calling tenant's inbound webhooks."""

    path = "/v1/webhook-inbox"
    tags = ["webhooks"]

    @get("/", summary="Inbound provider webhooks, newest first")
    async def list(self, db: Db, tenant_id: TenantId, status: FromQuery[str | None] = None,
                   provider: FromQuery[str | None] = None, before: FromQuery[datetime | None] = None,
                   limit: Limit = 50) -> list[InboxOut]:
        check_status(status)
        rows = await list_inbox(db, tenant_id=tenant_id, status=status, provider=provider,
                                before=utc_moment(before, "before"),
                                limit=limit)
        return [inbox_out(r) for r in rows]

    @get("/{inbox_id:uuid}", summary="One inbound webhook with its payload")
    async def get(self, db: Db, tenant_id: TenantId, inbox_id: FromPath[uuid.UUID]) -> InboxOut:
        return inbox_out(await get_inbox(db, inbox_id, tenant_id), full=True)

    @post("/{inbox_id:uuid}/reprocess", status_code=202, summary="Process an inbound webhook again")
    async def reprocess(self, db: Db, tenant_id: TenantId, inbox_id: FromPath[uuid.UUID]) -> InboxOut:
        return inbox_out(await reprocess(db, inbox_id, tenant_id))
