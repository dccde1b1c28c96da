"""Running jobs: Dramatiq worker threads plus the relay loop.

- ``hub serve`` with no ``HUB_BROKER_URL``: ``EmbeddedJobs`` runs an in-process Dramatiq worker (stub
  broker) and the relay inside the server process, so one command runs everything.
- ``HUB_BROKER_URL=redis://...``: ``hub serve`` only sends (``SendOnlyJobs``); ``hub worker`` processes on
  any machine run ``WorkerRuntime``, the relay and the webhook sender.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

import dramatiq

from hub.config import Settings
from hub.jobs import outbox
from hub.jobs.broker import (
    QUEUE,
    Dispatcher,
    HubProvider,
    create_broker,
    declare_actor,
    relay_forever,
    run_in_worker_process,
)
from hub.webhooks.delivery import deliver_forever

log = logging.getLogger("hub.jobs")


class WorkerRuntime:
    """Dramatiq worker threads that run jobs with a Hub of their own (made by ``make_hub``)."""

    def __init__(self, settings: Settings, make_hub: Callable[[], object], *, threads: int = 8,
                 idle_poll_ms: int = 1000) -> None:
        self.hubs = HubProvider(make_hub)
        self.broker = create_broker(settings, self.hubs)
        self.actor = declare_actor(self.broker, functools.partial(run_in_worker_process, self.hubs))
        self.dispatcher = Dispatcher(self.actor)
        # idle_poll_ms: how often an idle thread looks again, and so how long stopping may take.
        self.worker = dramatiq.Worker(self.broker, queues={QUEUE}, worker_threads=threads,
                                      worker_timeout=idle_poll_ms)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        """Finish the messages in hand, close the worker's Hub (CloseHubOnShutdown), stop the threads."""
        self.worker.stop()
        self.broker.close()


class Background:
    """What ``hub serve`` runs beside the API."""

    async def start(self, hub) -> None: ...

    async def stop(self) -> None: ...


class SendOnlyJobs(Background):
    """Redis mode: the API process sends committed jobs to the broker; workers run them (and the relay,
    unless ``relay`` asks this process to run one too)."""

    def __init__(self, relay: bool = False, broker_url: str | None = None) -> None:
        self.relay = relay
        self.broker_url = broker_url

    async def start(self, hub) -> None:
        settings = hub.settings
        if self.broker_url is not None:
            settings = Settings(**{**{f: getattr(settings, f) for f in settings.__struct_fields__},
                                   "broker_url": self.broker_url})
        self._broker = create_broker(settings)
        hub.dispatch = Dispatcher(declare_actor(self._broker, None))
        self._stop = asyncio.Event()
        self._relay = asyncio.create_task(_background_loops(hub, self._stop)) if self.relay else None

    async def stop(self) -> None:
        self._stop.set()
        if self._relay is not None:
            await self._relay
        self._broker.close()


class EmbeddedJobs(Background):
    """Embedded mode: an in-process Dramatiq worker (stub broker) whose threads run each job on the server's
    own event loop, with the server's Hub: one database pool and one throttle per provider connection,
    so API calls and syncs share the provider's declared limits. The relay and the webhook sender run on
    that loop too."""

    def __init__(self, threads: int = 4) -> None:
        self.threads = threads

    async def start(self, hub) -> None:
        loop = asyncio.get_running_loop()

        def run(job_id) -> None:
            asyncio.run_coroutine_threadsafe(outbox.execute(hub, job_id), loop).result()

        self.broker = create_broker(hub.settings, asyncio_actors=False)
        hub.dispatch = Dispatcher(declare_actor(self.broker, run))
        # Idle threads look for work every 0.1 s (not 1 s), so stopping (each test, each restart) is quick.
        self.worker = dramatiq.Worker(self.broker, queues={QUEUE}, worker_threads=self.threads, worker_timeout=100)
        self.worker.start()
        self.stop_event = asyncio.Event()
        self.relay = asyncio.create_task(_background_loops(hub, self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await self.relay
        # In a thread: the worker threads wait for jobs that need this loop to finish.
        await asyncio.to_thread(self.worker.stop)
        self.broker.close()


async def _background_loops(hub, stop: asyncio.Event) -> None:
    """What runs where jobs run, until ``stop``: the relay (and scheduler) and the webhook sender."""
    await asyncio.gather(relay_forever(hub, stop), deliver_forever(hub, stop))


def background_for(settings: Settings) -> Background:
    return EmbeddedJobs() if settings.broker_url is None else SendOnlyJobs()


def run_worker(settings: Settings, make_hub: Callable[[], object], threads: int) -> None:
    """One ``hub worker`` process: worker threads, and the relay in the main thread until a signal."""
    import signal

    from hub.serving import run_loop, tune_interpreter

    runtime = WorkerRuntime(settings, make_hub, threads=threads)
    runtime.start()
    log.info("worker started: %d threads on queue %r", threads, QUEUE)

    async def relay() -> None:
        hub = make_hub()
        hub.dispatch = runtime.dispatcher
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await _background_loops(hub, stop)
        finally:
            await hub.aclose()

    tune_interpreter()
    try:
        run_loop(relay())
    finally:
        runtime.stop()
        log.info("worker stopped")
