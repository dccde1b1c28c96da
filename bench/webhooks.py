"""Webhooks, side by side in one run. Subcommands: ``inbound`` (signed provider webhooks received; see
bench/webhooks_inbound.py) and ``outbound`` (the hub delivering to tenants' endpoints).

outbound: N events (``--events``, default 10,000) recorded for a tenant with R endpoints (``--receivers``,
default 10), each subscribed to every event, so each event fans out to R deliveries. The receivers are
local HTTP servers on 127.0.0.1 in a separate process (asyncio, keep-alive, answering 200 at once); the
sender runs in this process, as one worker process runs it (``hub.webhooks.delivery.Sender.serve``). Three
measurements of the same N x R deliveries:

- ours: from the sender's start until every delivery is written ``succeeded``;
- ours + a sleeping receiver: the same, with one more endpoint whose receiver sleeps ``--sleep`` seconds
  (default 10) before answering; timed until the R fast receivers' deliveries are all written;
- ceiling: a bare httpx loop in this process posting the same bodies to the same receivers with the same
  concurrency, nothing else (no database, no signing): what one Python process can push.

Run: ``/work/venv/bin/python bench/webhooks.py outbound`` (``outbound --help`` for the options).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select

from hub.config import Settings
from hub.db.migrate import upgrade_async
from hub.db.models import WebhookDelivery
from hub.events import record_event
from hub.runtime import Hub
from hub.serving import run_loop, tune_interpreter
from hub.tenants import create_tenant
from hub.vault import generate_key
from hub.webhooks.delivery import Sender, payload
from hub.webhooks.endpoints import create_endpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import new_database  # noqa: E402

EVENTS_PER_TRANSACTION = 500

# --------------------------------------------------------------------------------------------------
# The receivers: one process, one asyncio server per port, counting requests per port.

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _Receiver(asyncio.Protocol):
    def __init__(self, index: int, counts, delay: float) -> None:
        self.index, self.counts, self.delay = index, counts, delay
        self.buffer = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            match = re.search(rb"content-length:\s*(\d+)", head)
            total = end + 4 + (int(match[1]) if match else 0)
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._answer)
            else:
                self._answer()

    def _answer(self) -> None:
        self.counts[self.index] += 1
        if not self.transport.is_closing():
            self.transport.write(_RESPONSE)


def _serve_receivers(ports, delays, counts, ready) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = []
        for i, delay in enumerate(delays):
            server = await loop.create_server(lambda i=i, d=delay: _Receiver(i, counts, d), "127.0.0.1", 0)
            ports[i] = server.sockets[0].getsockname()[1]
            servers.append(server)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


class Receivers:
    """Receivers in a child process: ``delays[i]`` seconds before receiver i answers."""

    def __init__(self, delays: list[float]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ports = ctx.Array("i", len(delays), lock=False)
        self.counts = ctx.Array("l", len(delays), lock=False)
        ready = ctx.Event()
        self.process = ctx.Process(target=_serve_receivers, args=(self.ports, delays, self.counts, ready),
                                   daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise SystemExit("the receivers did not start")

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}/hooks"

    def count(self, indexes) -> int:
        return sum(self.counts[i] for i in indexes)

    def close(self) -> None:
        self.process.kill()
        self.process.join()


# --------------------------------------------------------------------------------------------------
# The hub side.


async def setup_tenant(hub: Hub, name: str, urls: list[str], events: int) -> tuple[uuid.UUID, list[uuid.UUID], float]:
    """A tenant, its endpoints (every event), and ``events`` events fanned out. Returns the fan-out's seconds."""
    async with hub.session() as session:
        tenant = await create_tenant(session, name)
    endpoint_ids = []
    async with hub.session(tenant.id) as session:
        for url in urls:
            endpoint, _ = await create_endpoint(hub, session, tenant.id, url=url, event_types=["*"])
            endpoint_ids.append(endpoint.id)
    started = time.perf_counter()
    for first in range(0, events, EVENTS_PER_TRANSACTION):
        async with hub.session(tenant.id) as session:
            for n in range(first, min(events, first + EVENTS_PER_TRANSACTION)):
                await record_event(session, tenant.id, "invoice.paid",
                                   {"invoice": f"INV-{n:06d}", "amount": "1250.00", "currency": "USD"})
    return tenant.id, endpoint_ids, time.perf_counter() - started


async def pending(hub: Hub, endpoint_ids: list[uuid.UUID]) -> int:
    async with hub.session() as session:
        return await session.scalar(select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.endpoint_id.in_(endpoint_ids), WebhookDelivery.status != "succeeded"))


async def run_sender(hub: Hub, endpoint_ids: list[uuid.UUID], receivers: Receivers, fast: range, expected: int,
                     limit: float) -> float:
    """Seconds from the sender's start until every delivery to ``endpoint_ids`` is written succeeded."""
    stop = asyncio.Event()
    before = receivers.count(fast)
    started = time.perf_counter()
    task = asyncio.create_task(Sender(hub).serve(stop))
    try:
        while time.perf_counter() - started < limit:
            if receivers.count(fast) - before >= expected and await pending(hub, endpoint_ids) == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.05 if receivers.count(fast) - before >= expected else 0.25)
        raise SystemExit(f"the deliveries did not finish within {limit:.0f} s")
    finally:
        stop.set()
        await task


async def ceiling(receivers: Receivers, fast: range, bodies: list[bytes], per_endpoint: int) -> float:
    """A bare httpx loop: every body to every fast receiver, ``per_endpoint`` requests in flight to each, one
    client (so one small connection pool) per receiver, as the sender has."""
    limits = httpx.Limits(max_connections=per_endpoint, max_keepalive_connections=per_endpoint)
    clients = [httpx.AsyncClient(limits=limits, trust_env=False, timeout=30) for _ in fast]

    async def one_receiver(client: httpx.AsyncClient, url: str) -> None:
        queue = iter(bodies)

        async def lane() -> None:
            for body in queue:
                response = await client.post(url, content=body, headers={"content-type": "application/json"})
                response.raise_for_status()

        await asyncio.gather(*(lane() for _ in range(per_endpoint)))

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one_receiver(client, receivers.url(i)) for client, i in zip(clients, fast, strict=True)))
        return time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()


async def outbound(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="hub-bench-webhooks-"))
    db = new_database(args.database_url, folder)
    receivers = Receivers([0.0] * args.receivers + [args.sleep])
    fast = range(args.receivers)
    slow = args.receivers
    settings = Settings(home=folder / "home", database_url=db.url, encryption_keys=(generate_key(),),
                        admin_token="bench-admin-token-not-a-secret", allow_private_webhook_urls=True,
                        webhook_timeout_seconds=max(15.0, args.sleep + 5), tick_seconds=0.2)
    hub = Hub.create(settings, entry_points=False)
    try:
        await upgrade_async(hub.engine)
        n = args.events * args.receivers
        print(f"outbound webhooks: {args.events:,} events x {args.receivers} receivers = {n:,} deliveries; "
              f"{'SQLite (file, WAL)' if db.url.startswith('sqlite') else 'PostgreSQL'}; one sender process")

        _, alone_ids, fanout_s = await setup_tenant(hub, "Alone", [receivers.url(i) for i in fast], args.events)
        print(f"  fan-out: {args.events:,} events recorded, {n:,} deliveries queued in {fanout_s:.1f} s "
              f"({args.events / fanout_s:,.0f} events/s, {n / fanout_s:,.0f} deliveries/s)")
        alone_s = await run_sender(hub, alone_ids, receivers, fast, n, args.limit)
        alone = n / alone_s
        print(f"  ours:                          {alone_s:7.1f} s  {alone:8,.0f} deliveries/s")

        urls = [receivers.url(i) for i in fast] + [receivers.url(slow)]
        _, with_ids, _ = await setup_tenant(hub, "Beside a sleeper", urls, args.events)
        with_s = await run_sender(hub, with_ids[:-1], receivers, fast, n, args.limit)
        beside = n / with_s
        slow_done = receivers.count([slow])
        print(f"  ours + a receiver sleeping {args.sleep:g} s: {with_s:5.1f} s  {beside:8,.0f} deliveries/s to the "
              f"other {args.receivers} (the sleeper answered {slow_done} meanwhile)")

        async with hub.session() as session:
            from hub.db.models import Event

            events = (await session.scalars(select(Event).limit(args.events))).all()
        bodies = [payload(e) for e in events]
        bare_s = await ceiling(receivers, fast, bodies, Sender(hub).per_endpoint)
        bare = n / bare_s
        print(f"  ceiling (bare httpx loop):     {bare_s:7.1f} s  {bare:8,.0f} requests/s")
        print()
        print(f"  ratios: with the sleeper / without = {beside / alone:.2f}; ours / ceiling = {alone / bare:.2f}")
        checks = [
            (f"ours >= {args.target:,} deliveries/s per worker process", alone >= args.target),
            ("a sleeping receiver does not lower the others' rate (>= 0.9x)", beside >= 0.9 * alone),
        ]
        print()
        for name, ok in checks:
            print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
        return 0 if all(ok for _, ok in checks) else 1
    finally:
        await hub.aclose()
        receivers.close()
        if db.cleanup:
            db.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("connections must be at least 1")
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    out = commands.add_parser("outbound", help="the hub delivering events to tenants' endpoints")
    out.add_argument("--events", type=int, default=10_000)
    out.add_argument("--receivers", type=int, default=10)
    out.add_argument("--sleep", type=float, default=10.0, help="seconds the sleeping receiver waits per request")
    out.add_argument("--target", type=int, default=1000, help="deliveries per second to pass")
    out.add_argument("--limit", type=float, default=900.0, help="give up a measurement after this many seconds")
    out.add_argument("--database-url", help="PostgreSQL URL instead of SQLite (a scratch schema, dropped after)")
    inbound = commands.add_parser("inbound", help="signed provider webhooks received, against a bare endpoint")
    inbound.add_argument("--requests", type=int, default=5000)
    inbound.add_argument("--warmup", type=int, default=500)
    inbound.add_argument("--concurrency", type=_counts, default=[32, 128],
                         help="keep-alive connections of the load, a comma-separated list: each server is measured "
                              "at each, and the best rate of each is its ceiling (default 32,128)")
    inbound.add_argument("--rounds", type=int, default=2, help="alternating measurements of each server")
    inbound.add_argument("--database-url", help="also run on this PostgreSQL (in a scratch schema)")
    inbound.add_argument("--broker-url", help="a redis:// URL: the hub sends each processing job to it")
    inbound.add_argument("--server", choices=["auto", "h11"], default="auto",
                         help="uvicorn for both: auto (uvloop + httptools, as `hub serve`) or h11 (pure Python)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "inbound":
            from webhooks_inbound import run_inbound

            return run_inbound(args)
        tune_interpreter()
        return run_loop(outbound(args))  # as ``hub worker`` runs its sender
    return 130


if __name__ == "__main__":
    sys.exit(main())
