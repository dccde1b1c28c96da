"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import msgspec
import sqlalchemy
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def json_text(value) -> str:
    """JSON columns are written with msgspec: a tenth of ``json.dumps``'s time, on every record, event,
    job and webhook the hub stores (a float that is not finite is written as null, as JSON has no NaN).
    What msgspec refuses and ``json.dumps`` takes (a lone surrogate, which ``json.loads`` makes of a
    provider's ``"\\ud800"``; a dict key that is ``True`` or ``None``) is written by ``json.dumps``."""
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, UnicodeEncodeError):
        return json.dumps(value, default=_as_msgspec_writes)


def _as_msgspec_writes(value):
    """The fallback writes ids and moments as msgspec does (the webhook intake sends rows as JSON)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def create_engine(url: str, **kwargs) -> AsyncEngine:
    kwargs.setdefault("json_serializer", json_text)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_transactions(engine.sync_engine)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    _postgres_lock_timeout(engine.sync_engine)
    return engine


def create_blocking_engine(url: str, **kwargs) -> Engine:
    """A synchronous engine on the same database, set up as ``create_engine``'s: for work that runs a
    whole transaction in a thread of its own (one hop from the event loop instead of one per statement)."""
    kwargs.setdefault("json_serializer", json_text)
    if url.startswith("sqlite"):
        engine = sqlalchemy.create_engine(url.replace("+aiosqlite", "", 1), connect_args={"timeout": 30}, **kwargs)
        _sqlite_transactions(engine)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    kwargs.setdefault("pool_pre_ping", True)
    engine = sqlalchemy.create_engine(url, **kwargs)
    _postgres_lock_timeout(engine)
    return engine


def _postgres_lock_timeout(engine: Engine) -> None:
    """A statement waiting on a lock gives up after 30 s (as SQLite's busy timeout does) instead of
    waiting forever behind a transaction that never ends."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute("SET SESSION lock_timeout = '30s'")
        cursor.close()
        dbapi_connection.autocommit = autocommit


def _sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, begin transactions (SQLAlchemy's documented recipe), and
    begin them IMMEDIATE: a transaction that read first and writes later would otherwise fail at once
    with "database is locked" (WAL's busy snapshot, which no busy timeout waits out) whenever another
    connection wrote in between. Transactions are short, so queueing them costs little; SQLite has one
    writer at a time anyway."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
