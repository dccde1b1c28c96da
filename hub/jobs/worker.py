"""Running jobs: Dramatiq worker threads plus the relay loop.

- ``hub serve`` with no ``HUB_BROKER_URL``: ``EmbeddedJobs`` runs an in-process Dramatiq worker (stub
  broker) and the relay inside the server process, so one command runs everything.
- ``HUB_BROKER_URL=redis://...``: ``hub serve`` only sends (``SendOnlyJobs``); ``hub worker`` processes on
  any machine run ``WorkerRuntime`` and the relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import dramatiq

from hub.config import Settings
from hub.jobs.broker import QUEUE, Dispatcher, HubProvider, create_broker, declare_actor, relay_forever

log = logging.getLogger("hub.jobs")


class WorkerRuntime:
    """Dramatiq worker threads that run jobs with a Hub of their own (made by ``make_hub``)."""

    def __init__(self, settings: Settings, make_hub: Callable[[], object], *, threads: int = 8) -> None:
        self.hubs = HubProvider(make_hub)
        self.broker = create_broker(settings, self.hubs)
        self.actor = declare_actor(self.broker, self.hubs)
        self.dispatcher = Dispatcher(self.actor)
        self.worker = dramatiq.Worker(self.broker, queues={QUEUE}, worker_threads=threads)

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
    """Redis mode: the API process sends committed jobs to the broker; workers run them."""

    async def start(self, hub) -> None:
        broker = create_broker(hub.settings)
        hub.dispatch = Dispatcher(declare_actor(broker, None))
        self._broker = broker

    async def stop(self) -> None:
        self._broker.close()


class EmbeddedJobs(Background):
    """Embedded mode: worker threads and the relay live in the server process."""

    def __init__(self, make_hub: Callable[[], object], threads: int = 4) -> None:
        self.make_hub = make_hub
        self.threads = threads

    async def start(self, hub) -> None:
        self.runtime = WorkerRuntime(hub.settings, self.make_hub, threads=self.threads)
        self.runtime.start()
        hub.dispatch = self.runtime.dispatcher
        self.stop_event = asyncio.Event()
        self.relay = asyncio.create_task(relay_forever(hub, self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await self.relay
        await asyncio.to_thread(self.runtime.stop)


def background_for(settings: Settings, make_hub: Callable[[], object]) -> Background:
    return EmbeddedJobs(make_hub) if settings.broker_url is None else SendOnlyJobs()


def run_worker(settings: Settings, make_hub: Callable[[], object], threads: int) -> None:
    """One ``hub worker`` process: worker threads, and the relay in the main thread until a signal."""
    import signal

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
            await relay_forever(hub, stop)
        finally:
            await hub.aclose()

    try:
        asyncio.run(relay())
    finally:
        runtime.stop()
        log.info("worker stopped")
