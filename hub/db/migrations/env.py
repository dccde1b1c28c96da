"""Alembic environment: the connection comes from ``hub.db.migrate`` (config.attributes), never from an ini."""

from __future__ import annotations

from alembic import context

from hub.db.models import Base

target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise SystemExit("migrations run through `hub migrate` (hub.db.migrate.upgrade_async)")
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
