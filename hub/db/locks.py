"""PostgreSQL advisory locks that say "one process of this hub at a time".

Advisory locks belong to a database, not a schema, so the key is the lock's name hashed with the
current schema: two hubs sharing a database in schemas of their own (staging beside production, or
parallel test runs) do not exclude each other.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_KEY = "hashtextextended(:name || '@' || current_schema(), 0)"
_TRY = text(f"select pg_try_advisory_lock({_KEY})")
_TRY_XACT = text(f"select pg_try_advisory_xact_lock({_KEY})")
_UNLOCK = text(f"select pg_advisory_unlock({_KEY})")


async def try_lock(conn: AsyncConnection | AsyncSession, name: str) -> bool:
    """Held by this connection until ``unlock`` (or until it closes)."""
    return bool(await conn.scalar(_TRY, {"name": name}))


async def try_xact_lock(conn: AsyncConnection | AsyncSession, name: str) -> bool:
    """Held until the current transaction ends."""
    return bool(await conn.scalar(_TRY_XACT, {"name": name}))


async def unlock(conn: AsyncConnection | AsyncSession, name: str) -> None:
    await conn.execute(_UNLOCK, {"name": name})
