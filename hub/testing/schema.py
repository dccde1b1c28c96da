"""A migrated database per test, fast: the first test on each backend runs the real migrations (Alembic,
as ``hub migrate`` does) and records the SQL they sent; every later test replays that SQL on its fresh
database, skipping Alembic's per-run loading of every revision script (the larger part of a test's set-up).
``tests/test_migrations.py`` still runs the migrations themselves on every backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db.migrate import upgrade_async

_recorded: dict[str, list[tuple[str, Any]]] = {}
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


async def migrate(engine: AsyncEngine) -> None:
    """Bring a new, empty database to the head revision."""
    dialect = engine.dialect.name
    statements = _recorded.get(dialect)
    if statements is None:
        _recorded[dialect] = await _record(engine)
        return
    async with engine.begin() as conn:
        for statement, parameters in statements:
            await conn.exec_driver_sql(statement, parameters)


async def _record(engine: AsyncEngine) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = []

    def keep(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            sent.append((statement, parameters))  # exec_driver_sql runs a list of parameter sets as executemany

    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    try:
        await upgrade_async(engine)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", keep)
    return sent
