"""A ``hub worker`` process for the crash test: the real run_worker with the test plugin loaded."""

from __future__ import annotations

import sys
from pathlib import Path

from hub.config import Settings
from hub.jobs.worker import run_worker
from hub.logs import configure_logging
from tests.conftest import make_hub

if __name__ == "__main__":
    database_url, key, provider_url, home, broker_url = sys.argv[1:6]
    configure_logging()
    settings = Settings(home=Path(home), database_url=database_url, encryption_keys=(key,), admin_token="x",
                        broker_url=broker_url, job_lease_seconds=2.0, tick_seconds=0.5,
                        environ={"TESTPROVIDER_URL": provider_url})
    run_worker(settings, lambda: make_hub(settings), threads=2)
