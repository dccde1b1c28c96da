"""Fixtures for the core's tests. Every test that takes ``hub`` runs on SQLite and on PostgreSQL
(``HUB_TEST_DATABASE_URL``); without it the PostgreSQL runs skip locally and fail in CI (CI=true)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from hub.api.app import create_app
from hub.config import Settings
from hub.db.migrate import upgrade_async
from hub.runtime import Hub
from tests.testprovider import plugin as test_plugin
from tests.testprovider.server import FakeProvider

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
ENCRYPTION_KEY = "q0eDJi4JuQkMDdFs3nXgBEpm-bDDdH8xd_IoFhPkW2c"
WEBHOOK_SECRETS = "whsec-test-old,whsec-test-new"
PG_URL = os.environ.get("HUB_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI") == "true"


def require_service(url: str | None, what: str) -> str:
    if url:
        return url
    if IN_CI:
        pytest.fail(f"{what} is required in CI but its URL is not set")
    pytest.skip(f"{what} not configured")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    import psycopg

    base = require_service(PG_URL, "PostgreSQL (HUB_TEST_DATABASE_URL)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def provider():
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, provider: FakeProvider, tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home", database_url=database_url, encryption_keys=(ENCRYPTION_KEY,),
        admin_token=ADMIN_TOKEN, public_url="http://127.0.0.1:8000",
        environ={"TESTPROVIDER_URL": provider.url, "TESTOAUTH_WEBHOOK_SECRETS": WEBHOOK_SECRETS},
    )


def make_hub(settings: Settings) -> Hub:
    return Hub.create(settings, entry_points=False, extra_plugins=[("testprovider", test_plugin)])


@pytest.fixture
def hub_factory():
    """How every Hub of a test is made (the app's, and Redis-mode workers'): override to load other plugins."""
    return make_hub


@pytest.fixture
async def hub(settings: Settings, hub_factory):
    instance = hub_factory(settings)
    await upgrade_async(instance.engine)
    yield instance
    await instance.aclose()


@pytest.fixture
async def client(hub: Hub, background):
    """The app under test. Litestar's test client runs it on a loop of its own in another thread, so
    anything that must share the app's loop (the embedded worker) starts with the app, as in ``hub serve``."""
    app = create_app(hub, background=background)
    async with AsyncTestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client
    hub.dispatch = None


@dataclass
class TenantHandle:
    id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def new_tenant(client, name: str = "Acme Builders") -> TenantHandle:
    response = await client.post(
        "/v1/admin/tenants", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return TenantHandle(uuid.UUID(body["tenant"]["id"]), body["api_key"]["key"])


@pytest.fixture
async def tenant(client) -> TenantHandle:
    return await new_tenant(client)


class LiveHub:
    """The hub served by uvicorn over real HTTP on 127.0.0.1, in a thread of the test process."""

    def __init__(self, hub: Hub) -> None:
        import socket
        import threading

        import uvicorn

        self.hub = hub
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        config = uvicorn.Config(create_app(hub, migrate=True), log_config=None, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> LiveHub:
        import time

        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the hub did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._socket.close()


@pytest.fixture
def live_hub(settings: Settings):
    hub = make_hub(settings)
    with LiveHub(hub) as live:
        yield live
    import asyncio

    asyncio.run(hub.engine.dispose())


REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL")


@dataclass
class Jobs:
    background: object
    runtime: object | None = None


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def jobs(request, settings: Settings, hub_factory):
    """Real Dramatiq workers for the hub's jobs, started with the app (see ``background``) as ``hub serve``
    runs them: on the embedded default, an in-process worker on the app's own loop; with Redis, the app
    only sends (and relays) while worker threads with a Hub of their own run them, as ``hub worker`` does."""
    from hub.jobs.worker import EmbeddedJobs, SendOnlyJobs, WorkerRuntime

    if request.param == "embedded":
        yield Jobs(EmbeddedJobs())
        return
    url = require_service(REDIS_URL, "Redis (HUB_TEST_REDIS_URL)")
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter("hub:*"):  # a previous run's queue, not other tests' keys
        client.delete(key)
    worker_settings = Settings(**{**_fields(settings), "broker_url": url})
    runtime = WorkerRuntime(worker_settings, lambda: hub_factory(worker_settings), threads=4)
    runtime.start()
    try:
        yield Jobs(SendOnlyJobs(relay=True, broker_url=url), runtime)
    finally:
        runtime.stop()


@pytest.fixture
def background(request):
    """What runs beside the app under test: the jobs, when the test asks for them."""
    return request.getfixturevalue("jobs").background if "jobs" in request.fixturenames else None


def _fields(settings: Settings) -> dict:
    return {name: getattr(settings, name) for name in settings.__struct_fields__}


async def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    """Poll an async predicate until it returns something truthy."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate.__name__}")
        await asyncio.sleep(every)
