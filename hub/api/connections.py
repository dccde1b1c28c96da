"""Tenant endpoints for connections: OAuth authorize, API-key connect, read, settings, disconnect, actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody

from hub import connections as svc
from hub.api.deps import Db, HubDep, TenantId
from hub.connections import ConnectionOut, connection_out
from hub.errors import NotFound, ValidationFailed
from hub.oauth import start_authorization


class AuthorizeIn(msgspec.Struct, forbid_unknown_fields=True):
    return_url: str
    scopes: list[str] | None = None


class AuthorizeOut(msgspec.Struct):
    authorization_url: str
    state_expires_at: datetime


class CredentialsIn(msgspec.Struct, forbid_unknown_fields=True):
    credentials: dict[str, Any]
    settings: dict[str, Any] | None = None


class ConnectionPatch(msgspec.Struct, forbid_unknown_fields=True):
    settings: dict[str, Any] | None = None
    sync_enabled: bool | None = None
    sync_schedules: dict[str, dict[str, Any]] | None = None
    """Per inbound entity: {"enabled": false} or {"every_seconds": 900}."""


class DisconnectOut(msgspec.Struct):
    connection: ConnectionOut
    revoked_at_provider: bool


class ConnectionController(Controller):
    path = "/v1/connections"
    tags = ["connections"]

    @get("/", summary="The tenant's connections")
    async def list(self, db: Db, tenant_id: TenantId) -> list[ConnectionOut]:
        return [connection_out(c) for c in await svc.list_connections(db, tenant_id)]

    @get("/{provider:str}", summary="One connection")
    async def get(self, db: Db, tenant_id: TenantId, provider: FromPath[str]) -> ConnectionOut:
        return connection_out(await svc.get_connection(db, tenant_id, provider))

    @post("/{provider:str}/authorize", status_code=200, summary="Start an OAuth connect")
    async def authorize(
        self, hub: HubDep, db: Db, tenant_id: TenantId, provider: FromPath[str], data: JSONBody[AuthorizeIn]
    ) -> AuthorizeOut:
        scopes = tuple(data.scopes) if data.scopes else None
        url, expires_at = await start_authorization(hub, db, tenant_id, provider, data.return_url, scopes)
        return AuthorizeOut(authorization_url=url, state_expires_at=expires_at)

    @put("/{provider:str}", summary="Connect with API credentials (checked against the provider first)")
    async def connect(
        self, hub: HubDep, db: Db, tenant_id: TenantId, provider: FromPath[str], data: JSONBody[CredentialsIn]
    ) -> ConnectionOut:
        conn = await svc.connect_with_credentials(hub, db, tenant_id, provider, data.credentials, data.settings)
        return connection_out(conn)

    @patch("/{provider:str}", summary="Change settings or switch syncing on/off")
    async def update(
        self, hub: HubDep, db: Db, tenant_id: TenantId, provider: FromPath[str], data: JSONBody[ConnectionPatch]
    ) -> ConnectionOut:
        conn = await svc.get_connection(db, tenant_id, provider)
        return connection_out(
            await svc.update_connection(hub, db, conn, data.settings, data.sync_enabled, data.sync_schedules)
        )

    @delete("/{provider:str}", status_code=200, summary="Disconnect: revoke, wipe secrets, keep history")
    async def disconnect(self, hub: HubDep, db: Db, tenant_id: TenantId, provider: FromPath[str]) -> DisconnectOut:
        conn = await svc.get_connection(db, tenant_id, provider)
        revoked = await svc.disconnect(hub, db, conn)
        return DisconnectOut(connection=connection_out(conn), revoked_at_provider=revoked)

    @post("/{provider:str}/actions/{action:str}", status_code=200, summary="Run one provider action")
    async def run_action(
        self, hub: HubDep, db: Db, tenant_id: TenantId, provider: FromPath[str], action: FromPath[str],
        data: JSONBody[dict[str, Any]],
    ) -> Response[Any]:
        svc.require_provider(hub, provider)
        spec = hub.registry.actions.get((provider, action))
        if spec is None:
            raise NotFound(f"{provider} has no action {action!r}", code="action_not_found")
        try:
            payload = msgspec.convert(data, spec.input)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(f"invalid input for {action}: {exc}", code="invalid_action_input") from None
        conn = await svc.get_connection(db, tenant_id, provider)
        context = await svc.connection_context(hub, db, conn, pending_ok=spec.pending_ok)
        await db.commit()  # hold no transaction while the provider is called (the plugin opens its own)
        result = await spec.handler(context, payload)
        return Response(msgspec.to_builtins(msgspec.convert(result, spec.output, from_attributes=True)))
