"""Inbound provider webhooks (public; verified by the provider's plugin) and the inbox they land in."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl

from litestar import Controller, asgi, get, post
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.handlers import ASGIRouteHandler
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.types import Receive, Scope, Send

from hub.api.deps import Db, TenantId, utc_moment
from hub.errors import InvalidRequest
from hub.webhooks import inbound
from hub.webhooks.inbound import BodyTooLarge
from hub.webhooks.inbox import STATUSES, InboxOut, get_inbox, inbox_out, list_inbox
from hub.webhooks.process import reprocess

Limit = Annotated[int, QueryParameter(ge=1, le=1000)]


WEBHOOKS_PATH = "/v1/webhooks"


def webhook_receiver(max_body_bytes: int) -> ASGIRouteHandler:
    """``POST /v1/webhooks/{provider}`` and ``POST /v1/webhooks/{provider}/{connection_id}``: a provider's
    webhook, verified by its plugin (public: no API key).

    A plain ASGI route under the app's routing, middleware and exception handlers, without the dependency
    injection, signature model and response layers of a Litestar handler: the receiver is the hub's
    hottest path (a provider may send thousands a second), and those layers cost more per webhook than
    verifying, parsing and queueing it. Errors are raised as everywhere else and answered in the one JSON
    error shape."""

    # A mount matches by prefix: no other route may start with "/v1/webhooks" (the endpoints and the inbox
    # are at /v1/webhook-endpoints and /v1/webhook-inbox).
    @asgi(WEBHOOKS_PATH, is_mount=True, copy_scope=False)
    async def receive_webhook(scope: Scope, receive: Receive, send: Send) -> None:
        # Routing left only the rest of the path in the scope, always ending in "/"; the whole path goes
        # back for the server's access log.
        rest = scope["path"]
        scope["path"] = WEBHOOKS_PATH + rest.rstrip("/")
        provider, connection_id, template = _webhook_target(rest)
        scope["path_template"] = template  # the metrics' route label
        if scope["method"] != "POST":
            raise MethodNotAllowedException(headers={"Allow": "POST"})
        body = await _read_body(scope, receive, max_body_bytes)
        query_string = scope["query_string"].decode("latin-1")
        reply = await inbound.receive(
            scope["app"].state.hub, provider, body,
            {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]},
            scope["path"], query_string,  # under HUB_PUBLIC_URL, which holds any prefix a proxy strips
            _first_values(query_string) if query_string else {}, connection_id,
        )
        await send({"type": "http.response.start", "status": reply.status, "headers": [
            (b"content-type", reply.content_type.encode("latin-1")),
            (b"content-length", str(len(reply.body)).encode("latin-1")),
        ]})
        await send({"type": "http.response.body", "body": reply.body})

    return receive_webhook


def _first_values(query_string: str) -> dict[str, str]:
    """The query's parameters, the first value of a repeated one (as Litestar's handlers saw them)."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(name, value)
    return query


def _webhook_target(rest: str) -> tuple[str, uuid.UUID | None, str]:
    """The provider and connection id of ``/{provider}/`` or ``/{provider}/{connection_id}/`` (the ASGI path
    is decoded already), and the route template the metrics label it with."""
    parts = rest.split("/")
    if len(parts) == 3 and parts[0] == "" and parts[1] and parts[2] == "":
        return parts[1], None, f"{WEBHOOKS_PATH}/{{provider}}"
    if len(parts) == 4 and parts[0] == "" and parts[1] and parts[3] == "":
        try:
            return parts[1], uuid.UUID(parts[2]), f"{WEBHOOKS_PATH}/{{provider}}/{{connection_id}}"
        except ValueError:
            pass
    raise NotFoundException()


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    too_large = f"the body is over the {limit} bytes a webhook may have here"
    declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the client went away before sending the whole body", code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(too_large)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
