"""Alembic environment: the engine comes from ``hub.db.migrate`` (config.attributes), never from an ini."""

from __future__ import annotations

import asyncio

from alembic import context

from hub.db.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(engine) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()


def run() -> None:
    engine = context.config.attributes["engine"]
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async(engine))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `hub migrate`")
run()
