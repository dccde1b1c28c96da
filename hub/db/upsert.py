"""INSERT ... ON CONFLICT DO UPDATE for the backend in use (SQLite and PostgreSQL share the syntax)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def upsert(
    session: AsyncSession, model: type, rows: Sequence[dict[str, Any]], conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    if not rows:
        return
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(model)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(conflict), set_={column: stmt.excluded[column] for column in update}
    )
    await session.execute(stmt, list(rows))
