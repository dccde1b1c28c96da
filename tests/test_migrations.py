"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub.db.migrate import current_revision, head_revision, upgrade_async
from hub.db.models import Base


async def test_migrations_match_the_models(hub):
    async with hub.engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    assert diff == []
    assert await current_revision(hub.engine) == head_revision()


async def test_upgrade_is_idempotent(hub):
    await upgrade_async(hub.engine)
    assert await current_revision(hub.engine) == head_revision()
