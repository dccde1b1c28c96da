"""Inbound webhooks against a bare endpoint, side by side in one run.

A separate load process (this one) posts signed provider webhooks over keep-alive HTTP/1.1 connections
to a server process on 127.0.0.1, first to the hub and then to a bare Litestar app that answers 200 at
the same path, both served by uvicorn with the same settings. The hub verifies each webhook (HMAC-SHA256
over a timestamp and the body, as Stripe signs), parses it, routes it to the tenant's connection, stores
it in the inbox and queues its processing job in one transaction, and answers. Every event has its own
id, so each is stored.

Prints each server's throughput, p50/p99 latency and CPU per request, and the hub's share of the bare
ceiling, for SQLite and (with ``--database-url``) PostgreSQL; then checks that every webhook was stored
and queued. The two servers are measured in alternating rounds (``--rounds``), each on a fresh process,
so a change in what else the machine runs falls on both.

The processing jobs are queued, not run, while the load lasts: with ``--broker-url`` each job is sent to
Redis (what ``hub serve`` does in production, beside ``hub worker`` processes); without it the job rows
wait for the relay. Either way the answer never waits for a handler.

Run: ``python bench/webhooks.py inbound`` (``inbound --help`` for the options).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PROVIDER = "benchpay"
ACCOUNT = "acct_bench"
SECRET = "whsec_bench_not_a_secret"
API_KEY = "bench-key"
ENCRYPTION_KEY = "q0eDJi4JuQkMDdFs3nXgBEpm-bDDdH8xd_IoFhPkW2c"
TARGET_SHARE = 0.5


# --------------------------------------------------------------------------------------------------
# The bench's provider plugin (loaded by the hub server process from this file).

def _plugin():
    import msgspec

    from hub import (
        AccountInfo,
        ApiKeyAuth,
        ProviderInfo,
        Unauthorized,
        VerifiedEvent,
        WebhookVerifier,
        hookimpl,
    )

    class Fields(msgspec.Struct):
        api_key: str

    class Plugin:
        @hookimpl
        def hub_register_providers(self, register):
            register(ProviderInfo(slug=PROVIDER, title="Bench Pay", category="payments", auth_kind="api_key",
                                  webhooks=True))

        @hookimpl
        def hub_register_auth(self, register):
            async def check(http, fields):
                return AccountInfo(id=ACCOUNT, name="Bench account")

            register(ApiKeyAuth(PROVIDER, fields=Fields, check=check))

        @hookimpl
        def hub_register_webhook_verifiers(self, register):
            def verify(request, connection):
                parts = dict(p.split("=", 1) for p in request.headers.get("bench-signature", "").split(",")
                             if "=" in p)
                timestamp, given = parts.get("t", ""), parts.get("v1", "")
                expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body,
                                    hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, given):
                    raise Unauthorized("signature mismatch")
                if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
                    raise Unauthorized("stale")

            def parse(request):
                event = json.loads(request.body)
                return [VerifiedEvent(type=event["type"], payload=event["data"], account_id=event["account"],
                                      event_id=event["id"])]

            async def handle(ctx, event):
                return None

            register(WebhookVerifier(provider=PROVIDER, verify=verify, parse=parse, handle=handle))

    return Plugin()


# --------------------------------------------------------------------------------------------------
# The server process: the hub, or the bare app, under the same uvicorn settings.

SERVERS = {"auto": {}, "h11": {"loop": "asyncio", "http": "h11"}}
"""uvicorn's settings for both servers: ``auto`` is what ``hub serve`` runs (uvloop and httptools, installed
with the hub); ``h11`` is the pure-Python event loop and parser."""


def serve(kind: str, port: int, database_url: str, home: str, broker_url: str | None, server: str) -> None:
    import uvicorn

    from hub.serving import tune_interpreter

    if kind == "bare":
        from litestar import Litestar, Request, Response, post

        @post("/v1/webhooks/{provider:str}", status_code=200,
              signature_namespace={"Request": Request, "Response": Response})
        async def bare(request: Request, provider: str) -> Response:
            await request.body()
            return Response(b'{"received":true}', media_type="application/json")

        app = Litestar([bare], logging_config=None)
    else:
        from hub.api.app import create_app
        from hub.config import Settings
        from hub.jobs.worker import SendOnlyJobs
        from hub.runtime import Hub

        settings = Settings(home=Path(home), database_url=database_url, encryption_keys=(ENCRYPTION_KEY,),
                            admin_token="bench-admin-token-0123456789", plugins=())
        hub = Hub.create(settings, entry_points=False, extra_plugins=[("bench", _plugin())])
        app = create_app(hub, owns_hub=True,
                         background=SendOnlyJobs(broker_url=broker_url) if broker_url else None)
    tune_interpreter()  # as `hub serve` does, for both servers alike
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on", **SERVERS[server])


async def prepare(database_url: str, home: str) -> None:
    """Schema, a tenant and its connection whose account the webhooks name."""
    from hub.config import Settings
    from hub.connections import connect_with_credentials
    from hub.db.migrate import upgrade_async
    from hub.runtime import Hub
    from hub.tenants import create_tenant

    settings = Settings(home=Path(home), database_url=database_url, encryption_keys=(ENCRYPTION_KEY,),
                        admin_token="bench-admin-token-0123456789", plugins=())
    hub = Hub.create(settings, entry_points=False, extra_plugins=[("bench", _plugin())])
    try:
        await upgrade_async(hub.engine)
        async with hub.session() as session:
            tenant = await create_tenant(session, "Bench Builders", None)
        async with hub.session(tenant.id) as session:
            await connect_with_credentials(hub, session, tenant.id, PROVIDER, {"api_key": API_KEY}, None)
    finally:
        await hub.aclose()


async def stored_counts(database_url: str) -> tuple[int, int]:
    """Inbox rows waiting for processing, and how many of them a queued job names."""
    from sqlalchemy import func, select

    from hub.db.engine import create_engine
    from hub.db.models import Job, WebhookInbox

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            inbox = await conn.scalar(select(func.count()).select_from(WebhookInbox)
                                      .where(WebhookInbox.status == "pending"))
            queued = sum(len(payload["inbox_ids"]) for payload in (await conn.scalars(
                select(Job.payload).where(Job.kind == "webhook.process", Job.status == "pending"))).all())
            return inbox, queued
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------------------------------
# The load: raw HTTP/1.1 over keep-alive connections, requests signed before the clock starts, so the
# load process spends almost nothing per request and the server is what is measured.

def signed_requests(n: int, port: int) -> list[bytes]:
    now = str(int(time.time()))
    requests = []
    for _ in range(n):
        body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "payment_intent.succeeded", "account": ACCOUNT,
                           "data": {"id": f"pi_{uuid.uuid4().hex[:16]}", "amount": 12500, "currency": "usd"}}
                          ).encode()
        signature = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        head = (f"POST /v1/webhooks/{PROVIDER} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                f"bench-signature: t={now},v1={signature}\r\n\r\n").encode()
        requests.append(head + body)
    return requests


async def load(port: int, requests: list[bytes], concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    queue = iter(requests)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kind: str, database_url: str, home: str, broker_url: str | None, server: str
                 ) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = [sys.executable, __file__, "_serve", kind, str(port), database_url, home, broker_url or "", server]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the {kind} server failed to start:\n{process.stderr.read()}") from None
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the {kind} server did not start in 30 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU the server process has used (Linux), so the cost per request can be compared
    on a machine whose other work makes the rates move."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind: str, database_url: str, home: str, broker_url: str | None, n: int, warmup: int,
            concurrency: int, server: str) -> dict:
    process, port = start_server(kind, database_url, home, broker_url, server)
    try:
        asyncio.run(load(port, signed_requests(warmup, port), concurrency))
        requests = signed_requests(n, port)
        cpu_before = server_cpu_seconds(process.pid)
        seconds, latencies, statuses = asyncio.run(load(port, requests, concurrency))
        cpu_after = server_cpu_seconds(process.pid)
    finally:
        stop_server(process)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {"n": n, "seconds": seconds, "latencies": latencies, "statuses": statuses, "cpu": cpu}


def summary(results: list[dict]) -> dict:
    """The rounds of one server together: requests over seconds, latency percentiles of every request."""
    latencies = sorted(x for r in results for x in r["latencies"])
    statuses: dict[int, int] = {}
    for r in results:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    n = sum(r["n"] for r in results)
    cpus = [r["cpu"] for r in results]
    return {"rate": n / sum(r["seconds"] for r in results), "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000, "statuses": statuses,
            "cpu_ms": None if None in cpus else sum(cpus) / n * 1000}


def run_backend(label: str, database_url: str, home: str, args) -> bool:
    asyncio.run(prepare(database_url, home))
    levels: list[tuple[int, dict, dict]] = []
    for concurrency in args.concurrency:
        measured: dict[str, list[dict]] = {"hub": [], "bare": []}
        for _ in range(args.rounds):  # alternated, so a change in the machine's load falls on both alike
            for kind in ("hub", "bare"):
                measured[kind].append(measure(kind, database_url, home, args.broker_url if kind == "hub" else None,
                                              args.requests, args.warmup, concurrency, args.server))
        levels.append((concurrency, summary(measured["hub"]), summary(measured["bare"])))
        _print_level(label, args, concurrency, measured, *levels[-1][1:])
    inbox, queued = asyncio.run(stored_counts(database_url))
    hub_ceiling, bare_ceiling = (max(level[index]["rate"] for level in levels) for index in (1, 2))
    share = hub_ceiling / bare_ceiling
    print(f"\n{label}: ceilings (the best rate of each server over {', '.join(map(str, args.concurrency))} "
          f"connections): hub {hub_ceiling:.0f}/s, bare {bare_ceiling:.0f}/s, hub / bare = {share:.2f}")
    expected = len(args.concurrency) * args.rounds * (args.requests + args.warmup)
    print(f"  stored in the inbox: {inbox}, named by a queued processing job: {queued} (expected {expected} each)")
    ok_stored = inbox == expected and queued == expected and all(
        hub["statuses"] == {200: args.rounds * args.requests} for _, hub, _ in levels)
    print(f"  {'PASS' if share >= TARGET_SHARE else 'FAIL'}: hub's ceiling at least {TARGET_SHARE:.0%} of the bare one")
    print(f"  {'PASS' if ok_stored else 'FAIL'}: every webhook answered 200, stored once and queued")
    return share >= TARGET_SHARE and ok_stored


def _print_level(label: str, args, concurrency: int, measured: dict[str, list[dict]], hub: dict, bare: dict) -> None:
    print(f"\n{label}: {args.requests} signed webhooks x {args.rounds} rounds, {concurrency} connections "
          f"(+{args.warmup} warm-up a round), jobs {'sent to Redis' if args.broker_url else 'left for the relay'}, "
          f"uvicorn {args.server}")
    print(f"  {'':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'server CPU ms/req':>18}  statuses")
    for name, result in (("hub", hub), ("bare", bare)):
        cpu = "" if result["cpu_ms"] is None else f"{result['cpu_ms']:.3f}"
        print(f"  {name:6} {result['rate']:9.0f} {result['p50']:8.2f} {result['p99']:8.2f} {cpu:>18}  "
              f"{result['statuses']}")
    rounds = ", ".join(f"{h['n'] / h['seconds']:.0f}/{b['n'] / b['seconds']:.0f}"
                       for h, b in zip(measured["hub"], measured["bare"], strict=True))
    print(f"  each round, hub/bare req/s: {rounds}")
    print(f"  hub / bare at {concurrency} connections = {hub['rate'] / bare['rate']:.2f}")
    if hub["cpu_ms"] and bare["cpu_ms"]:
        print(f"  server CPU per request, bare / hub = {bare['cpu_ms'] / hub['cpu_ms']:.2f} (the share a server "
              "with a core to itself would reach)")


def run_inbound(args) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scratch import describe, new_database

    ok = True
    with tempfile.TemporaryDirectory() as folder:
        backends = [None] + ([args.database_url] if args.database_url else [])
        for index, base in enumerate(backends):
            run_folder = Path(folder, f"run{index}")
            run_folder.mkdir()
            database = new_database(base, run_folder)
            try:
                ok &= run_backend(describe(database.url), database.url, str(run_folder / "home"), args)
            finally:
                if database.cleanup:
                    database.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    # The server process: ``python bench/webhooks_inbound.py _serve KIND PORT DATABASE_URL HOME BROKER_URL SERVER``.
    _, _, kind, port, database_url, home, broker_url, server = sys.argv
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    serve(kind, int(port), database_url, home, broker_url or None, server)
