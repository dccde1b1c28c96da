"""A usable access token for a connection: the one function plugins (through their context) call.

Refreshes ahead of expiry, single-flight across coroutines (an asyncio lock per connection), processes
and machines (a row lock on the connection, then a re-check), with a rotated refresh token persisted in
the same transaction as the new access token. ``invalid_grant`` marks the connection ``error`` and records a
``connection.error`` event for its tenant.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from hub.auth import OAuth2
from hub.db.models import Connection
from hub.errors import CredentialsRejected, NotConnected
from hub.events import record_event
from hub.metrics import TOKEN_REFRESHES
from hub.types import TokenSet

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.tokens")

REFRESH_BUFFER = timedelta(minutes=5)
_locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()


def _is_fresh(conn: Connection, now: datetime) -> bool:
    return conn.token_expires_at is None or conn.token_expires_at - REFRESH_BUFFER > now


def _usable(conn: Connection | None) -> Connection:
    if conn is None or conn.status != "connected" or conn.access_token_enc is None:
        raise NotConnected("the connection is not connected")
    return conn


def _decrypt(hub: Hub, conn: Connection, field: str) -> str | None:
    value = getattr(conn, f"{field}_enc")
    return None if value is None else hub.vault.decrypt(value, conn.tenant_id, conn.id, field)


def store_tokens(hub: Hub, conn: Connection, tokens: TokenSet) -> None:
    conn.access_token_enc = hub.vault.encrypt(tokens.access_token, conn.tenant_id, conn.id, "access_token")
    if tokens.refresh_token is not None:
        conn.refresh_token_enc = hub.vault.encrypt(tokens.refresh_token, conn.tenant_id, conn.id, "refresh_token")
    conn.token_expires_at = tokens.expires_at
    if tokens.scope:
        conn.scopes = tokens.scope


async def valid_access_token(hub: Hub, connection_id: uuid.UUID) -> str:
    async with hub.session() as session:
        conn = _usable(await session.get(Connection, connection_id))
        if _is_fresh(conn, hub.clock()):
            return _decrypt(hub, conn, "access_token")  # type: ignore[return-value]

    lock = _locks.get(connection_id)
    if lock is None:
        lock = _locks[connection_id] = asyncio.Lock()
    async with lock:
        return await _refresh_locked(hub, connection_id)


async def _refresh_locked(hub: Hub, connection_id: uuid.UUID) -> str:
    async with hub.session() as session:
        # The row lock: FOR UPDATE on PostgreSQL. On SQLite every transaction begins IMMEDIATE
        # (hub.db.engine), which takes the database write lock: as good a lock on one machine.
        stmt = select(Connection).where(Connection.id == connection_id).with_for_update()
        conn = _usable((await session.scalars(stmt.execution_options(populate_existing=True))).first())
        if _is_fresh(conn, hub.clock()):  # another caller refreshed while we waited for the lock
            token = _decrypt(hub, conn, "access_token")
            await session.rollback()
            return token  # type: ignore[return-value]

        strategy = hub.registry.auth.get(conn.provider)
        refresh_token = _decrypt(hub, conn, "refresh_token")
        if not isinstance(strategy, OAuth2) or refresh_token is None:
            await session.rollback()
            raise NotConnected("the access token expired and the connection has no way to refresh it")
        try:
            tokens = await strategy.refresh(hub.http, refresh_token)
        except CredentialsRejected as exc:
            TOKEN_REFRESHES.labels(conn.provider, "rejected").inc()
            conn.status = "error"
            conn.last_error = f"token refresh rejected: {exc.code}"
            # The tenant hears of it (its webhook endpoints, GET /v1/events): it must ask its user to reconnect.
            await record_event(session, conn.tenant_id, "connection.error", {
                "connection_id": str(conn.id), "provider": conn.provider, "status": conn.status,
                "external_account_id": conn.external_account_id, "error_code": exc.code, "last_error": conn.last_error,
            }, provider=conn.provider)
            await session.commit()
            log.warning("connection %s: refresh rejected (%s); marked error", connection_id, exc.code)
            raise NotConnected(
                f"the provider rejected the refresh token ({exc.code}); reconnect", code=exc.code
            ) from None
        except BaseException:
            await session.rollback()
            raise
        store_tokens(hub, conn, tokens)
        conn.last_error = None
        await session.commit()
        TOKEN_REFRESHES.labels(conn.provider, "refreshed").inc()
        log.info("connection %s: access token refreshed", connection_id)
        return tokens.access_token
