"""Monotonic counters handed out in ranges by one upsert (``RETURNING`` works on SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

NEXT_VALUE = text(
    "INSERT INTO counters (name, value) VALUES (:name, :n) "
    "ON CONFLICT (name) DO UPDATE SET value = counters.value + :n RETURNING value"
)


async def reserve(session: AsyncSession, name: str, n: int = 1) -> range:
    """Reserve ``n`` consecutive values of counter ``name``. The row stays locked until the transaction
    ends, so ranges never overlap and follow commit order closely enough for change cursors."""
    last = (await session.execute(NEXT_VALUE, {"name": name, "n": n})).scalar_one()
    return range(last - n + 1, last + 1)
