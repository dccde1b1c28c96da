"""The Dramatiq side: a broker (in-process or Redis), the one actor, and the worker runtime.

The actor is declared on the broker the factory built (never on Dramatiq's global broker at import).
Its message carries only a job id; the row in ``jobs`` says what to do. Dramatiq's own retries are
off: a failed attempt goes back to its row with a backoff, where the relay finds it when it is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from dramatiq.middleware.asyncio import AsyncIO

from hub.config import Settings
from hub.jobs import outbox

log = logging.getLogger("hub.jobs")

QUEUE = "hub"
ACTOR = "hub_run_job"
TIME_LIMIT_MS = 24 * 3600 * 1000  # leases, not Dramatiq's time limit, decide when a job is presumed dead


def create_broker(settings: Settings, hubs: HubProvider | None = None, *, asyncio_actors: bool = True
                  ) -> dramatiq.Broker:
    if settings.broker_url is None:
        broker: dramatiq.Broker = StubBroker()
    elif settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=settings.broker_url, namespace="hub")
    else:
        raise ValueError("HUB_BROKER_URL must be a redis:// URL (or unset for the in-process worker)")
    if asyncio_actors:
        broker.add_middleware(AsyncIO())
    if hubs is not None:
        # After AsyncIO in the list: "after_" hooks run in reverse, so this one runs while the loop still does.
        broker.add_middleware(CloseHubOnShutdown(hubs))
    return broker


class CloseHubOnShutdown(Middleware):
    """Close the worker's Hub after the worker threads finish their messages and before the AsyncIO
    middleware stops the event loop that owns the Hub's connections."""

    def __init__(self, hubs: HubProvider) -> None:
        self.hubs = hubs

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            try:
                loop_thread.run_coroutine(self.hubs.aclose())
            except Exception:
                log.exception("closing the worker's hub failed")


class HubProvider:
    """One Hub per worker process, created on first use inside the worker's event loop (an async engine
    belongs to the loop that opened its connections)."""

    def __init__(self, make_hub: Callable[[], object]) -> None:
        self._make_hub = make_hub
        self._hub = None
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            if self._hub is None:
                self._hub = self._make_hub()
            return self._hub

    async def aclose(self) -> None:
        if self._hub is not None:
            await self._hub.aclose()
            self._hub = None


def declare_actor(broker: dramatiq.Broker, run: Callable | None) -> dramatiq.Actor:
    """The actor that runs a job by id: ``run(job_id)``, a coroutine function (worker processes, through the
    AsyncIO middleware) or a plain one (the embedded worker). None in processes that only send."""

    if run is None:
        def hub_run_job(job_id: str) -> None:
            raise RuntimeError("this process only sends jobs")
    elif asyncio.iscoroutinefunction(run):
        async def hub_run_job(job_id: str) -> None:
            await run(uuid.UUID(job_id))
    else:
        def hub_run_job(job_id: str) -> None:
            run(uuid.UUID(job_id))

    return dramatiq.actor(hub_run_job, broker=broker, actor_name=ACTOR, queue_name=QUEUE, max_retries=0,
                          time_limit=TIME_LIMIT_MS)


async def run_in_worker_process(hubs: HubProvider, job_id: uuid.UUID) -> None:
    await outbox.execute(hubs.get(), job_id)


class Dispatcher:
    """Sends job ids to the workers; installed on a Hub's sessions by ``Hub.attach_dispatcher``."""

    def __init__(self, actor: dramatiq.Actor) -> None:
        self.actor = actor

    def __call__(self, job_id: uuid.UUID) -> None:
        self.actor.send(str(job_id))


async def relay_forever(hub, stop: asyncio.Event) -> None:
    """Nudge workers about due, lost or orphaned jobs, and run the scheduler, every tick; purge expired
    rows and finished work past its retention once an hour (``hub.housekeeping``), in a task of its own so
    a large backlog to delete never holds up a tick."""
    from hub.housekeeping import EVERY_SECONDS, housekeep
    from hub.jobs.ticks import tick

    async def housekeeping() -> None:
        try:
            await housekeep(hub)
        except Exception:
            log.exception("housekeeping failed; trying again in an hour")

    next_purge = 0.0
    purging: asyncio.Task | None = None
    try:
        while not stop.is_set():
            try:
                await tick(hub)
            except Exception:
                log.exception("relay tick failed; trying again next tick")
            if time.monotonic() >= next_purge and (purging is None or purging.done()):
                next_purge = time.monotonic() + EVERY_SECONDS
                purging = asyncio.create_task(housekeeping(), name="hub-housekeeping")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=hub.settings.tick_seconds)
    finally:
        if purging is not None and not purging.done():
            purging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purging
