"""Connections: one per (tenant, provider). Secrets are encrypted with the row's identity and never
leave this module except as a ``ConnectionContext`` for the provider's own code."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth import ApiKeyAuth, OAuth2
from hub.context import ConnectionContext
from hub.db.models import Connection, Tenant, utcnow
from hub.errors import Conflict, HubError, NotConnected, NotFound, ProviderError, ValidationFailed
from hub.ids import new_id
from hub.tokens import store_tokens
from hub.types import AccountInfo, ProviderInfo, RateLimit, TokenSet

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.connections")


class ConnectionOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    provider: str
    status: str
    external_account_id: str | None
    external_account_name: str | None
    metadata: dict[str, Any]
    settings: dict[str, Any]
    sync_enabled: bool
    sync_schedules: dict[str, Any]
    scopes: str | None
    token_expires_at: datetime | None
    last_sync_at: datetime | None
    last_error: str | None
    connected_at: datetime | None
    created_at: datetime
    updated_at: datetime


def connection_out(conn: Connection) -> ConnectionOut:
    return ConnectionOut(
        id=conn.id, provider=conn.provider, status=conn.status, external_account_id=conn.external_account_id,
        external_account_name=conn.external_account_name, metadata=conn.metadata_, settings=conn.settings,
        sync_enabled=conn.sync_enabled, sync_schedules=conn.sync_schedules, scopes=conn.scopes,
        token_expires_at=conn.token_expires_at,
        last_sync_at=conn.last_sync_at, last_error=conn.last_error, connected_at=conn.connected_at,
        created_at=conn.created_at, updated_at=conn.updated_at,
    )


def require_provider(hub: Hub, slug: str) -> ProviderInfo:
    info = hub.registry.provider(slug)
    if info is None:
        raise NotFound(f"no provider {slug!r} is installed", code="provider_not_found")
    return info


def validate_settings(info: ProviderInfo, merged: dict[str, Any]) -> dict[str, Any]:
    if info.settings is None:
        if merged:
            raise ValidationFailed(f"provider {info.slug!r} takes no settings", code="invalid_settings")
        return {}
    try:
        return msgspec.to_builtins(msgspec.convert(merged, info.settings))
    except (msgspec.ValidationError, ValueError) as exc:
        raise ValidationFailed(f"invalid settings: {exc}", code="invalid_settings") from None


async def get_connection(session: AsyncSession, tenant_id: uuid.UUID, provider: str) -> Connection:
    stmt = select(Connection).where(Connection.tenant_id == tenant_id, Connection.provider == provider)
    conn = (await session.scalars(stmt)).first()
    if conn is None:
        raise NotFound(f"no {provider} connection", code="connection_not_found")
    return conn


async def list_connections(session: AsyncSession, tenant_id: uuid.UUID) -> list[Connection]:
    stmt = select(Connection).where(Connection.tenant_id == tenant_id).order_by(Connection.provider)
    return list((await session.scalars(stmt)).all())


async def _connection_row(session: AsyncSession, tenant_id: uuid.UUID, provider: str) -> Connection:
    """The tenant's row for this provider, created if it has none (history and mappings keep its id)."""
    stmt = select(Connection).where(Connection.tenant_id == tenant_id, Connection.provider == provider)
    conn = (await session.scalars(stmt)).first()
    if conn is None:
        conn = Connection(id=new_id(), tenant_id=tenant_id, provider=provider, status="pending",
                          metadata_={}, settings={}, sync_schedules={}, sync_enabled=True)
        session.add(conn)
    return conn


def _mark_connected(conn: Connection, account: AccountInfo) -> None:
    conn.external_account_id = account.id
    conn.external_account_name = account.name
    conn.metadata_ = dict(account.metadata)
    conn.last_error = None
    conn.sync_enabled = True
    apply_account_status(conn, account)


def apply_account_status(conn: Connection, account: AccountInfo) -> None:
    """``connected``, or ``pending`` while the provider account cannot be used yet."""
    if account.pending:
        conn.status = "pending"
    elif conn.status != "connected":
        conn.status = "connected"
        conn.connected_at = utcnow()


async def save_oauth_connection(
    hub: Hub, session: AsyncSession, tenant_id: uuid.UUID, provider: str, tokens: TokenSet, account: AccountInfo
) -> Connection:
    conn = await _connection_row(session, tenant_id, provider)
    conn.credentials_enc = None
    store_tokens(hub, conn, tokens)
    _mark_connected(conn, account)
    await session.flush()
    return conn


async def connect_with_credentials(
    hub: Hub, session: AsyncSession, tenant_id: uuid.UUID, provider: str, raw: dict[str, Any],
    settings: dict[str, Any] | None,
) -> Connection:
    info = require_provider(hub, provider)
    strategy = hub.registry.auth.get(provider)
    if not isinstance(strategy, ApiKeyAuth):
        raise Conflict(f"{provider} connects through OAuth: POST /v1/connections/{provider}/authorize",
                       code="wrong_auth_kind")
    try:
        credentials = msgspec.convert(raw, strategy.fields)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"invalid credentials: {exc}", code="invalid_credentials") from None
    new_settings = validate_settings(info, settings or {}) if settings is not None else None
    try:
        account = await strategy.check_credentials(hub.http, credentials, tenant_id)
    except HubError:
        raise
    except Exception as exc:
        log.warning("%s credential check failed: %s", provider, type(exc).__name__)
        raise ProviderError(f"{provider} could not check the credentials") from None
    conn = await _connection_row(session, tenant_id, provider)
    conn.access_token_enc = conn.refresh_token_enc = None
    conn.token_expires_at = None
    conn.credentials_enc = hub.vault.encrypt(
        msgspec.json.encode(credentials).decode(), tenant_id, conn.id, "credentials"
    )
    if new_settings is not None:
        conn.settings = new_settings
    _mark_connected(conn, account)
    await session.flush()
    return conn


async def update_connection(
    hub: Hub, session: AsyncSession, conn: Connection, settings: dict[str, Any] | None, sync_enabled: bool | None,
    sync_schedules: dict[str, Any] | None = None,
) -> Connection:
    from hub.sync.schedule import validate_schedules

    info = require_provider(hub, conn.provider)
    if settings is not None:
        conn.settings = validate_settings(info, {**conn.settings, **settings})
    if sync_enabled is not None:
        conn.sync_enabled = sync_enabled
    if sync_schedules is not None:
        conn.sync_schedules = {**conn.sync_schedules, **validate_schedules(hub, conn.provider, sync_schedules)}
    await session.flush()
    return conn


async def disconnect(hub: Hub, session: AsyncSession, conn: Connection) -> bool:
    """Revoke at the provider where it can, wipe the secrets, keep the row (its history and mappings).
    Returns whether the provider confirmed the revocation."""
    strategy = hub.registry.auth.get(conn.provider)
    revoked = False
    ctx = await connection_context(hub, session, conn) if conn.status == "connected" else None
    # Hold no transaction while the provider is called (on SQLite it would hold the write lock).
    await session.commit()
    if ctx is not None and strategy is not None:
        try:  # what the plugin set up at the provider goes first, while the grant still works
            await strategy.on_disconnect(ctx)
        except Exception as exc:
            log.warning("connection %s: %s's clean-up at disconnect failed (%s)", conn.id, conn.provider,
                        type(exc).__name__)
    try:
        if isinstance(strategy, OAuth2) and strategy.revoke_url and conn.access_token_enc:
            refresh = conn.refresh_token_enc
            tokens = TokenSet(
                access_token=hub.vault.decrypt(conn.access_token_enc, conn.tenant_id, conn.id, "access_token"),
                refresh_token=hub.vault.decrypt(refresh, conn.tenant_id, conn.id, "refresh_token") if refresh else None,
            )
            await strategy.revoke(hub.http, tokens)
            revoked = True
        elif isinstance(strategy, ApiKeyAuth) and strategy.revoke and conn.credentials_enc:
            raw = hub.vault.decrypt(conn.credentials_enc, conn.tenant_id, conn.id, "credentials")
            await strategy.revoke(hub.http, msgspec.json.decode(raw, type=strategy.fields))
            revoked = True
    except Exception as exc:  # the tenant asked to disconnect: the secrets go whatever the provider says
        log.warning("connection %s: revocation at %s failed (%s)", conn.id, conn.provider, type(exc).__name__)
    conn.access_token_enc = conn.refresh_token_enc = conn.credentials_enc = None
    conn.token_expires_at = None
    conn.status = "disconnected"
    conn.sync_enabled = False
    await session.flush()
    return revoked


def connection_limits(info: ProviderInfo, settings: Any) -> tuple[RateLimit, ...]:
    """The provider's declared limits and those its connection's settings add."""
    if info.connection_rate_limits is None:
        return info.rate_limits
    return info.rate_limits + tuple(info.connection_rate_limits(settings))


async def connection_context(hub: Hub, session: AsyncSession, conn: Connection, *, pending_ok: bool = False
                             ) -> ConnectionContext:
    """The connection for a plugin's code; only a connected one, or also a pending one with ``pending_ok``
    (its webhooks, and the actions that finish the onboarding)."""
    if conn.status != "connected" and not (pending_ok and conn.status == "pending"):
        raise NotConnected(f"the {conn.provider} connection is {conn.status}")
    info = require_provider(hub, conn.provider)
    tenant = await session.get(Tenant, conn.tenant_id)
    settings: Any = conn.settings
    if info.settings is not None:
        settings = msgspec.convert(conn.settings, info.settings)
    return ConnectionContext(
        tenant_id=conn.tenant_id, connection_id=conn.id, provider=conn.provider,
        account_id=conn.external_account_id, account_name=conn.external_account_name,
        metadata=dict(conn.metadata_), settings=settings,
        timezone=(tenant.settings.get("timezone") if tenant else None) or "UTC",
        http=hub.http.for_connection(conn.provider, conn.id, connection_limits(info, settings)),
        log=logging.getLogger(f"hub.provider.{conn.provider}"),
        _hub=hub, _credentials=conn.credentials_enc,
    )

