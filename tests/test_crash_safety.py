"""A worker killed in the middle of a run loses nothing and duplicates nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hub.jobs.broker import Dispatcher, create_broker, declare_actor
from tests.conftest import ENCRYPTION_KEY, REDIS_URL, require_service, wait_for
from tests.flows import connect
from tests.test_sync_engine import clients, finished, sync

ROOT = Path(__file__).resolve().parents[1]


def start_worker(settings, provider, broker_url: str, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.worker_process", settings.database_url, ENCRYPTION_KEY,
             provider.url, str(settings.home), broker_url],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )


@pytest.mark.redis
async def test_sigkilled_worker_mid_run_then_another_finishes_it_exactly_once(client, hub, tenant, provider,
                                                                              settings, tmp_path):
    url = require_service(REDIS_URL, "Redis (HUB_TEST_REDIS_URL)")
    import redis

    for key in redis.Redis.from_url(url).scan_iter("hub:*"):
        redis.Redis.from_url(url).delete(key)
    broker = create_broker(settings.__class__(**{**{f: getattr(settings, f) for f in settings.__struct_fields__},
                                                 "broker_url": url}))
    hub.dispatch = Dispatcher(declare_actor(broker, None))  # the API process only sends, as in Redis mode
    await connect(client, tenant)
    provider.state.stall_batch = 4  # the 4th batch is written at the provider, then its answer is held

    log = tmp_path / "workers.log"
    first = start_worker(settings, provider, url, log)
    second = None
    try:
        run = await sync(client, tenant, "client", clients(300))

        async def fourth_batch_in_flight():
            return provider.state.stalled.is_set()

        await wait_for(fourth_batch_in_flight, timeout=30)
        first.send_signal(signal.SIGKILL)  # mid-request: no chance to record the answer, release or say goodbye
        first.wait(timeout=10)
        provider.state.release.set()

        second = start_worker(settings, provider, url, log)  # its relay finds the job past its lease
        done = await finished(client, tenant, run["id"], timeout=60)
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
        hub.dispatch = None
        broker.close()

    assert done["status"] == "completed", (done, log.read_text()[-3000:])
    assert done["created"] + done["updated"] == 300 and done["failed"] == 0
    assert len(provider.state.customers) == 300  # exactly one object per record
    assert provider.state.replayed == 30  # the lost batch was sent again and answered from the first time
    names = [c["DisplayName"] for c in provider.state.customers.values()]
    assert len(set(names)) == 300
