"""Scratch databases for the benchmarks: a fresh SQLite file, or a fresh schema in a PostgreSQL database
that is dropped afterwards (so a bench never touches anything it did not create)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Database:
    url: str
    cleanup: Callable[[], None] | None = None


def new_database(base_url: str | None, folder: Path) -> Database:
    if not base_url:
        return Database(f"sqlite+aiosqlite:///{folder / 'hub.db'}")
    if not base_url.startswith(("postgresql", "postgres")):
        raise SystemExit("--database-url: a PostgreSQL URL (postgresql+psycopg://...); SQLite is the default")
    import psycopg

    plain = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", base_url)
    url = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", base_url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    separator = "&" if "?" in url else "?"
    return Database(f"{url}{separator}options=-csearch_path%3D{schema}", drop)


def describe(url: str) -> str:
    return "SQLite (file, WAL)" if url.startswith("sqlite") else "PostgreSQL (" + url.split("@")[-1].split("?")[0] + ")"
