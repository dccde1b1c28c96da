"""The hub's pytest plugin (entry point ``pytest11: hub``), loaded by pytest wherever the hub is installed.

Choose what is loaded by overriding two fixtures in your ``conftest.py``::

    @pytest.fixture
    def hub_plugins():                      # (name, module) pairs; entry points stay off
        return [("acme", hub_acme.plugin)]

    @pytest.fixture
    def hub_environ(acme_simulator):        # what the plugins read from config.environ
        return {"ACME_BASE_URL": acme_simulator.url}

and every test gets: ``hub`` (a migrated ``Hub``, on SQLite and, with ``HUB_TEST_DATABASE_URL``, on
PostgreSQL), ``client`` (the app under test), ``tenant`` (with its API key: ``tenant.headers``),
``jobs`` (real workers: embedded, and Redis with ``HUB_TEST_REDIS_URL``), ``clock`` (a ``Clock`` the hub
reads), ``webhook_receiver`` (a local endpoint checking the hub's signatures) and ``live_hub`` (the hub on
real HTTP). ``run_jobs(hub)`` (from ``hub.testing``) runs due jobs inline instead of ``jobs``.
Without the URLs the PostgreSQL and Redis variants skip (and fail with ``CI=true``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

if "hub.testing.conformance" not in sys.modules:
    # The conformance suite's asserts report their values as a test's own do, also where pytest was told to
    # load only named plugins (and so rewrites only those: this module, not the rest of the kit).
    pytest.register_assert_rewrite("hub.testing.conformance")

from hub.config import Settings
from hub.runtime import Hub
from hub.testing.app import ADMIN_TOKEN, ENCRYPTION_KEY, PUBLIC_URL, LiveHub, new_tenant
from hub.testing.clock import Clock
from hub.testing.receiver import Receiver


def _redis_url_of_this_worker(url: str | None) -> str | None:
    """Under pytest-xdist, each worker process gets a Redis database of its own (the given one, then the ones
    below it), since a test clears its database's ``hub:*`` keys."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base - int(worker[2:])) % 16}"))


PG_URL = os.environ.get("HUB_TEST_DATABASE_URL")
REDIS_URL = _redis_url_of_this_worker(os.environ.get("HUB_TEST_REDIS_URL"))
IN_CI = os.environ.get("CI") == "true"


ONLY_ON = {"database": "database_url", "jobs": "jobs"}
"""``only_on`` keywords and the parametrised fixture each one narrows."""


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "postgres: needs a real PostgreSQL (HUB_TEST_DATABASE_URL)")
    config.addinivalue_line("markers", "redis: needs a real Redis (HUB_TEST_REDIS_URL)")
    config.addinivalue_line(
        "markers", "only_on(database=None, jobs=None): run only these variants of the kit's matrix, e.g. "
                   "only_on(database='sqlite', jobs='embedded'); a name or a tuple of names")


def pytest_collection_modifyitems(config, items) -> None:
    """Deselect the variants an ``only_on`` marker leaves out: a plugin's own tests need not run on every
    database and broker the core is proven on, and each variant costs a migrated database."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("only_on")
        params = getattr(getattr(item, "callspec", None), "params", {})
        (drop if marker and not _wanted(marker, params) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _wanted(marker, params: dict) -> bool:
    unknown = set(marker.kwargs) - set(ONLY_ON)
    if marker.args or unknown:
        raise pytest.UsageError(f"only_on takes keywords {sorted(ONLY_ON)}, not {marker.args or sorted(unknown)}")
    for keyword, fixture in ONLY_ON.items():
        allowed = marker.kwargs.get(keyword)
        if allowed is None or fixture not in params:
            continue
        if params[fixture] not in ((allowed,) if isinstance(allowed, str) else tuple(allowed)):
            return False
    return True


def require_service(url: str | None, what: str) -> str:
    """The URL, or skip the test (fail it in CI, where every service must be there)."""
    if url:
        return url
    if IN_CI:
        pytest.fail(f"{what} is required in CI but its URL is not set")
    pytest.skip(f"{what} not configured")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path):
    """A fresh database per test: a SQLite file, or a schema of its own on ``HUB_TEST_DATABASE_URL``."""
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
        conn.execute("SET lock_timeout = '30s'")  # a connection left holding a lock fails the test, not CI
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def hub_plugins() -> list[tuple[str, object]]:
    """The plugins the hub under test loads, as (name, module) pairs. Override it."""
    return []


@pytest.fixture
def hub_environ() -> dict[str, str]:
    """``config.environ`` of the hub under test: where the plugins find their simulators. Override it."""
    return {}


@pytest.fixture
def settings(request, database_url: str, hub_environ: dict[str, str], tmp_path: Path) -> Settings:
    """Override with ``def settings(settings): return msgspec.structs.replace(settings, ...)`` to change one."""
    return Settings(
        home=tmp_path / "home", database_url=database_url, encryption_keys=(ENCRYPTION_KEY,),
        admin_token=ADMIN_TOKEN, public_url=PUBLIC_URL, environ=dict(hub_environ),
        # The kit's receiver is on 127.0.0.1, which the hub refuses to deliver to unless told.
        allow_private_webhook_urls="webhook_receiver" in request.fixturenames,
    )


@pytest.fixture
def hub_factory(hub_plugins):
    """How every Hub of a test is made (the app's, ``live_hub``'s and Redis-mode workers')."""

    def make(settings: Settings) -> Hub:
        return Hub.create(settings, entry_points=False, extra_plugins=hub_plugins)

    return make


@pytest.fixture
async def hub(settings: Settings, hub_factory):
    instance = hub_factory(settings)
    from hub.testing.schema import migrate

    await migrate(instance.engine)
    yield instance
    await instance.aclose()


@pytest.fixture
async def client(hub: Hub, background):
    """The app under test. Litestar's test client runs it on a loop of its own in another thread, so
    anything that must share the app's loop (the embedded worker) starts with the app, as in ``hub serve``.
    Each request blocks the test's own loop until the app answers: never make one while a job running on
    the test's loop holds a lock the request needs."""
    from litestar.testing import AsyncTestClient

    from hub.api.app import BodyLimits, bind

    app = bind(_app_with(BodyLimits.of(hub)), hub, background=background)
    async with AsyncTestClient(app, base_url=PUBLIC_URL) as test_client:
        yield test_client
    hub.dispatch = None


def _app_with(limits):
    """One app per set of body limits in each test process, bound to each test's hub in turn: building a
    Litestar app takes most of a second, which every test would otherwise pay."""
    from hub.api.app import build_app

    if limits not in _APPS:
        _APPS[limits] = build_app(limits)
    return _APPS[limits]


_APPS: dict = {}


@pytest.fixture
async def tenant(client):
    """A tenant with its API key (``tenant.id``, ``tenant.key``, ``tenant.headers``)."""
    return await new_tenant(client)


@pytest.fixture
def live_hub(settings: Settings, hub_factory):
    hub = hub_factory(settings)
    with LiveHub(hub) as live:
        yield live
    asyncio.run(hub.engine.dispose())


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
    runtime = WorkerRuntime(worker_settings, lambda: hub_factory(worker_settings), threads=4, idle_poll_ms=100)
    runtime.start()
    try:
        yield Jobs(SendOnlyJobs(relay=True, broker_url=url), runtime)
    finally:
        runtime.stop()


@pytest.fixture
def background(request):
    """What runs beside the app under test: the jobs, when the test asks for them."""
    return request.getfixturevalue("jobs").background if "jobs" in request.fixturenames else None


@pytest.fixture
def clock(hub: Hub) -> Clock:
    """A ``Clock`` the hub reads (``hub.clock``), starting at the real now: ``clock.advance(3600)``."""
    hub.clock = Clock()
    return hub.clock


@pytest.fixture
def webhook_receiver():
    """A webhook endpoint on 127.0.0.1 that records deliveries and checks their signatures; subscribe it
    with ``await hub.testing.subscribe(client, tenant, webhook_receiver)``."""
    with Receiver() as receiver:
        yield receiver


def _fields(settings: Settings) -> dict:
    return {name: getattr(settings, name) for name in settings.__struct_fields__}
