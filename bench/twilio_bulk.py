"""Twilio bulk SMS: the hub's ``send_bulk_sms`` against the origin guide's ``sendBulkSMS``, side by side in one
run, each against its own Twilio simulator on 127.0.0.1 holding every sender to ``--rate`` messages a second
(Twilio's 1 for a US long code by default; beyond it, 429 with error 20429), with ``--latency-ms`` on every
request. The sender is a Messaging Service of ``--senders`` numbers (3), as in issue 8.

- ours: a real ``Hub`` with the hub-twilio plugin (the official SDK over the hub's HTTP client), connected with
  the Messaging Service and its rate as settings; the ``send_bulk_sms`` action's handler is awaited with the
  connection's context: one send at a time through the hub's throttle (the service's numbers times the rate,
  on the sends' scope), each recipient's Twilio SID saved after its send. Then the same bulk again, as a
  retried job would: it must text nobody.
- naive: the guide's ``Promise.allSettled(messages.map(sendSMS))`` with the official SDK's own async client
  (aiohttp), every message at once, a 429 being that message's ``failed:<index>``; and the same with the
  obvious fix, each message retried after 1 s until Twilio takes it ("naive + retry").

Prints per way: wall time, requests, 429s, messages Twilio took, recipients texted twice, and the ratios.
Run: ``python bench/twilio_bulk.py`` (60 messages, about 20 s at 1 a second on 3 senders);
``--messages 500`` is the issue's case in full (about 3 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import msgspec
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

import hub_twilio.plugin
from hub.config import Settings
from hub.connections import connect_with_credentials, connection_context, get_connection
from hub.db.migrate import upgrade_async
from hub.runtime import Hub
from hub.tenants import create_tenant
from hub.vault import generate_key
from hub_twilio.simulator import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, SERVICE_NUMBERS, TwilioSimulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch import describe, new_database  # noqa: E402

# twilio 9.x's aiohttp client passes auth= the way aiohttp deprecates; the naive way uses it as it ships.
warnings.filterwarnings("ignore", message="The 'auth' parameter is deprecated", category=DeprecationWarning)


@dataclass
class Measured:
    seconds: float
    requests: int
    throttled: int
    taken: int
    twice: int


def measure(sim: TwilioSimulator, before: int, started: float) -> Measured:
    sent = Counter(m["to"] for m in sim.sent())
    with sim.lock:
        posts = [e for e in sim.requests[before:] if e.request.method == "POST"]
    return Measured(time.perf_counter() - started, len(posts), sum(1 for e in posts if e.status == 429),
                    sum(sent.values()), sum(1 for n in sent.values() if n > 1))


def numbers(n: int) -> list[str]:
    return [f"+1415556{i:04d}" for i in range(n)]


def simulator(rate: int, senders: int, latency: float) -> TwilioSimulator:
    sim = TwilioSimulator(messages_per_second=rate)
    sim.accounts[ACCOUNT_SID].services[MESSAGING_SERVICE_SID] = list(SERVICE_NUMBERS[:senders]) + [
        f"+1501712{i:04d}" for i in range(max(0, senders - len(SERVICE_NUMBERS)))]
    sim.latency = latency
    return sim


# -- ours ---------------------------------------------------------------------------------------------------

async def ours(hub: Hub, sim: TwilioSimulator, to: list[str], rate: int, senders: int) -> tuple[Measured, Measured]:
    async with hub.session() as session:
        tenant_id = (await create_tenant(session, "Bench Builders")).id
    async with hub.session(tenant_id) as session:
        await connect_with_credentials(hub, session, tenant_id, "twilio",
                                       {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
                                       {"sender": MESSAGING_SERVICE_SID, "senders": senders,
                                        "messages_per_second": rate, "status_callbacks": False})
    action = hub.registry.actions[("twilio", "send_bulk_sms")]
    data = msgspec.convert({"bulk_id": "bench", "messages": [{"to": n, "body": "Rain delay: no work today."}
                                                             for n in to]}, action.input)
    runs = []
    for _ in range(2):  # the bulk, then the same bulk again (a retried job)
        async with hub.session(tenant_id) as session:
            ctx = await connection_context(hub, session, await get_connection(session, tenant_id, "twilio"))
        before, started = len(sim.requests), time.perf_counter()
        out = await action.handler(ctx, data)
        runs.append(measure(sim, before, started))
        if out.failed:
            print(f"  ours: {out.failed} failed, e.g. {next(r.error for r in out.results if r.error)}")
    return runs[0], runs[1]


# -- naive: the origin guide's sendBulkSMS --------------------------------------------------------------------

class ToSimulator(AsyncTwilioHttpClient):
    """The SDK's own aiohttp client, sent to the simulator instead of api.twilio.com. With one pooled session
    (the SDK's default): with ``pool_connections=False`` twilio 9.x's client answers a request with whichever
    response came back last while it closes its temporary session, so under ``gather`` a 201 reads as
    another message's 429 (and a retry texts that recipient twice)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    async def request(self, method, url, *args, **kwargs):
        return await super().request(method, url.replace("https://api.twilio.com", self.base), *args, **kwargs)


async def naive(sim: TwilioSimulator, to: list[str], *, retry: bool) -> Measured:
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=ToSimulator(sim.url), environment={"TWILIO_EDGE": ""})

    async def send_sms(number: str) -> str:
        while True:
            try:
                return (await client.messages.create_async(to=number, messaging_service_sid=MESSAGING_SERVICE_SID,
                                                           body="Rain delay: no work today.")).sid
            except TwilioRestException as exc:
                if not (retry and exc.status == 429):
                    raise
                await asyncio.sleep(1.0)

    before, started = len(sim.requests), time.perf_counter()
    async with client.http_client:
        results = await asyncio.gather(*(send_sms(n) for n in to), return_exceptions=True)
    failed = [f"failed:{i}" for i, r in enumerate(results) if isinstance(r, BaseException)]
    measured = measure(sim, before, started)
    if failed:
        print(f"  naive{' + retry' if retry else ''}: {len(failed)} of {len(to)} came back failed:<index>")
    return measured


async def main(args: argparse.Namespace) -> int:
    to = numbers(args.messages)
    latency = args.latency_ms / 1000
    print(f"{args.messages} messages, a Messaging Service of {args.senders} senders at {args.rate} message(s) a "
          f"second each, {args.latency_ms} ms per request; the fastest possible: "
          f"{args.messages / (args.senders * args.rate):.1f} s")
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        database = new_database(args.database_url, folder)
        try:
            with simulator(args.rate, args.senders, latency) as ours_sim:
                settings = Settings(home=folder / "home", database_url=database.url,
                                    encryption_keys=(generate_key(),), admin_token="bench-admin-token-0123456789ab",
                                    public_url="http://127.0.0.1:8000", environ={"TWILIO_BASE_URL": ours_sim.url})
                hub = Hub.create(settings, entry_points=False, extra_plugins=[("twilio", hub_twilio.plugin)])
                try:
                    await upgrade_async(hub.engine)
                    print(f"database: {describe(database.url)}")
                    first, again = await ours(hub, ours_sim, to, args.rate, args.senders)
                finally:
                    await hub.aclose()
            with simulator(args.rate, args.senders, latency) as sim:
                plain = await naive(sim, to, retry=False)
            with simulator(args.rate, args.senders, latency) as sim:
                retried = await naive(sim, to, retry=True)
        finally:
            if database.cleanup:
                database.cleanup()

    rows = [("ours", first), ("ours, the same bulk again", again), ("naive (the guide)", plain),
            ("naive + retry on 429", retried)]
    print(f"\n{'':28} {'wall s':>8} {'requests':>9} {'429s':>6} {'taken':>6} {'texted twice':>13}")
    for name, m in rows:
        print(f"{name:28} {m.seconds:8.1f} {m.requests:9d} {m.throttled:6d} {m.taken:6d} {m.twice:13d}")
    n = args.messages
    print("\nratios (naive / ours):")
    print(f"  messages delivered to Twilio: naive {plain.taken / n:.0%} of the list, ours {first.taken / n:.0%}")
    print(f"  requests per message: naive + retry {retried.requests / n:.2f}, ours {first.requests / n:.2f} "
          f"({retried.requests / max(first.requests, 1):.1f}x)")
    print(f"  429s: naive {plain.throttled}, naive + retry {retried.throttled}, ours {first.throttled}")
    print(f"  wall time: naive + retry / ours = {retried.seconds / first.seconds:.2f}x")
    checks = [
        ("ours: every message taken once", first.taken == n and first.twice == 0),
        ("ours: no 429", first.throttled == 0),
        ("ours again: nobody texted, no request", again.requests == 0 and again.taken == n),
        ("ours: within 25% of the fastest the senders allow",
         first.seconds <= 1.25 * n / (args.senders * args.rate) + 2),
    ]
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(ok for _, ok in checks) else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1, help="messages a second per sender")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--database-url", default=None)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
