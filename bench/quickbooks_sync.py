"""QuickBooks client sync: the hub with the hub-quickbooks plugin against the origin guide's loop, side by side
in one run, each against its own QuickBooks simulator on 127.0.0.1 that enforces QuickBooks' limits (500
requests a minute, 10 at once, 40 batch requests a minute per company; beyond them, 429) with ``--latency-ms``
on every request.

- ours: a real ``Hub`` with the plugin, connected through Intuit's OAuth at the simulator; each scenario is
  ``start_outbound`` (validation, the run and its items stored) and the run's job executed inline
  (``hub.jobs.outbox.execute``): batches of 30 with ``requestid``, updates with the SyncToken kept on the
  mapping, the hub's throttle holding the declared limits;
- naive: the guide's ``syncClients`` loop, sequential, per client: a mapping SELECT; if mapped, GET the
  customer (for its SyncToken) and POST the update; otherwise POST the create and INSERT the mapping. The
  guide's loop fails a client on a 429; here it waits a second and retries so it finishes (each 429 counted).

Scenarios: first sync of N clients, re-sync of the same N unchanged, re-sync with 1% changed (every 100th).
The naive way is measured on ``--naive-sample`` clients and scaled to N: its requests exactly (they are per
client), its wall time as the larger of the sample's time scaled and the minutes QuickBooks' 500 requests a
minute need for that many requests (the k-th cannot start before minute (k - 1) // 500): a lower bound, in the
naive way's favour.

Run: ``python bench/quickbooks_sync.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Column, MetaData, String, Table, insert, select

import hub_quickbooks.plugin
from hub.config import Settings
from hub.connections import get_connection
from hub.db.engine import create_engine
from hub.db.migrate import upgrade_async
from hub.db.models import SyncRun
from hub.jobs.outbox import execute
from hub.oauth import complete_callback, start_authorization
from hub.runtime import Hub
from hub.sync.service import start_outbound
from hub.tenants import create_tenant
from hub.vault import generate_key
from hub_quickbooks.simulator import CLIENT_ID, CLIENT_SECRET, REALM_ID, VERIFIER_TOKEN, QuickBooksSimulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import describe, new_database  # noqa: E402

PER_MINUTE = 500
CHANGED_EVERY = 100
SCENARIOS = ("first sync", "unchanged re-sync", "1% changed")


def make_records(n: int, *, changed: bool = False) -> list[dict[str, Any]]:
    return [
        {"id": f"client-{i:06d}", "company_name": f"Client {i} LLC",
         "email": f"c{i}.v2@example.com" if changed and i % CHANGED_EVERY == 50 else f"c{i}@example.com",
         "phone": f"+1 555 {i % 10_000:04d}",
         "billing_address": {"street": f"{i} Main St", "city": "Austin", "state": "TX", "zip": "78701"}}
        for i in range(n)
    ]


@dataclass
class Measured:
    seconds: float
    requests: int
    throttled: int
    clients: int
    outcome: str
    gave_up: bool = False


def simulator(latency: float) -> QuickBooksSimulator:
    qbo = QuickBooksSimulator()
    qbo.state.latency = latency  # the limits are QuickBooks' own by default: 500/min, 10 at once, 40 batches/min
    return qbo


def counts(qbo: QuickBooksSimulator) -> tuple[int, int]:
    with qbo.state.lock:
        return len(qbo.state.requests), qbo.state.throttled


# -- ours -------------------------------------------------------------------------------------------------

async def connect_hub(hub: Hub, qbo: QuickBooksSimulator) -> uuid.UUID:
    async with hub.session() as session:
        tenant_id = (await create_tenant(session, "Bench Builders")).id
    async with hub.session(tenant_id) as session:
        url, _ = await start_authorization(hub, session, tenant_id, "quickbooks", "http://127.0.0.1:9/done", None)
    async with httpx.AsyncClient() as http:
        consent = await http.get(url, follow_redirects=False)
    await complete_callback(hub, dict(httpx.URL(consent.headers["location"]).params))
    async with hub.session(tenant_id) as session:
        conn = await get_connection(session, tenant_id, "quickbooks")
        assert conn.status == "connected" and conn.external_account_id == REALM_ID, conn.status
    return tenant_id


async def ours(hub: Hub, qbo: QuickBooksSimulator, tenant_id: uuid.UUID, records: list[dict[str, Any]],
               limit: float) -> Measured:
    before = counts(qbo)
    started = time.perf_counter()
    async with hub.session(tenant_id) as session:
        run = await start_outbound(hub, session, await get_connection(session, tenant_id, "quickbooks"), "client",
                                   records)
        run_id, job_id = run.id, run.job_id
    gave_up = False
    try:
        await asyncio.wait_for(execute(hub, job_id), limit)
    except TimeoutError:
        gave_up = True
    seconds = time.perf_counter() - started
    after = counts(qbo)
    async with hub.session(tenant_id) as session:
        run = await session.get(SyncRun, run_id)
        outcome = (f"{run.status}: {run.created} created, {run.updated} updated, {run.unchanged} unchanged, "
                   f"{run.failed} failed")
    return Measured(seconds, after[0] - before[0], after[1] - before[1], len(records), outcome, gave_up)


# -- naive: the origin guide's loop -------------------------------------------------------------------------

naive_mappings = Table("naive_mappings", MetaData(), Column("internal_id", String(64), primary_key=True),
                       Column("external_id", String(64), nullable=False))


def customer(record: dict[str, Any]) -> dict[str, Any]:
    address = record["billing_address"]
    return {"DisplayName": record["company_name"], "PrimaryEmailAddr": {"Address": record["email"]},
            "PrimaryPhone": {"FreeFormNumber": record["phone"]},
            "BillAddr": {"Line1": address["street"], "City": address["city"],
                         "CountrySubDivisionCode": address["state"], "PostalCode": address["zip"]}}


async def naive_token(qbo: QuickBooksSimulator) -> str:
    redirect = "http://127.0.0.1:9/cb"
    async with httpx.AsyncClient() as http:
        consent = await http.get(f"{qbo.url}/connect/oauth2", params={
            "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect, "state": "s",
            "scope": "com.intuit.quickbooks.accounting"})
        code = httpx.URL(consent.headers["location"]).params["code"]
        tokens = await http.post(f"{qbo.url}/oauth2/v1/tokens/bearer", auth=(CLIENT_ID, CLIENT_SECRET),
                                 data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect})
    return tokens.json()["access_token"]


async def naive(engine, qbo: QuickBooksSimulator, token: str, records: list[dict[str, Any]],
                limit: float) -> Measured:
    base = f"{qbo.url}/v3/company/{REALM_ID}"
    before = counts(qbo)
    done = failed = 0
    started = time.perf_counter()

    async def request(http: httpx.AsyncClient, method: str, path: str, body: Any = None) -> dict[str, Any]:
        while True:
            response = await http.request(method, f"{base}{path}", json=body, params={"minorversion": "75"})
            if response.status_code != 429:
                break
            await asyncio.sleep(1.0)
        if response.status_code >= 400:
            raise RuntimeError(response.text[:200])
        return response.json()

    async def loop() -> None:
        nonlocal done, failed
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                                     timeout=60) as http:
            for record in records:
                try:
                    async with engine.connect() as conn:
                        external_id = (await conn.execute(select(naive_mappings.c.external_id).where(
                            naive_mappings.c.internal_id == record["id"]))).scalar()
                    if external_id:
                        existing = await request(http, "GET", f"/customer/{external_id}")
                        await request(http, "POST", "/customer", {**customer(record), "Id": external_id,
                                                                  "SyncToken": existing["Customer"]["SyncToken"]})
                    else:
                        created = await request(http, "POST", "/customer", customer(record))
                        async with engine.begin() as conn:
                            await conn.execute(insert(naive_mappings).values(
                                internal_id=record["id"], external_id=created["Customer"]["Id"]))
                except RuntimeError:
                    failed += 1
                done += 1

    gave_up = False
    try:
        await asyncio.wait_for(loop(), limit)
    except TimeoutError:
        gave_up = True
    after = counts(qbo)
    return Measured(time.perf_counter() - started, after[0] - before[0], after[1] - before[1], done,
                    f"{done - failed} synced, {failed} failed", gave_up)


# -- the run --------------------------------------------------------------------------------------------------

async def main(args: argparse.Namespace) -> int:
    n, sample = args.records, min(args.naive_sample or args.records, args.records)
    latency, limit = args.latency_ms / 1000, args.limit
    folder = Path(tempfile.mkdtemp(prefix="bench-qbo-"))
    database = new_database(args.database_url, folder)
    print(f"QuickBooks client sync: {n:,} clients, {args.latency_ms} ms per request, QuickBooks' limits "
          f"({PER_MINUTE}/min, 10 at once, 40 batch requests/min) enforced; {describe(database.url)}")
    results: dict[str, tuple[Measured, Measured]] = {}
    try:
        with simulator(latency) as ours_qbo, simulator(latency) as naive_qbo:
            settings = Settings(home=folder / "home", database_url=database.url, encryption_keys=(generate_key(),),
                                admin_token="bench-admin-token-0123456789abcdef", public_url="http://127.0.0.1:8000",
                                environ={"QUICKBOOKS_BASE_URL": ours_qbo.url, "QUICKBOOKS_CLIENT_ID": CLIENT_ID,
                                         "QUICKBOOKS_CLIENT_SECRET": CLIENT_SECRET,
                                         "QUICKBOOKS_VERIFIER_TOKEN": VERIFIER_TOKEN})
            hub = Hub.create(settings, entry_points=False, extra_plugins=[("quickbooks", hub_quickbooks.plugin)])
            await upgrade_async(hub.engine)
            naive_engine = create_engine(database.url)
            async with naive_engine.begin() as conn:
                await conn.run_sync(naive_mappings.metadata.create_all)
            try:
                tenant_id = await connect_hub(hub, ours_qbo)
                token = await naive_token(naive_qbo)
                for scenario, changed in zip(SCENARIOS, (False, False, True), strict=True):
                    mine = await ours(hub, ours_qbo, tenant_id, make_records(n, changed=changed), limit)
                    print(f"  ours  {scenario}: {mine.seconds:.1f} s, {mine.requests} requests, "
                          f"{mine.throttled} 429s ({mine.outcome}){' GAVE UP' if mine.gave_up else ''}", flush=True)
                    theirs = await naive(naive_engine, naive_qbo, token, make_records(sample, changed=changed), limit)
                    print(f"  naive {scenario}: {theirs.seconds:.1f} s, {theirs.requests} requests, "
                          f"{theirs.throttled} 429s on {theirs.clients:,} clients ({theirs.outcome})"
                          f"{' GAVE UP' if theirs.gave_up else ''}", flush=True)
                    results[scenario] = (mine, theirs)
            finally:
                await naive_engine.dispose()
                await hub.aclose()
    finally:
        if database.cleanup:
            database.cleanup()

    scaled = sample != n
    print(f"\n{'scenario':<18} {'ours s':>8} {'naive s':>9} {'ratio':>7} {'ours req':>9} {'naive req':>10} "
          f"{'ratio':>7} {'ours 429':>9} {'naive 429':>10}")
    for scenario, (mine, theirs) in results.items():
        factor = n / max(1, theirs.clients)
        requests = round(theirs.requests * factor)
        # The k-th request of a run cannot start before minute (k - 1) // 500, whatever the window held before.
        seconds = max(theirs.seconds * factor, (requests - 1) // PER_MINUTE * 60) if scaled else theirs.seconds
        print(f"{scenario:<18} {mine.seconds:>8.1f} {seconds:>9.1f} {seconds / max(mine.seconds, 1e-9):>6.0f}x "
              f"{mine.requests:>9} {requests:>10} "
              f"{(f'{requests / mine.requests:.0f}x' if mine.requests else 'inf'):>7} "
              f"{mine.throttled:>9} {round(theirs.throttled * factor):>10}")
    if scaled:
        print(f"NAIVE FIGURES SCALED FROM {sample:,} TO {n:,} CLIENTS: requests and 429s linearly; wall time as the "
              f"larger of the linear scale and the minutes {PER_MINUTE} requests a minute need (a lower bound).")

    first, unchanged, _ = (results[s][0] for s in SCENARIOS)
    batches = -(-n // 30)
    checks = [
        (f"first sync: at most {batches} requests (batches of 30)", first.requests <= batches and not first.gave_up),
        ("first sync: 0 429s", first.throttled == 0),
        ("unchanged re-sync: 0 requests", unchanged.requests == 0 and not unchanged.gave_up),
        ("every scenario: 0 429s for ours", all(results[s][0].throttled == 0 for s in SCENARIOS)),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--naive-sample", type=int, default=500,
                        help="measure the naive way on this many clients and scale to --records (0: all)")
    parser.add_argument("--limit", type=float, default=1800, help="give up a measurement after this many seconds")
    parser.add_argument("--database-url", help="PostgreSQL (a scratch schema, dropped after); SQLite by default")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
