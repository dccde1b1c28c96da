"""Alembic, driven from code: ``hub migrate`` and the embedded default's start-up call ``upgrade``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: AsyncEngine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Run from a thread with no running event loop (the CLI); see ``upgrade_async`` otherwise."""
    command.upgrade(alembic_config(engine), revision)


async def upgrade_async(engine: AsyncEngine, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, engine, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()  # type: ignore[arg-type]


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
