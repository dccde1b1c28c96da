"""The sender: delivers queued webhooks to tenants' endpoints, signed, retried, every attempt logged.

``webhook_deliveries`` is the queue. A row is due when it is ``pending`` and its ``next_attempt_at`` has
come. The sender claims due rows in batches with a lease (one transaction: ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the write lock on SQLite), which pushes ``next_attempt_at`` to the lease's end and counts the
attempt — so if the sender dies, its rows fall due again when the lease runs out, and a stale sender's
late answer (the row was claimed again since) changes nothing. Claimed rows are sent concurrently with
one HTTP client: to one endpoint as many at once as its latency needs (``Lanes``: two for a fast one, up
to ``per_endpoint`` for a slow one) and ``max_in_flight`` in all; an endpoint whose share of claimed rows
is full is left out of the next claim, so a slow or dead endpoint holds a few rows and the others keep
flowing. Answers are written in batches, one transaction per batch.

Retry schedule after a failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (each ±10% jitter),
eight attempts in all. Success is a 2xx within the timeout. 429 and 503 wait at least their Retry-After.
410 disables the endpoint at once. An event whose delivery runs out of attempts is a failed event; ten
in a row disable the endpoint, and the hub records an ``endpoint.disabled`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpcore
import httpx
import msgspec
from sqlalchemy import insert, select, update

from hub import __version__
from hub.config import Settings
from hub.db.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from hub.http import retry_after
from hub.ids import new_id
from hub.jobs.outbox import describe
from hub.metrics import DELIVERIES, DELIVERY_SECONDS
from hub.webhooks.endpoints import disable, secrets_for_signing
from hub.webhooks.signing import signed_headers
from hub.webhooks.ssrf import AddressGuard, GuardedTransport, Resolver, UnsafeUrl

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.webhooks")

SCHEDULE = tuple(timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000))
"""The wait after the 1st, 2nd ... 7th failed attempt."""
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.1
MAX_RETRY_AFTER = SCHEDULE[-1]
DISABLE_AFTER = 10
"""Consecutive failed events (deliveries out of attempts) after which the hub disables an endpoint."""
RESPONSE_BODY_LIMIT = 2048
LANE_TARGET_RATE = 100
USER_AGENT = f"integration-hub/{__version__} (webhooks)"


def retry_delay(attempts: int, asked: float | None = None) -> timedelta | None:
    """How long after the ``attempts``-th failed attempt the next one is due; None when that was the last.
    ``asked`` is the endpoint's Retry-After in seconds: the wait is never shorter."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = SCHEDULE[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if asked is not None:
        delay = max(delay, min(timedelta(seconds=asked), MAX_RETRY_AFTER))
    return delay


def message_id(event_id: uuid.UUID) -> str:
    """``webhook-id``: derived from the event, so it is the same on every retry and redelivery."""
    return f"msg_{event_id.hex}"


def payload(event: Event) -> bytes:
    return msgspec.json.encode({"id": str(event.id), "type": event.type, "timestamp": event.occurred_at,
                                "provider": event.provider, "data": event.data})


class Outbound:
    """A hub's outbound-webhook plumbing: the address guard, how to make the HTTP client deliveries go
    through, and the wake-up of the sender running in this process. ``resolver`` and ``backend`` (what
    opens connections, below the guard) are for tests."""

    def __init__(self, settings: Settings, *, resolver: Resolver | None = None,
                 backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = AddressGuard(allow_private=settings.allow_private_webhook_urls,
                                  loopback_only=settings.loopback_only, resolver=resolver)
        self.timeout = settings.webhook_timeout_seconds
        self.backend = backend
        self._senders: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def client(self, connections_per_endpoint: int) -> httpx.AsyncClient:
        transport = GuardedTransport(self.guard, backend=self.backend, connections_per_origin=connections_per_endpoint)
        return httpx.AsyncClient(transport=transport,
                                 timeout=httpx.Timeout(self.timeout), follow_redirects=False, trust_env=False,
                                 headers={"user-agent": USER_AGENT})

    def wake(self) -> None:
        """New deliveries were committed: wake this process's sender (from any thread)."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, wakeup in list(self._senders):
            if loop is current:
                wakeup.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(wakeup.set)

    @contextlib.contextmanager
    def listening(self, wakeup: asyncio.Event):
        entry = (asyncio.get_running_loop(), wakeup)
        self._senders.append(entry)
        try:
            yield
        finally:
            self._senders.remove(entry)


@dataclass(kw_only=True)
class Outcome:
    """What became of one claimed delivery."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    tenant_id: uuid.UUID
    attempt: int
    status: str
    """succeeded, retrying, failed."""
    sent: bool = True
    attempted_at: datetime | None = None
    status_code: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    response_body: str | None = None
    next_attempt_at: datetime | None = None
    gone: bool = False


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def sent(self) -> int:
        return sum(1 for o in self.outcomes if o.sent)


@dataclass(kw_only=True)
class _Claim:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    attempts: int


class Lanes:
    """How many requests one endpoint gets at once: as many as its answers' latency needs (Little's law:
    lanes = rate x latency, for about ``LANE_TARGET_RATE`` deliveries a second), from ``least`` up to
    ``most``. A fast endpoint is served by two keep-alive connections (more would only cost the sender time
    in the connection pool); a slow one gets up to ``most``."""

    def __init__(self, least: int, most: int) -> None:
        self.least, self.most = least, most
        self.active = 0
        self.latency = 0.0
        self._free = asyncio.Condition()

    @property
    def limit(self) -> int:
        return max(self.least, min(self.most, math.ceil(self.latency * LANE_TARGET_RATE)))

    async def __aenter__(self) -> None:
        async with self._free:
            await self._free.wait_for(lambda: self.active < self.limit)
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._free:
            self.active -= 1
            self._free.notify()

    def observe(self, seconds: float) -> None:
        self.latency = seconds if not self.latency else 0.8 * self.latency + 0.2 * seconds


class Sender:
    """Claims due deliveries and sends them. ``serve`` runs until stopped (``hub serve``, ``hub worker``);
    ``deliver_due`` runs one pass."""

    def __init__(self, hub: Hub, *, per_endpoint: int = 8, backlog_per_endpoint: int = 32,
                 max_in_flight: int = 256, claim_batch: int = 500, keep_report: bool = False) -> None:
        self.hub = hub
        self.outbound: Outbound = hub.webhooks
        self.per_endpoint = per_endpoint
        self.backlog_per_endpoint = max(backlog_per_endpoint, per_endpoint)
        self.max_in_flight = max_in_flight
        self.claim_batch = claim_batch
        timeout = self.outbound.timeout
        self.lease = max(hub.settings.job_lease,
                         timedelta(seconds=timeout * (self.backlog_per_endpoint / per_endpoint + 1) + 30))
        self.report = Report()
        self.keep_report = keep_report
        """Keep every outcome in ``report`` (one pass, for its caller); a long-running sender keeps none."""
        self.held: Counter[uuid.UUID] = Counter()
        self._slots: dict[uuid.UUID, Lanes] = {}
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._tasks: dict[asyncio.Task, _Claim] = {}
        self._started: set[uuid.UUID] = set()
        self._results: list[Outcome] = []
        self._has_results = asyncio.Event()
        self._room = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    # -- claiming -------------------------------------------------------------------------------------

    def _free(self, endpoint_id: uuid.UUID) -> int:
        return self.backlog_per_endpoint - self.held[endpoint_id]

    async def fill(self) -> tuple[int, bool]:
        """Claim due deliveries for every endpoint with room and start sending them. Returns how many it
        started and whether more may be due right now."""
        room = self.claim_batch - sum(self.held.values())
        if room <= 0:
            return 0, True
        full = [e for e, n in self.held.items() if n >= self.backlog_per_endpoint]
        async with self.hub.session() as session:
            now = self.hub.clock()
            stmt = (select(WebhookDelivery.id, WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                    .order_by(WebhookDelivery.next_attempt_at).limit(room)
                    .with_for_update(skip_locked=True))
            if full:
                stmt = stmt.where(WebhookDelivery.endpoint_id.not_in(full))
            candidates = (await session.execute(stmt)).all()
            taking: Counter[uuid.UUID] = Counter()
            picked = []
            for row in candidates:
                if taking[row.endpoint_id] < self._free(row.endpoint_id):
                    taking[row.endpoint_id] += 1
                    picked.append(row.id)
            if not picked:
                return 0, False
            lease_end = now + self.lease
            claimed = [_Claim(**row._mapping) for row in await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id.in_(picked))
                .values(attempts=WebhookDelivery.attempts + 1, next_attempt_at=lease_end, locked_until=lease_end)
                .returning(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.event_id,
                           WebhookDelivery.tenant_id, WebhookDelivery.attempts)
                .execution_options(synchronize_session=False))]
            endpoints = {e.id: e for e in await session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.id.in_({c.endpoint_id for c in claimed})))}
            events = {e.id: e for e in await session.scalars(
                select(Event).where(Event.id.in_({c.event_id for c in claimed})))}
        bodies: dict[uuid.UUID, bytes] = {}
        secrets = {e.id: secrets_for_signing(self.hub, e, now) for e in endpoints.values() if e.enabled}
        for claim in claimed:
            endpoint = endpoints.get(claim.endpoint_id)
            if endpoint is None or not endpoint.enabled:
                self._add_result(Outcome(delivery_id=claim.id, endpoint_id=claim.endpoint_id,
                                         tenant_id=claim.tenant_id, attempt=claim.attempts, status="failed",
                                         sent=False, error="not sent: the endpoint is disabled"))
                continue
            if claim.event_id not in bodies:
                bodies[claim.event_id] = payload(events[claim.event_id])
            self.held[claim.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(claim, endpoint.url, secrets[endpoint.id],
                                                     bodies[claim.event_id]))
            self._tasks[task] = claim
            task.add_done_callback(self._finished)
        return len(claimed), len(candidates) >= room

    # -- sending --------------------------------------------------------------------------------------

    async def _deliver(self, claim: _Claim, url: str, secrets: list[str], body: bytes) -> None:
        lanes = self._slots.get(claim.endpoint_id)
        if lanes is None:
            lanes = self._slots[claim.endpoint_id] = Lanes(min(2, self.per_endpoint), self.per_endpoint)
        async with lanes, self._in_flight:
            self._started.add(claim.id)
            outcome = await self._send(claim, url, secrets, body)
        if outcome.duration_ms is not None:
            lanes.observe(outcome.duration_ms / 1000)
        self._add_result(outcome)

    async def _send(self, claim: _Claim, url: str, secrets: list[str], body: bytes) -> Outcome:
        assert self._client is not None
        attempted_at = self.hub.clock()
        headers = {**signed_headers(secrets, message_id(claim.event_id), int(attempted_at.timestamp()), body),
                   "content-type": "application/json"}
        status_code: int | None = None
        error: str | None = None
        text: str | None = None
        asked: float | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.outbound.timeout):
                async with self._client.stream("POST", url, content=body, headers=headers) as response:
                    status_code = response.status_code
                    if status_code in (429, 503):
                        asked = retry_after(response)
                    text = await _read_prefix(response)
        except TimeoutError:
            error = f"no answer within {self.outbound.timeout:g} s"
        except UnsafeUrl as exc:
            error = f"refused: {exc.message}"
        except httpx.HTTPError as exc:
            error = describe(exc)
        except Exception as exc:  # a bug must not stop the sender; the attempt is logged as failed
            log.exception("webhook delivery %s failed unexpectedly", claim.id)
            error = describe(exc)
        elapsed = time.perf_counter() - started
        duration_ms = round(elapsed * 1000)
        DELIVERY_SECONDS.observe(elapsed)
        outcome = Outcome(delivery_id=claim.id, endpoint_id=claim.endpoint_id, tenant_id=claim.tenant_id,
                          attempt=claim.attempts, status="succeeded", attempted_at=attempted_at,
                          status_code=status_code, duration_ms=duration_ms, error=error, response_body=text)
        delivered = status_code is not None and 200 <= status_code < 300
        DELIVERIES.labels("delivered" if delivered else "refused" if (error or "").startswith("refused:")
                          else "failed").inc()
        if delivered:
            return outcome
        if status_code == 410:
            outcome.status, outcome.gone = "failed", True
            return outcome
        delay = retry_delay(claim.attempts, asked)
        if delay is None:
            outcome.status = "failed"
        else:
            outcome.status, outcome.next_attempt_at = "retrying", self.hub.clock() + delay
        return outcome

    def _add_result(self, outcome: Outcome) -> None:
        self._results.append(outcome)
        self._has_results.set()

    def _finished(self, task: asyncio.Task) -> None:
        claim = self._tasks.pop(task)
        self._started.discard(claim.id)
        self.held[claim.endpoint_id] -= 1
        if self.held[claim.endpoint_id] <= 0:  # nothing of this endpoint's is held or waiting for its slots
            del self.held[claim.endpoint_id]
            self._slots.pop(claim.endpoint_id, None)
        self._room.set()

    # -- writing answers --------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every answer collected so far, one transaction per batch."""
        async with self._write_lock:
            while self._results:
                batch, self._results = self._results, []
                self._has_results.clear()
                await self._write(batch)
                if self.keep_report:
                    self.report.outcomes.extend(batch)

    async def _write(self, batch: list[Outcome]) -> None:
        async with self.hub.session() as session:
            ids = [o.delivery_id for o in batch]
            current = dict((await session.execute(
                select(WebhookDelivery.id, WebhookDelivery.attempts).where(WebhookDelivery.id.in_(ids))
                .with_for_update())).all())
            # A row claimed again since (its lease ran out) belongs to its new holder; a deleted one is gone.
            held = [o for o in batch if current.get(o.delivery_id) == o.attempt]
            logged = [o for o in batch if o.sent and o.delivery_id in current]
            if logged:
                await session.execute(insert(WebhookAttempt), [
                    {"id": new_id(), "tenant_id": o.tenant_id, "delivery_id": o.delivery_id,
                     "endpoint_id": o.endpoint_id, "attempt": o.attempt, "attempted_at": o.attempted_at,
                     "status_code": o.status_code, "duration_ms": o.duration_ms, "error": o.error,
                     "response_body": o.response_body} for o in logged])
            if not held:
                return
            now = self.hub.clock()
            await session.execute(update(WebhookDelivery), [
                {"id": o.delivery_id, "status": "pending" if o.status == "retrying" else o.status,
                 "next_attempt_at": o.next_attempt_at, "locked_until": None, "last_status_code": o.status_code,
                 "last_error": o.error or (None if o.status == "succeeded" else f"HTTP {o.status_code}"),
                 "finished_at": None if o.status == "retrying" else now}
                for o in held])
            await self._account(session, held)

    async def _account(self, session, held: list[Outcome]) -> None:
        """Consecutive failed events per endpoint: a success resets the count, a delivery out of attempts
        adds one; ten disable the endpoint, as does a 410 at once."""
        reset: set[uuid.UUID] = set()
        failures: Counter[uuid.UUID] = Counter()
        gone: set[uuid.UUID] = set()
        for o in held:
            if o.status == "succeeded":
                reset.add(o.endpoint_id)
                failures.pop(o.endpoint_id, None)
            elif o.gone:
                gone.add(o.endpoint_id)
            elif o.status == "failed" and o.sent:
                failures[o.endpoint_id] += 1
        only_reset = reset - set(failures) - gone
        if only_reset:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id.in_(only_reset), WebhookEndpoint.consecutive_failures != 0)
                .values(consecutive_failures=0).execution_options(synchronize_session=False))
        touched = set(failures) | gone
        if not touched:
            return
        for endpoint in await session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.id.in_(touched)).with_for_update()):
            count = (0 if endpoint.id in reset else endpoint.consecutive_failures) + failures[endpoint.id]
            endpoint.consecutive_failures = count
            reason = ("the endpoint answered 410 Gone" if endpoint.id in gone
                      else f"{count} consecutive events failed to deliver" if count >= DISABLE_AFTER else None)
            if reason and endpoint.enabled:
                log.warning("disabling webhook endpoint %s of tenant %s: %s", endpoint.id, endpoint.tenant_id, reason)
                await disable(self.hub, session, endpoint, reason, record=True)
        await session.flush()

    # -- running ----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self):
        """Open the HTTP client and the writer; on the way out, finish (or hand back) what is held."""
        self._client = self.outbound.client(self.per_endpoint)
        writer = asyncio.create_task(self._write_forever())
        try:
            yield self
        finally:
            try:
                await self._finish_held(grace=min(5.0, self.outbound.timeout))
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
                await self.flush()
                await self._client.aclose()
                self._client = None

    async def _write_forever(self) -> None:
        while True:
            await self._has_results.wait()
            try:
                await self.flush()
            except Exception:  # the rows stay leased and fall due again; their answers are lost
                log.exception("writing webhook delivery results failed")
                await asyncio.sleep(1)

    async def _finish_held(self, grace: float) -> None:
        """Let requests in flight finish (up to ``grace``); hand every row not answered straight back (a
        row never sent gets its attempt back)."""
        if not self._tasks:
            return
        unsent = {claim.id for claim in self._tasks.values() if claim.id not in self._started}
        for task, claim in list(self._tasks.items()):
            if claim.id in unsent:
                task.cancel()
        pending = list(self._tasks.items())
        if pending:
            await asyncio.wait([task for task, _ in pending], timeout=grace)
        for task, _ in pending:
            task.cancel()
        if pending:
            await asyncio.wait([task for task, _ in pending])
        unanswered = [claim for task, claim in pending if task.cancelled()]
        if unanswered:
            now = self.hub.clock()
            async with self.hub.session() as session:
                for claim in unanswered:
                    await session.execute(
                        update(WebhookDelivery)
                        .where(WebhookDelivery.id == claim.id, WebhookDelivery.attempts == claim.attempts)
                        .values(attempts=claim.attempts - (claim.id in unsent), next_attempt_at=now,
                                locked_until=None)
                        .execution_options(synchronize_session=False))

    async def idle(self) -> None:
        """Wait until every claimed delivery has been sent and its answer written."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))
        await self.flush()

    async def serve(self, stop: asyncio.Event) -> None:
        wakeup = asyncio.Event()
        tick = self.hub.settings.tick_seconds
        async with self.running():
            with self.outbound.listening(wakeup):
                await self._serve(stop, wakeup, tick)

    async def _serve(self, stop: asyncio.Event, wakeup: asyncio.Event, tick: float) -> None:
        while not stop.is_set():
            wakeup.clear()
            self._room.clear()
            try:
                _, more = await self.fill()
            except Exception:
                log.exception("claiming webhook deliveries failed; trying again next tick")
                more = False
            if more:
                # More is due: claim again once some of what is held is done (in batches, not per answer).
                await asyncio.sleep(0.01)
                await _first(stop.wait(), self._room.wait(), timeout=tick)
            else:
                await _first(stop.wait(), wakeup.wait(), timeout=tick)


async def _first(*waits, timeout: float) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _read_prefix(response: httpx.Response) -> str:
    """The first ``RESPONSE_BODY_LIMIT`` bytes of the answer (as sent, never decompressed), as text."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= RESPONSE_BODY_LIMIT:
            break
    return bytes(kept[:RESPONSE_BODY_LIMIT]).decode("utf-8", "replace")


async def deliver_due(hub: Hub, **options: Any) -> Report:
    """Send every delivery that is due by ``hub.clock()``, wait for the answers and write them: one
    deterministic pass (tests, a one-off run). Deliveries that fall due during the pass (an
    ``endpoint.disabled`` event's) are sent too; retries scheduled for later are not."""
    sender = Sender(hub, keep_report=True, **options)
    async with sender.running():
        while True:
            started, more = await sender.fill()
            if not started and not sender._tasks:
                if not sender._results:
                    break
                await sender.flush()
            elif more:
                sender._room.clear()
                await _first(sender._room.wait(), timeout=1.0)
            else:
                await sender.idle()
    return sender.report


async def deliver_forever(hub: Hub, stop: asyncio.Event) -> None:
    """The sender of a process that runs jobs (``hub serve`` embedded, ``hub worker``), until ``stop``."""
    while not stop.is_set():
        try:
            await Sender(hub).serve(stop)
        except Exception:  # never leave the process without a sender
            log.exception("the webhook sender failed; starting it again")
            await _first(stop.wait(), timeout=hub.settings.tick_seconds)
