"""The outbound sync engine against the origin guide's per-record loop, side by side in one run.

Both push the same N client records to the same local provider (a threaded HTTP server on 127.0.0.1
that sleeps ``--latency-ms`` per request, takes batches of at most 30, idempotent by ``requestid``):

- ours: a provider plugin written against the public contract (``OutboundSync`` with ``batch_size=30``,
  one batch request per push), loaded into a real ``Hub``; each scenario is ``start_outbound`` (which
  validates and stores every record) and the run's job executed inline (``hub.jobs.outbox.execute``);
- naive: the guide's loop, sequential, per record: one mapping SELECT; if mapped, GET the customer (for
  its SyncToken) then POST the update; otherwise POST the create then INSERT the mapping (committed).

Scenarios: first sync of N, re-sync of the same N unchanged, re-sync with 1% changed (every 100th
record, so the changes are spread over the run). The naive way at 20 ms a request takes 200 s for a
first sync of 10,000 and twice that for each re-sync, so by default it is measured on ``--naive-sample``
records and scaled linearly to N (``--naive-sample 0`` measures all N).

Memory: the first sync of ours at 10,000 and 100,000 records, each in fresh processes: one that builds
the records and calls ``start_outbound`` (what the API layer holds), one that executes the job (the
engine alone). Peak RSS is ``resource.getrusage().ru_maxrss``.

Run: ``/work/venv/bin/python bench/sync_engine.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlalchemy import Column, MetaData, String, Table, event, insert, select, text

from hub import (
    AccountInfo,
    ApiKeyAuth,
    EntityMapper,
    OutboundSync,
    ProviderError,
    ProviderInfo,
    PushResult,
    hookimpl,
)
from hub.config import Settings
from hub.connections import connect_with_credentials, get_connection
from hub.db.engine import create_engine
from hub.db.migrate import upgrade_async
from hub.db.models import SyncRun
from hub.jobs.outbox import execute
from hub.runtime import Hub
from hub.sync.engine import CHUNK
from hub.sync.service import start_outbound
from hub.tenants import create_tenant
from hub.testing.simulator import Request, Response, Simulator
from hub.vault import generate_key

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import Database, describe, new_database  # noqa: E402

PROVIDER = "benchbooks"
ENTITY = "client"
BATCH = 30
API_KEY = "bench-api-key-not-a-secret"
MEMORY_SIZES = (10_000, 100_000)
CHANGED_EVERY = 100  # 1%: record i changes when i % 100 == 50


# --------------------------------------------------------------------------------------------------
# The provider: a simulator (hub.testing.simulator) with a per-request latency and request counts by kind.


class ProviderState:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.customers: dict[str, dict[str, Any]] = {}
        self.batch_answers: dict[str, dict[str, Any]] = {}
        self.counts: Counter[str] = Counter()
        self.last_id = 0

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)

    def _write(self, customer: dict[str, Any], customer_id: str | None) -> dict[str, Any]:
        """Create (no id) or update; the caller holds the lock."""
        if customer_id is None:
            self.last_id += 1
            customer_id = str(self.last_id)
            token = 0
        else:
            token = int(self.customers[customer_id]["SyncToken"]) + 1
        stored = {**customer, "Id": customer_id, "SyncToken": str(token)}
        self.customers[customer_id] = stored
        return stored

    def batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers = []
        with self.lock:
            for item in items:
                key = item.get("requestid")
                if key and key in self.batch_answers:  # a repeated request gets its first answer
                    answers.append({**self.batch_answers[key], "bId": item["bId"]})
                    continue
                customer = {k: v for k, v in item["Customer"].items() if k not in ("Id", "SyncToken")}
                customer_id = item["Customer"].get("Id")
                if item["operation"] == "update" and customer_id not in self.customers:
                    answer = {"bId": item["bId"], "Fault": {"Error": [{"Message": "Object Not Found"}]}}
                else:
                    answer = {"bId": item["bId"], "Customer": self._write(customer, customer_id)}
                if key:
                    self.batch_answers[key] = answer
                answers.append(answer)
        return answers


class ProviderServer(Simulator):
    """The provider on the kit's simulator base, with keep-alive connections both ways; ``latency`` is the
    base's per-request wait."""

    keep_alive = True

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.state = ProviderState(latency)
        self.latency = latency

    def handle(self, request: Request) -> Response:
        kind = ("batch" if request.path == "/customers/batch" else "create" if request.path == "/customers"
                else "get" if request.method == "GET" else "update")
        match = re.fullmatch(r"/customers/([^/]+)", request.path)
        if request.path not in ("/customers", "/customers/batch") and not match:
            return Response.json({"error": "not_found"}, 404)
        st = self.state
        with st.lock:
            st.counts[kind] += 1
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return Response.json({"error": "invalid_token"}, 401)
        body = request.json() or {}
        if kind == "batch":
            items = body.get("BatchItemRequest", [])
            if len(items) > BATCH:
                return Response.json({"error": f"at most {BATCH} items per batch"}, 400)
            return Response.json({"BatchItemResponse": st.batch(items)})
        if kind == "create":
            with st.lock:
                customer = st._write({k: v for k, v in body.items() if k not in ("Id", "SyncToken")}, None)
            return Response.json({"Customer": customer})
        with st.lock:
            current = st.customers.get(match[1])
            if current is None:
                return Response.json({"Fault": {"Error": [{"Message": "Object Not Found"}]}}, 404)
            if kind == "get":
                return Response.json({"Customer": current})
            if body.get("SyncToken") != current["SyncToken"]:  # as QuickBooks: an update names the version
                return Response.json({"Fault": {"Error": [{"Message": "Stale Object Error"}]}}, 400)
            customer = st._write({k: v for k, v in body.items() if k not in ("Id", "SyncToken")}, match[1])
        return Response.json({"Customer": customer})


# --------------------------------------------------------------------------------------------------
# Records, and the provider payload both ways build from them.


def make_records(n: int, *, changed: bool = False, start: int = 0) -> list[dict[str, Any]]:
    """``n`` clients; with ``changed`` every 100th one (i % 100 == 50) has a new e-mail address."""
    return [
        {
            "id": f"client-{i:07d}",
            "company_name": f"Client {i} LLC",
            "email": f"c{i}.v2@example.com" if changed and i % CHANGED_EVERY == 50 else f"c{i}@example.com",
            "phone": f"+1 555 {i % 10_000:04d}",
            "billing_address": {"street": f"{i} Main St", "city": "Springfield", "state": "IL", "zip": "62701",
                                "country": "US"},
        }
        for i in range(start, start + n)
    ]


def customer_payload(record: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"DisplayName": record["company_name"]}
    if record.get("email"):
        payload["PrimaryEmailAddr"] = {"Address": record["email"]}
    if record.get("phone"):
        payload["PrimaryPhone"] = {"FreeFormNumber": record["phone"]}
    if address := record.get("billing_address"):
        payload["BillAddr"] = {"Line1": address.get("street"), "City": address.get("city"),
                               "CountrySubDivisionCode": address.get("state"), "PostalCode": address.get("zip"),
                               "Country": address.get("country")}
    return payload


# --------------------------------------------------------------------------------------------------
# Ours: a provider plugin on the public contract only, and the engine driven through its services.


class BenchKey(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str


class BenchPlugin:
    """``benchbooks``: API-key auth (checked by nothing remote), a client mapper, batch push of 30."""

    @hookimpl
    def hub_register_providers(self, register):
        register(ProviderInfo(slug=PROVIDER, title="Bench Books", category="accounting", auth_kind="api_key"))

    @hookimpl
    def hub_register_auth(self, register):
        async def check(http, fields: BenchKey) -> AccountInfo:
            return AccountInfo(id="bench-account", name="Bench Account")

        register(ApiKeyAuth(PROVIDER, fields=BenchKey, check=check))

    @hookimpl
    def hub_register_entity_mappers(self, register):
        register(EntityMapper(provider=PROVIDER, entity=ENTITY,
                              to_provider=lambda client, ctx: customer_payload(msgspec.to_builtins(client))))

    @hookimpl
    def hub_register_syncs(self, register, config):
        base = config.environ["BENCH_PROVIDER_URL"]

        async def push(ctx, items):
            key = ctx.credentials(BenchKey).api_key
            body = {"BatchItemRequest": [
                {"bId": str(n), "requestid": item.idempotency_key,
                 "operation": "update" if item.external_id else "create",
                 "Customer": {**ctx.to_provider(ENTITY, item.record),
                              **({"Id": item.external_id} if item.external_id else {})}}
                for n, item in enumerate(items)
            ]}
            response = await ctx.http.request("POST", f"{base}/customers/batch", json=body, idempotent=True,
                                              headers={"Authorization": f"Bearer {key}"})
            if response.status_code != 200:
                raise ProviderError(f"batch failed (HTTP {response.status_code})")
            answers = {a["bId"]: a for a in response.json()["BatchItemResponse"]}
            results = []
            for n, item in enumerate(items):
                answer = answers.get(str(n), {})
                if "Customer" in answer:
                    results.append(PushResult(internal_id=item.internal_id, external_id=answer["Customer"]["Id"],
                                              outcome="updated" if item.external_id else "created"))
                else:
                    error = answer.get("Fault", {}).get("Error", [{}])[0].get("Message", "no answer")
                    results.append(PushResult(internal_id=item.internal_id, outcome="failed", error=error))
            return results

        register(OutboundSync(provider=PROVIDER, entity=ENTITY, push=push, batch_size=BATCH))


def bench_settings(home: Path, database_url: str, provider_url: str, key: str) -> Settings:
    return Settings(home=home, database_url=database_url, encryption_keys=(key,),
                    admin_token="bench-admin-token-0123456789abcdef", environ={"BENCH_PROVIDER_URL": provider_url})


def make_hub(settings: Settings) -> Hub:
    return Hub.create(settings, entry_points=False, extra_plugins=[("bench", BenchPlugin())])


async def setup_connection(hub: Hub) -> uuid.UUID:
    async with hub.session() as session:
        tenant_id = (await create_tenant(session, "Bench Builders")).id
    async with hub.session(tenant_id) as session:
        await connect_with_credentials(hub, session, tenant_id, PROVIDER, {"api_key": API_KEY}, None)
    return tenant_id


async def start_run(hub: Hub, tenant_id: uuid.UUID, records: list[dict[str, Any]]) -> tuple[uuid.UUID, uuid.UUID]:
    async with hub.session(tenant_id) as session:
        conn = await get_connection(session, tenant_id, PROVIDER)
        run = await start_outbound(hub, session, conn, ENTITY, records)
        run_id, job_id = run.id, run.job_id
    return run_id, job_id


async def finished_run(hub: Hub, tenant_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, Any]:
    async with hub.session(tenant_id) as session:
        run = await session.get(SyncRun, run_id)
        return {"status": run.status, "processed": run.processed, "created": run.created, "updated": run.updated,
                "unchanged": run.unchanged, "failed": run.failed, "errors": run.errors[:3]}


# --------------------------------------------------------------------------------------------------
# SQL accounting: statements (not BEGIN), transactions, and time per kind of statement.


PENDING_SELECT = "SELECT sync_run_items"
"""The engine's read of the next chunk of pending items."""


class SqlProfile:
    def __init__(self, engine) -> None:
        self.statements = 0
        self.transactions = 0
        self.durations: dict[str, list[float]] = {}  # kind of statement -> seconds of each call
        self._started: dict[int, float] = {}
        target = engine.sync_engine
        event.listen(target, "before_cursor_execute", self._before)
        event.listen(target, "after_cursor_execute", self._after)
        event.listen(target, "commit", self._commit)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        elapsed = time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        if statement.startswith("BEGIN") or statement.startswith("select set_config"):
            return
        self.statements += 1
        self.durations.setdefault(self.kind(statement, executemany), []).append(elapsed)

    def _commit(self, conn) -> None:
        self.transactions += 1

    @staticmethod
    def kind(statement: str, executemany: bool) -> str:
        words = statement.split()
        upper = [w.upper() for w in words]
        table = "?"
        for marker in ("FROM", "INTO", "UPDATE"):
            if marker in upper and upper.index(marker) + 1 < len(words):
                table = words[upper.index(marker) + 1].strip('"(')
                break
        return f"{upper[0] if upper else '?'} {table}{' (executemany)' if executemany else ''}"

    def mark(self) -> tuple[int, int]:
        return self.statements, self.transactions

    def top(self, n: int = 4) -> list[tuple[str, int, float]]:
        ranked = sorted(self.durations.items(), key=lambda kv: -sum(kv[1]))[:n]
        return [(kind, len(calls), sum(calls)) for kind, calls in ranked]


# --------------------------------------------------------------------------------------------------
# The naive way: the origin guide's loop.

naive_metadata = MetaData()
naive_mappings = Table(
    "bench_naive_mappings", naive_metadata,
    Column("internal_id", String(255), primary_key=True),
    Column("external_id", String(255), nullable=False),
)


async def naive_sync(engine, http: httpx.AsyncClient, records: list[dict[str, Any]]) -> int:
    """Per record: SELECT its mapping; mapped: GET (for the SyncToken) and POST the update; otherwise POST
    the create and INSERT the mapping. Sequential, nothing skipped. Returns the failures."""
    failures = 0
    headers = {"Authorization": f"Bearer {API_KEY}"}
    for record in records:
        async with engine.connect() as conn:
            external_id = (await conn.execute(
                select(naive_mappings.c.external_id).where(naive_mappings.c.internal_id == record["id"])
            )).scalar()
        payload = customer_payload(record)
        if external_id is not None:
            current = await http.get(f"/customers/{external_id}", headers=headers)
            if current.status_code != 200:
                failures += 1
                continue
            token = current.json()["Customer"]["SyncToken"]
            response = await http.post(f"/customers/{external_id}", headers=headers,
                                       json={**payload, "Id": external_id, "SyncToken": token})
            failures += response.status_code != 200
        else:
            response = await http.post("/customers", json=payload, headers=headers)
            if response.status_code != 200:
                failures += 1
                continue
            async with engine.begin() as conn:
                await conn.execute(insert(naive_mappings).values(
                    internal_id=record["id"], external_id=response.json()["Customer"]["Id"]))
    return failures


# --------------------------------------------------------------------------------------------------
# Databases: a fresh SQLite file or a fresh PostgreSQL schema per process group.


# --------------------------------------------------------------------------------------------------
# Memory: fresh processes, each phase's peak measured alone.
#
# Not ru_maxrss: on Linux a child started by subprocess (vfork + exec) inherits the parent's high-water
# mark in ru_maxrss (a child of a 300 MB parent reports 310 MB while its VmHWM is 9 MB). VmHWM in
# /proc/self/status is the process's own peak RSS, and writing 5 to /proc/self/clear_refs resets it, so a
# phase's peak is not hidden under an import-time or earlier peak.


def proc_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kb() -> int:
    return proc_kb("VmRSS")


def peak_kb() -> int:
    return proc_kb("VmHWM")


def reset_peak() -> None:
    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


async def child_start(cfg: dict[str, Any]) -> dict[str, Any]:
    """Set up, build N records (what the API holds after decoding a request body) and start the run, with
    RSS sampled between the steps of ``start_outbound`` (validation, row building, the items' INSERT)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from hub.sync import service

    hub = make_hub(bench_settings(Path(cfg["home"]), cfg["database_url"], cfg["provider_url"], cfg["key"]))
    marks: dict[str, int] = {}
    validate, session_execute = service.validate_records, AsyncSession.execute

    def validate_records(schema, records):
        typed = validate(schema, records)
        marks["validated"] = rss_kb()
        return typed

    async def execute_statement(self, statement, *args, **kwargs):
        table = getattr(getattr(statement, "table", None), "name", None)
        if table != "sync_run_items" or not getattr(statement, "is_insert", False):
            return await session_execute(self, statement, *args, **kwargs)
        marks["rows"], marks["peak_before_insert"] = rss_kb(), peak_kb()
        reset_peak()
        try:
            return await session_execute(self, statement, *args, **kwargs)
        finally:
            marks["insert_peak"] = peak_kb()

    try:
        await upgrade_async(hub.engine)
        tenant_id = await setup_connection(hub)
        reset_peak()
        baseline = rss_kb()
        records = make_records(cfg["n"])
        marks["records"] = rss_kb()
        service.validate_records, AsyncSession.execute = validate_records, execute_statement
        started = time.perf_counter()
        try:
            run_id, job_id = await start_run(hub, tenant_id, records)
        finally:
            service.validate_records, AsyncSession.execute = validate, session_execute
        seconds = time.perf_counter() - started
        peak = max(peak_kb(), marks.get("peak_before_insert", 0), marks.get("insert_peak", 0))
        return {"tenant_id": str(tenant_id), "run_id": str(run_id), "job_id": str(job_id), "baseline_kb": baseline,
                "marks": marks, "peak_kb": peak, "seconds": seconds}
    finally:
        await hub.aclose()


async def child_run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Execute the started run's job: the engine alone, in a process that has done nothing else."""
    import hub.sync.engine  # noqa: F401  (imported before the baseline, as in a worker)

    hub = make_hub(bench_settings(Path(cfg["home"]), cfg["database_url"], cfg["provider_url"], cfg["key"]))
    try:
        profile = SqlProfile(hub.engine)
        async with hub.session() as session:  # connect once, as a worker that has run a job would have
            await session.get(SyncRun, uuid.UUID(cfg["run_id"]))
        reset_peak()
        baseline = rss_kb()
        started = time.perf_counter()
        status = await execute(hub, uuid.UUID(cfg["job_id"]))
        seconds = time.perf_counter() - started
        peak = peak_kb()
        run = await finished_run(hub, uuid.UUID(cfg["tenant_id"]), uuid.UUID(cfg["run_id"]))
        pending = profile.durations.get(PENDING_SELECT, [])
        return {"status": status, "run": run, "baseline_kb": baseline, "peak_kb": peak, "seconds": seconds,
                "sql": profile.top(4), "pending_ms": [round(d * 1000, 2) for d in pending]}
    finally:
        await hub.aclose()


def run_child(mode: str, cfg: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, "--child", mode, json.dumps(cfg)],
                            stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def memory_for(n: int, args: argparse.Namespace, server: ProviderServer, key: str, root: Path) -> dict[str, Any]:
    folder = root / f"memory-{n}"
    folder.mkdir()
    db = new_database(args.database_url, folder)
    try:
        cfg = {"n": n, "home": str(folder), "database_url": db.url, "provider_url": server.url, "key": key}
        before = server.state.snapshot()
        start = run_child("start", cfg)
        run = run_child("run", cfg | start)
        requests = sum((server.state.snapshot() - before).values())
    finally:
        if db.cleanup:
            db.cleanup()
    if run["run"]["created"] != n or run["status"] != "done":
        raise SystemExit(f"memory run at {n}: unexpected outcome {run}")
    return {"n": n, "start": start, "run": run, "requests": requests}


# --------------------------------------------------------------------------------------------------
# The comparison.


@dataclass
class Result:
    seconds: float
    requests: int
    statements: int = 0
    transactions: int = 0
    detail: str = ""


SCENARIOS = ("first sync", "re-sync unchanged", "re-sync 1% changed")


async def run_items_stored(hub: Hub) -> tuple[int, int | None]:
    """Rows in sync_run_items and the bytes they take (table and indexes), where the backend says."""
    async with hub.engine.connect() as conn:
        rows = await conn.scalar(text("SELECT count(*) FROM sync_run_items"))
        try:
            if conn.dialect.name == "postgresql":
                size = await conn.scalar(text("SELECT pg_total_relation_size('sync_run_items')"))
            else:
                size = await conn.scalar(text(
                    "SELECT sum(pgsize) FROM dbstat WHERE name IN "
                    "(SELECT name FROM sqlite_master WHERE tbl_name = 'sync_run_items')"))
        except Exception:  # SQLite built without dbstat
            size = None
    return int(rows or 0), None if size is None else int(size)


async def measure_ours(args: argparse.Namespace, server: ProviderServer, key: str, root: Path,
                       db: Database) -> tuple[dict[str, Result], tuple[int, int | None]]:
    n = args.records
    hub = make_hub(bench_settings(root / "home", db.url, server.url, key))
    results: dict[str, Result] = {}
    try:
        await upgrade_async(hub.engine)
        tenant_id = await setup_connection(hub)
        profile = SqlProfile(hub.engine)
        inputs = {SCENARIOS[0]: make_records(n), SCENARIOS[1]: make_records(n),
                  SCENARIOS[2]: make_records(n, changed=True)}
        expected_changed = sum(1 for i in range(n) if i % CHANGED_EVERY == 50)
        fewest = {SCENARIOS[0]: -(-n // BATCH), SCENARIOS[1]: 0, SCENARIOS[2]: -(-expected_changed // BATCH)}
        expect = {SCENARIOS[0]: {"created": n}, SCENARIOS[1]: {"unchanged": n},
                  SCENARIOS[2]: {"updated": expected_changed, "unchanged": n - expected_changed}}
        for scenario, records in inputs.items():
            before, (stmts, txns) = server.state.snapshot(), profile.mark()
            started = time.perf_counter()
            run_id, job_id = await start_run(hub, tenant_id, records)
            queued = time.perf_counter()
            status = await execute(hub, job_id)
            seconds = time.perf_counter() - started
            requests = server.state.snapshot() - before
            run = await finished_run(hub, tenant_id, run_id)
            wrong = any(run[k] != v for k, v in expect[scenario].items())
            if status != "done" or run["status"] != "completed" or wrong:
                raise SystemExit(f"ours, {scenario}: unexpected outcome {status} {run}")
            results[scenario] = Result(
                seconds, sum(requests.values()), profile.statements - stmts, profile.transactions - txns,
                f"start_outbound {queued - started:.2f} s + job {seconds - (queued - started):.2f} s; "
                f"requests {dict(requests) or 0} (fewest possible in batches of {BATCH}: {fewest[scenario]:,})",
            )
            print(f"  ours   {scenario:<20} {seconds:8.2f} s  {sum(requests.values()):>7,} requests", flush=True)
        stored = await run_items_stored(hub)
    finally:
        await hub.aclose()
    return results, stored


async def measure_naive(
    args: argparse.Namespace, server: ProviderServer, db: Database
) -> tuple[dict[str, Result], int]:
    n = args.records
    k = n if args.naive_sample <= 0 or args.naive_sample >= n else args.naive_sample
    scale = n / k
    engine = create_engine(db.url)
    profile = SqlProfile(engine)
    results: dict[str, Result] = {}
    try:
        async with engine.begin() as conn:
            await conn.run_sync(naive_metadata.drop_all)
            await conn.run_sync(naive_metadata.create_all)
        inputs = {SCENARIOS[0]: make_records(k), SCENARIOS[1]: make_records(k),
                  SCENARIOS[2]: make_records(k, changed=True)}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            for scenario, records in inputs.items():
                before, (stmts, txns) = server.state.snapshot(), profile.mark()
                started = time.perf_counter()
                failures = await naive_sync(engine, http, records)
                seconds = time.perf_counter() - started
                requests = server.state.snapshot() - before
                if failures:
                    raise SystemExit(f"naive, {scenario}: {failures} records failed")
                results[scenario] = Result(
                    seconds * scale, round(sum(requests.values()) * scale), round((profile.statements - stmts) * scale),
                    round((profile.transactions - txns) * scale),
                    f"measured {seconds:.2f} s on {k:,}; requests {dict(requests)}",
                )
                print(f"  naive  {scenario:<20} {seconds:8.2f} s  {sum(requests.values()):>7,} requests"
                      f" (measured on {k:,})", flush=True)
    finally:
        await engine.dispose()
    return results, k


def ratio(naive: float, ours: float) -> str:
    if ours == 0:
        return "inf" if naive else "-"
    value = naive / ours
    return f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x"


def mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


def report(args, db_url: str, ours: dict[str, Result], naive: dict[str, Result], k: int,
           memory: list[dict[str, Any]], stored: tuple[int, int | None]) -> bool:
    n = args.records
    print()
    print(f"sync_engine: {n:,} client records, provider latency {args.latency_ms:g} ms/request, "
          f"batches of {BATCH}, {describe(db_url)}, {os.cpu_count()} CPUs")
    if k < n:
        print(f"NAIVE NUMBERS ARE EXTRAPOLATED: measured on {k:,} records and scaled linearly x{n / k:g} to {n:,} "
              f"(--naive-sample 0 measures all {n:,})")
    else:
        print(f"naive measured on all {n:,} records")
    print()
    head = (f"{'scenario':<20} {'ours s':>8} {'naive s':>9} {'time':>7}   {'ours req':>8} {'naive req':>9} "
            f"{'req':>7}   {'ours SQL/tx':>13} {'naive SQL/tx':>14}")
    print(head)
    print("-" * len(head))
    for scenario in SCENARIOS:
        o, v = ours[scenario], naive[scenario]
        print(f"{scenario:<20} {o.seconds:>8.2f} {v.seconds:>9.1f} {ratio(v.seconds, o.seconds):>7}   "
              f"{o.requests:>8,} {v.requests:>9,} {ratio(v.requests, o.requests):>7}   "
              f"{f'{o.statements:,}/{o.transactions:,}':>13} {f'{v.statements:,}/{v.transactions:,}':>14}")
    print()
    for scenario in SCENARIOS:
        print(f"  ours  {scenario:<20} {ours[scenario].detail}")
    for scenario in SCENARIOS:
        print(f"  naive {scenario:<20} {naive[scenario].detail}")
    rows, size = stored
    print(f"  ours kept {rows:,} sync_run_items rows after the three runs"
          + (f" ({size / 2**20:,.1f} MB with indexes)" if size is not None else "")
          + ("; a finished run's items are not deleted" if rows >= len(SCENARIOS) * n else ""))

    checks = [
        ("re-sync unchanged: 0 provider requests", ours[SCENARIOS[1]].requests == 0),
        ("re-sync unchanged: >= 100x faster than naive",
         naive[SCENARIOS[1]].seconds >= 100 * ours[SCENARIOS[1]].seconds),
        ("first sync: >= 10x faster than naive", naive[SCENARIOS[0]].seconds >= 10 * ours[SCENARIOS[0]].seconds),
    ]
    if memory:
        report_memory(memory, checks)
    print()
    for name, ok in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    return all(ok for _, ok in checks)


def report_memory(memory: list[dict[str, Any]], checks: list[tuple[str, bool]]) -> None:
    print()
    print("memory, ours, first sync, in fresh processes (RSS; peaks are VmHWM, reset before each phase):")
    head = (f"{'records':>9} | {'start: base':>11} {'+records':>9} {'+typed':>8} {'+rows':>8} {'INSERT pk':>10} "
            f"{'peak':>8} {'s':>6} | {'job: base':>9} {'peak':>8} {'growth':>7} {'s':>7} {'requests':>9}")
    print(head)
    print("-" * len(head))
    steps = ("records", "validated", "rows")
    for m in memory:
        s, r = m["start"], m["run"]
        marks, base = s["marks"], s["baseline_kb"]
        cells, previous = [], base
        for step in steps:
            cells.append(f"+{mb(marks[step] - previous)}" if step in marks else "n/a")
            previous = marks.get(step, previous)
        insert_peak = "+" + mb(marks["insert_peak"] - base) if "insert_peak" in marks else "n/a"
        print(f"{m['n']:>9,} | {mb(base):>11} {cells[0]:>9} {cells[1]:>8} {cells[2]:>8} {insert_peak:>10} "
              f"{mb(s['peak_kb']):>8} {s['seconds']:>6.1f} | {mb(r['baseline_kb']):>9} {mb(r['peak_kb']):>8} "
              f"{mb(r['peak_kb'] - r['baseline_kb']):>7} {r['seconds']:>7.1f} {m['requests']:>9,}")
    print("  start: builds the records (+records: the list of dicts a decoded request body is) and calls\n"
          "  start_outbound: +typed after validate_records (the typed copies), +rows when the items' INSERT is\n"
          "  called (their rows: canonical dict and hash per record), INSERT pk: the peak during that one\n"
          "  executemany, above base. job: a fresh process executing the run's job.")
    if len(memory) < 2:
        return
    small, large = memory[0], memory[-1]
    grow = large["n"] / small["n"]
    job_ratio = large["run"]["peak_kb"] / small["run"]["peak_kb"]
    start_ratio = large["start"]["peak_kb"] / small["start"]["peak_kb"]
    per_record = (large["start"]["peak_kb"] - small["start"]["peak_kb"]) / (large["n"] - small["n"]) * 1024
    print(f"  {grow:g}x the records: job peak x{job_ratio:.2f}; start peak x{start_ratio:.2f}, "
          f"~{per_record:,.0f} bytes per record at the peak; "
          f"job time x{large['run']['seconds'] / small['run']['seconds']:.1f}")
    checks.append((f"memory flat in the engine (job peak x{job_ratio:.2f} for {grow:g}x records)", job_ratio < 1.25))
    # The request's own records are input (bounded by the sync body limit): what start_outbound adds on top
    # of them is what must not grow with N.
    own = [m["start"]["peak_kb"] - m["start"]["marks"]["records"] for m in (small, large)]
    print(f"  start_outbound's own memory above the request's records: {mb(own[0])} -> {mb(own[1])} "
          f"for {grow:g}x the records")
    checks.append((f"start_outbound holds no more than a chunk beyond its input ({mb(own[0])} -> {mb(own[1])} "
                   f"for {grow:g}x records)", own[1] < 4 * own[0] and own[1] < 32 * 1024))
    print("  the job's most expensive SQL (calls, total s, ms per call):")
    for m in memory:
        tops = "; ".join(f"{kind}: {calls:,}, {secs:.2f} s, {secs / calls * 1000:.2f} ms"
                         for kind, calls, secs in m["run"]["sql"])
        print(f"    {m['n']:>9,}: {tops}")
    print(f"  its read of the next {CHUNK:,} pending items, per chunk:")
    for m in memory:
        pending = m["run"]["pending_ms"][:-1]  # the last call finds nothing left
        if pending:
            print(f"    {m['n']:>9,}: {len(pending)} chunks: first {pending[0]:.1f} ms, halfway "
                  f"{pending[len(pending) // 2]:.1f} ms, last {pending[-1]:.1f} ms; total {sum(pending) / 1000:.2f} s")


async def main_async(args: argparse.Namespace) -> int:
    key = generate_key()
    root = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    memory: list[dict[str, Any]] = []
    try:
        with ProviderServer(args.latency_ms / 1000) as server:
            db = new_database(args.database_url, root)
            try:
                print(f"ours: {args.records:,} records ...", flush=True)
                ours, stored = await measure_ours(args, server, key, root, db)
                print("naive ...", flush=True)
                naive, k = await measure_naive(args, server, db)
            finally:
                if db.cleanup:
                    db.cleanup()
            if args.memory:
                for n in args.memory_sizes:
                    print(f"memory: first sync of {n:,} in fresh processes ...", flush=True)
                    memory.append(await asyncio.to_thread(memory_for, n, args, server, key, root))
        ok = report(args, db.url, ours, naive, k, memory, stored)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000, help="N records per scenario (default 10,000)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="provider latency per request (default 20)")
    parser.add_argument("--naive-sample", type=int, default=1000,
                        help="measure the naive way on this many records and scale to N (0: all N; default 1000)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL to use instead of SQLite (a scratch schema is created and dropped)")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the peak-RSS runs at 10,000 and 100,000 records")
    parser.add_argument("--memory-sizes", type=lambda s: [int(x) for x in s.split(",")], default=list(MEMORY_SIZES),
                        help="record counts of the memory runs (default 10000,100000)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        mode, cfg = args.child[0], json.loads(args.child[1])
        result = asyncio.run({"start": child_start, "run": child_run}[mode](cfg))
        print(json.dumps(result))
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main_async(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
