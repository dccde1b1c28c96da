"""A migrated database per test, fast: the first test on each backend runs the real migrations (Alembic,
as ``hub migrate`` does) and records the SQL they sent; every later test replays that SQL on its fresh
database, skipping Alembic's per-run loading of every revision script (the larger part of a test's set-up).
A new SQLite file is not even replayed into: it starts as a copy of the first one, as it was once migrated.
``tests/test_migrations.py`` still runs the migrations themselves on every backend."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db.migrate import upgrade_async

_recorded: dict[str, list[tuple[str, Any]]] = {}
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
_sqlite_template: dict[str, Path] = {}
_template_dir = tempfile.TemporaryDirectory(prefix="hub-schema-")  # removed when the process ends


async def migrate(engine: AsyncEngine) -> None:
    """Bring a new, empty database to the head revision."""
    dialect = engine.dialect.name
    new_file = _new_sqlite_file(engine)
    if new_file is not None and "file" in _sqlite_template:
        shutil.copyfile(_sqlite_template["file"], new_file)
        return
    statements = _recorded.get(dialect)
    if statements is None:
        _recorded[dialect] = await _record(engine)
        if new_file is not None:
            _keep_sqlite_template(new_file)
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


def _new_sqlite_file(engine: AsyncEngine) -> Path | None:
    """The SQLite file the engine would create (None: another backend, memory, or a file already there)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        return None
    path = Path(database)
    return None if path.exists() else path


def _keep_sqlite_template(path: Path) -> None:
    template = Path(_template_dir.name) / "migrated.db"
    with sqlite3.connect(path) as conn:  # a consistent copy in one file, whatever is still in the WAL
        conn.execute("VACUUM INTO ?", (str(template),))
    conn.close()
    _sqlite_template["file"] = template
