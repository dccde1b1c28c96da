"""Storing received webhooks with group commit.

Every webhook must be in the inbox, with its processing job, before the hub answers 2xx. One transaction
per request would make the database's commit the ceiling (and SQLite has one writer at a time), so the
requests of one process share transactions: a request hands its rows to the intake and waits; one
writer task takes everything that is waiting, routes it, inserts it and commits once, then answers them
all. Requests that arrive while a commit is in flight form the next batch, so a lone request waits for
no timer, and a busy hub commits once per batch rather than once per request.

When no batch is in flight, the request that arrives starts one itself, at once, rather than waking the
writer task: that task would run only after every callback already queued on the loop, so a burst of
requests (keep-alive connections answered together come back together) would all join one batch while
the database sat idle, then all wait on it while the loop sat idle. Started at once, the first batch is
small and the loop turns the rest of the burst into the next batch during its commit: the two overlap.

The writer runs each batch's whole transaction in a thread of its own, on a synchronous connection:
one hop from the event loop per batch, not one per statement, so a busy loop (the requests themselves)
does not stretch the transaction.

A batch that fails as a whole is retried request by request, so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection as Connection_
from sqlalchemy import Dialect, Engine, String, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DataError

from hub.counters import NEXT_VALUE
from hub.db.engine import create_blocking_engine, json_text
from hub.db.models import Connection, Job, WebhookInbox
from hub.ids import new_id
from hub.jobs.outbox import describe, job_rows

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.webhooks")

PROCESS_JOB = "webhook.process"
ROUTABLE = ("connected", "pending")
"""Connections a provider's events route to: a pending one hears that its account became usable."""
MAX_ATTEMPTS = 8
EVENTS_PER_JOB = 10
MAX_BATCH_ROWS = 500
"""Rows a batch takes from the waiting requests (one request alone may bring more); also the most a SQLite
statement inserts, fewer where its build binds fewer values."""


class Submission:
    """One request's rows: routed by the writer (unless the URL named the connection)."""

    def __init__(self, provider: str, rows: list[dict[str, Any]], connection: Connection | None,
                 unstorable: Callable[[str], dict[str, Any]] | None) -> None:
        self.provider = provider
        self.rows = rows
        self.connection = connection
        self.unstorable = unstorable
        """Builds the row that keeps the request as ``failed`` when the database refuses its events
        (PostgreSQL takes no NUL character in JSON or text)."""
        self.future: asyncio.Future[set[uuid.UUID]] = asyncio.get_running_loop().create_future()


class _Batch(NamedTuple):
    submissions: list[Submission]
    rejections: Counter[str]
    written: asyncio.Future
    """The thread's transaction: (ids inserted, job ids to send)."""


RETRY_COUNT_SECONDS = 0.5


class Intake:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._waiting: list[Submission] = []
        self._rejections: Counter[str] = Counter()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: Engine | None = None
        self._connection: Connection_ | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._closing = False
        self._current: _Batch | None = None
        """The batch the writer is on (from its start in the thread until every request of it is settled)."""

    async def store(self, provider: str, rows: list[dict[str, Any]], connection: Connection | None,
                    unstorable: Callable[[str], dict[str, Any]] | None = None) -> set[uuid.UUID]:
        """Store the rows (routed, deduplicated) and queue their jobs; returns the ids that were new."""
        submission = Submission(provider, rows, connection, unstorable)
        self._waiting.append(submission)
        self._nudge()
        if self._current is None:
            self._current = self._start()
        return await submission.future

    def count_rejection(self, provider: str) -> None:
        """A refused webhook: counted with the next batch, so a flood of forgeries costs no transaction each."""
        self._rejections[provider] += 1
        self._nudge()

    def _nudge(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop, self._wake, self._current = loop, asyncio.Event(), None
            self._task = loop.create_task(self._write_forever(), name="hub-webhook-intake")
        self._wake.set()

    async def aclose(self) -> None:
        """Write what is waiting, let the writer finish its batch, then release its connection."""
        if self._task is not None and self._loop is asyncio.get_running_loop():
            self._closing = True
            self._wake.set()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task, self._closing = None, False
        thread, engine, self._thread, self._engine = self._thread, self._engine, None, None
        if thread is not None:
            if self._connection is not None:  # closed in the thread that used it, after its last batch
                thread.submit(self._release_connection)
            await asyncio.to_thread(thread.shutdown, True)  # a batch still in a thread finishes first
        if engine is not None:
            engine.dispose()

    async def _write_forever(self) -> None:
        while True:
            if self._current is None and not (self._waiting or self._rejections):
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._current is None:
                self._current = self._start()
            try:
                await self._write_batch(self._current)
            finally:
                self._current = None

    def _start(self) -> _Batch:
        """Take what is waiting and send it to the writer thread."""
        batch: list[Submission] = []
        rows = 0
        while self._waiting and (not batch or rows + len(self._waiting[0].rows) <= MAX_BATCH_ROWS):
            submission = self._waiting.pop(0)
            batch.append(submission)
            rows += len(submission.rows)
        rejections, self._rejections = self._rejections, Counter()
        return _Batch(batch, rejections, self._submit(batch, rejections))

    async def _write_batch(self, current: _Batch) -> None:
        batch, rejections = current.submissions, current.rejections
        try:
            inserted = await self._write(batch, rejections, current.written)
        except Exception as exc:
            if len(batch) == 1 and not rejections:
                await self._write_alone(batch[0], exc)
                return
            log.warning("a batch of %d webhooks failed (%s); writing them one by one", len(batch), describe(exc))
            for submission in batch:
                try:
                    _settle(submission, await self._write([submission], Counter()))
                except Exception as single:
                    await self._write_alone(submission, single)
            try:
                await self._write([], rejections)
            except Exception as counting:
                # Counted with a later batch instead; the pause keeps a database that is down from a busy loop.
                log.warning("could not count %d rejected webhooks yet: %s", sum(rejections.values()),
                            describe(counting))
                if not self._closing:
                    self._rejections.update(rejections)
                    await asyncio.sleep(RETRY_COUNT_SECONDS)
            return
        for submission in batch:
            _settle(submission, inserted)

    async def _write_alone(self, submission: Submission, error: Exception) -> None:
        """A request whose rows the database refused: keep it as a failed row with the reason, if the
        database refused its data (not if it is down)."""
        # A string the driver cannot encode (a lone surrogate, which json.loads makes of "\ud800") is
        # refused data as much as what the database refuses.
        if not isinstance(error, DataError | UnicodeEncodeError) or submission.unstorable is None:
            _settle(submission, error)
            return
        submission.rows = [submission.unstorable(f"the database refused the event: {describe(error)}")]
        log.warning("%s webhook kept as failed: %s", submission.provider, submission.rows[0]["last_error"])
        try:
            _settle(submission, await self._write([submission], Counter()))
        except Exception as again:
            _settle(submission, again)

    def _release_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _submit(self, batch: Sequence[Submission], rejections: Counter[str]) -> asyncio.Future:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-webhook-intake")
        return asyncio.get_running_loop().run_in_executor(
            self._thread, self._write_blocking, batch, rejections, self.hub.dispatch is not None)

    async def _write(self, batch: Sequence[Submission], rejections: Counter[str],
                     written: asyncio.Future | None = None) -> set[uuid.UUID]:
        inserted, job_ids = await (written if written is not None else self._submit(batch, rejections))
        for job_id in job_ids:  # committed: nudge the workers (the relay re-sends any this misses)
            try:
                self.hub.dispatch(job_id)
            except Exception as exc:
                log.warning("could not send job %s to the broker (%s); the relay will", job_id, type(exc).__name__)
        return inserted

    def _write_blocking(self, batch: Sequence[Submission], rejections: Counter[str], dispatching: bool
                        ) -> tuple[set[uuid.UUID], list[uuid.UUID]]:
        if self._engine is None:  # made in the thread, so a request starting a batch never waits for it
            self._engine = create_blocking_engine(self.hub.settings.resolved_database_url, pool_size=1)
        # The writer keeps its connection between batches: checking it out and back in costs a ping and
        # a rollback (two round trips on PostgreSQL) per batch. One that failed is dropped, so the next
        # batch (or the retry of this one, request by request) starts on a fresh connection.
        if self._connection is None:
            self._connection = self._engine.connect()
            if self._connection.dialect.name == "postgresql":
                self._connection = self._connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            return self._write_transaction(self._connection, batch, rejections, dispatching)
        except BaseException:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                connection.close()
            raise

    def _write_transaction(self, conn: Connection_, batch: Sequence[Submission], rejections: Counter[str],
                           dispatching: bool) -> tuple[set[uuid.UUID], list[uuid.UUID]]:
        if conn.dialect.name == "postgresql":
            return self._write_postgres(conn, batch, rejections, dispatching)
        with conn.begin():
            _count_rejections(conn, rejections)
            if not batch:
                return set(), []
            _route(conn, batch)
            rows = [row for submission in batch for row in submission.rows]
            chunks = _job_chunks(rows)
            inserted = _insert_new_sqlite(conn, rows)
            jobs = job_rows(PROCESS_JOB, [
                (job_id, {"inbox_ids": [str(row["id"]) for row in chunk if row["id"] in inserted]}, tenant_id)
                for job_id, tenant_id, chunk in chunks if any(row["id"] in inserted for row in chunk)
            ], max_attempts=MAX_ATTEMPTS, sent=dispatching, moment=self.hub.clock())
            if jobs:
                _JOBS.insert(conn, jobs)
        return inserted, [job["id"] for job in jobs] if dispatching else []

    def _write_postgres(self, conn: Connection_, batch: Sequence[Submission], rejections: Counter[str],
                        dispatching: bool) -> tuple[set[uuid.UUID], list[uuid.UUID]]:
        """Two round trips a batch on a connection in autocommit: the routing query, then one statement
        that inserts the new events and the jobs of those new (atomic, as every single statement is).
        A transaction around them would add its BEGIN and COMMIT round trips, and under READ COMMITTED
        each statement reads its own snapshot anyway."""
        _count_rejections(conn, rejections)
        rejections.clear()  # committed: if the rest fails, the batch's retry must not count them again
        if not batch:
            return set(), []
        _route(conn, batch)
        rows = [row for submission in batch for row in submission.rows]
        chunks = _job_chunks(rows)
        jobs = job_rows(PROCESS_JOB, [(job_id, {}, tenant_id) for job_id, tenant_id, _ in chunks],
                        max_attempts=MAX_ATTEMPTS, sent=dispatching, moment=self.hub.clock())
        inserted: set[uuid.UUID] = set()
        queued: list[uuid.UUID] = []
        for row_id, is_job in conn.exec_driver_sql(_INSERT_NEW_POSTGRES, _as_documents(rows, jobs)):
            (queued.append if is_job else inserted.add)(row_id)
        return inserted, queued if dispatching else []


def _count_rejections(conn: Connection_, rejections: Counter[str]) -> None:
    for provider, n in sorted(rejections.items()):
        conn.execute(NEXT_VALUE, {"name": f"webhooks.rejected:{provider}", "n": n})


def _job_chunks(rows: Sequence[dict[str, Any]]) -> list[tuple[uuid.UUID, uuid.UUID, list[dict[str, Any]]]]:
    """The batch's routed events in jobs of at most ``EVENTS_PER_JOB`` of one tenant each (so a tenant
    sees its jobs): fewer rows to write than a job per event, and still many jobs to run side by side.
    Sets each row's ``job_id``."""
    by_tenant: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "pending":
            by_tenant.setdefault(row["tenant_id"], []).append(row)
    chunks = []
    for tenant_id, tenant_rows in by_tenant.items():
        for start in range(0, len(tenant_rows), EVENTS_PER_JOB):
            chunk, job_id = tenant_rows[start:start + EVENTS_PER_JOB], new_id()
            for row in chunk:
                row["job_id"] = job_id
            chunks.append((job_id, tenant_id, chunk))
    return chunks


def _settle(submission: Submission, outcome: set[uuid.UUID] | BaseException) -> None:
    if submission.future.done():
        return  # its request went away
    if isinstance(outcome, BaseException):
        submission.future.set_exception(outcome)
    else:
        submission.future.set_result({row["id"] for row in submission.rows} & outcome)


def _route(conn: Connection_, batch: Sequence[Submission]) -> None:
    """Each row gets its connection: the URL's, else the connected (or pending: still onboarding)
    connection of its provider with the event's account id (the most recently connected, if several
    tenants connected the same account).
    One query for the whole batch."""
    wanted = {(s.provider, row["account_id"]) for s in batch if s.connection is None
              for row in s.rows if row["account_id"]}
    owners: dict[tuple[str, str], tuple[uuid.UUID, uuid.UUID]] = {}
    if wanted:
        providers, accounts = list({p for p, _ in wanted}), list({a for _, a in wanted})
        if conn.dialect.name == "postgresql":
            found = conn.exec_driver_sql(_OWNERS_POSTGRES, (providers, accounts))
        else:
            found = conn.exec_driver_sql(_OWNERS_SQLITE, (json_text(providers), json_text(accounts)))
        as_id = _CONNECTIONS.result_processor(conn.dialect, "id")
        owners = {(provider, account): (as_id(conn_id), as_id(tenant))
                  for provider, account, conn_id, tenant in found.all()}
    for submission in batch:
        for row in submission.rows:
            if submission.connection is not None:
                row["connection_id"], row["tenant_id"] = submission.connection.id, submission.connection.tenant_id
                continue
            row["connection_id"], row["tenant_id"] = owners.get((submission.provider, row["account_id"] or ""),
                                                                (None, None))
            if row["connection_id"] is None and row["status"] == "pending":
                row["status"], row["job_id"] = "unrouted", None


# The batch's statements go to the driver as they are (``exec_driver_sql``), their values encoded once per
# batch, by the columns' own types (SQLite) or as JSON documents (PostgreSQL): SQLAlchemy's compiled
# statements re-render an expanding IN list or a multi-row VALUES on every execution and process each
# value through several layers, which on a busy hub cost the writer thread more than the database's own
# work did (and held the GIL the event loop needs). The statement texts are fixed (or one per batch size),
# so the drivers' statement caches hold them.

_OWNERS_COLUMNS = "SELECT provider, external_account_id, id, tenant_id FROM connections WHERE status IN ({}) "
_ROUTABLE_SQL = ", ".join(f"'{status}'" for status in ROUTABLE)
_OWNERS_SQLITE = (_OWNERS_COLUMNS.format(_ROUTABLE_SQL)
                  + "AND provider IN (SELECT value FROM json_each(?)) "
                  "AND external_account_id IN (SELECT value FROM json_each(?)) ORDER BY connected_at NULLS FIRST")
_OWNERS_POSTGRES = (_OWNERS_COLUMNS.format(_ROUTABLE_SQL)
                    + "AND provider = ANY(%s) AND external_account_id = ANY(%s) ORDER BY connected_at NULLS FIRST")
"""The connections a provider's events route to, the most recently connected last (it wins); one never
connected (still onboarding) first, so a connected one wins over it on both databases (their default
places of NULL differ)."""


class _Columns:
    """A table's columns as the driver takes them: each value through its column type's bind processor
    (so a row is written exactly as the ORM would write it), one processor list per dialect."""

    def __init__(self, table: Table, names: Sequence[str]) -> None:
        self.table, self.names = table, tuple(names)
        self._encoders: dict[str, list[Callable[[Any], Any] | None]] = {}

    def encoders(self, dialect: Dialect) -> list[Callable[[Any], Any] | None]:
        encoders = self._encoders.get(dialect.name)
        if encoders is None:
            encoders = self._encoders[dialect.name] = [
                self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names]
        return encoders

    def result_processor(self, dialect: Dialect, name: str) -> Callable[[Any], Any]:
        column_type = self.table.c[name].type.dialect_impl(dialect)
        return column_type.result_processor(dialect, None) or (lambda value: value)

    def values(self, dialect: Dialect, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(value if encode is None or value is None else encode(value)
                     for encode, value in zip(self.encoders(dialect), (row[name] for name in self.names),
                                              strict=True))

    def insert(self, conn: Connection_, rows: Sequence[dict[str, Any]]) -> None:
        """SQLite's ``executemany`` (PostgreSQL inserts through ``_INSERT_NEW_POSTGRES``)."""
        markers = ", ".join(["?"] * len(self.names))
        conn.exec_driver_sql(f"INSERT INTO {self.table.name} ({', '.join(self.names)}) VALUES ({markers})",
                             [self.values(conn.dialect, row) for row in rows])


_INBOX_COLUMNS = ("id", "provider", "dedup_key", "event_type", "account_id", "tenant_id", "connection_id", "status",
                  "payload", "body", "last_error", "job_id", "received_at")
_INBOX = _Columns(WebhookInbox.__table__, _INBOX_COLUMNS)
_JOBS = _Columns(Job.__table__, ("id", "tenant_id", "kind", "payload", "status", "attempts", "max_attempts", "run_at",
                                 "sent_at", "created_at", "updated_at"))
_CONNECTIONS = _Columns(Connection.__table__, ("id",))


def _insert_new_sqlite(conn: Connection_, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert the inbox rows a redelivery has not stored already; returns the ids of those inserted.
    As many rows a statement as SQLite binds values (a single webhook may carry more events)."""
    bindable = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = max(1, min(MAX_BATCH_ROWS, bindable // len(_INBOX_COLUMNS)))
    inserted: set[uuid.UUID] = set()
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        values = [value for row in chunk for value in _INBOX.values(conn.dialect, row)]
        if conn.exec_driver_sql(_sqlite_insert_new(len(chunk)), tuple(values)).rowcount == len(chunk):
            inserted.update(row["id"] for row in chunk)
            continue
        # Some were stored already (a redelivery): the new ids that are in the table are the ones inserted.
        ids = _INBOX.encoders(conn.dialect)[0]
        found = conn.exec_driver_sql(_SQLITE_STORED, (json_text([ids(row["id"]) for row in chunk]),)).scalar_one()
        as_id = _INBOX.result_processor(conn.dialect, "id")
        inserted.update(as_id(inbox_id) for inbox_id in json.loads(found))
    return inserted


@functools.lru_cache(maxsize=64)
def _sqlite_insert_new(n: int) -> str:
    """SQLite: one multi-row VALUES statement a batch, without RETURNING: the sqlite3 module releases the
    GIL for each row a statement returns and must take it back from the busy event loop each time, which
    cost more than the insert. How many rows it inserted tells whether any was a redelivery."""
    row = f"({', '.join(['?'] * len(_INBOX_COLUMNS))}, 0)"
    return (f"INSERT INTO webhook_inbox ({', '.join(_INBOX_COLUMNS)}, attempts) VALUES {', '.join([row] * n)} "
            "ON CONFLICT (provider, dedup_key) DO NOTHING")


_SQLITE_STORED = "SELECT json_group_array(id) FROM webhook_inbox WHERE id IN (SELECT value FROM json_each(?))"


def _postgres_insert_new() -> str:
    """PostgreSQL: the batch's events and jobs in one statement, each set as one JSON document
    (``jsonb_to_recordset``): the server parses it in C, where psycopg would build an array literal per
    column in Python (most of the writer's time). One statement text whatever the batch, parsed once and
    then prepared by the server. A job is inserted only if one of its events was new, naming those (as
    ``{"inbox_ids": [...]}``, the payload the SQLite path builds in Python). Returns (id, is a job)."""
    dialect = postgresql.dialect()

    def record(columns: _Columns) -> str:
        def type_of(column) -> str:  # strings as text: a cast to VARCHAR(n) would cut a long value, not refuse it
            return "TEXT" if isinstance(column.type, String) else column.type.compile(dialect=dialect)

        return ", ".join(f"{name} {type_of(columns.table.c[name])}" for name in columns.names)

    event_values = ", ".join("NULLIF(e.payload, 'null')" if name == "payload" else f"e.{name}"
                             for name in _INBOX_COLUMNS)
    job_values = ", ".join("jsonb_build_object('inbox_ids', kept.ids)" if name == "payload" else f"j.{name}"
                           for name in _JOBS.names)
    return (
        f"WITH e AS (SELECT * FROM jsonb_to_recordset(CAST(%(events)s AS JSONB)) AS e({record(_INBOX)}, ord INTEGER)), "
        f"new AS (INSERT INTO webhook_inbox ({', '.join(_INBOX_COLUMNS)}, attempts) SELECT {event_values}, 0 FROM e "
        "ON CONFLICT (provider, dedup_key) DO NOTHING RETURNING id, job_id), "
        f"queued AS (INSERT INTO jobs ({', '.join(_JOBS.names)}) "
        f"SELECT {job_values} FROM jsonb_to_recordset(CAST(%(jobs)s AS JSONB)) AS j({record(_JOBS)}) "
        "JOIN (SELECT new.job_id, jsonb_agg(new.id::text ORDER BY e.ord) AS ids FROM new JOIN e ON e.id = new.id "
        "WHERE new.job_id IS NOT NULL GROUP BY new.job_id) AS kept ON kept.job_id = j.id RETURNING id) "
        "SELECT id, false FROM new UNION ALL SELECT id, true FROM queued"
    )


def _as_documents(rows: Sequence[dict[str, Any]], jobs: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The events carry their place in the batch: a job names its events in the order they arrived."""
    return {"events": json_text([{"ord": index} | {name: row[name] for name in _INBOX_COLUMNS}
                                 for index, row in enumerate(rows)]),
            "jobs": json_text(jobs)}


_INSERT_NEW_POSTGRES = _postgres_insert_new()
