"""Provider HTTP: retries, Retry-After, logging without secrets, and the per-connection throttle, measured
at a scripted provider on 127.0.0.1 that records when each request arrives. The throttle runs in-process
and on Redis (``HUB_TEST_REDIS_URL``; skipped locally without it, a failure in CI)."""

from __future__ import annotations

import asyncio
import bisect
import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from hub.http import ProviderHttp
from hub.throttle import InProcessThrottle, RedisThrottle, create_throttle
from hub.types import RateLimit
from tests.conftest import REDIS_URL, require_service

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Arrival:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    at: float  # time.monotonic()
    wall: float  # time.time()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        arrived, wall = time.monotonic(), time.time()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        provider = self.server.provider
        url = urlsplit(self.path)
        with provider.lock:
            provider.arrivals.append(Arrival(self.command, url.path, url.query, dict(self.headers), arrived, wall))
            provider.in_flight += 1
            provider.max_in_flight = max(provider.max_in_flight, provider.in_flight)
            status, headers = provider.script.popleft() if provider.script else (200, {})
        time.sleep(provider.latency)
        with provider.lock:  # before the answer leaves: the client cannot have seen it yet
            provider.in_flight -= 1
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: ScriptedProvider

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up


class ScriptedProvider:
    """Answers each request with the next scripted (status, headers), then 200, after ``latency`` seconds."""

    def __init__(self, *, port: int = 0, latency: float = 0.0) -> None:
        self.port = port
        self.latency = latency
        self.arrivals: list[Arrival] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def answer(self, *responses: tuple[int, dict[str, str]] | int) -> None:
        self.script.extend(r if isinstance(r, tuple) else (r, {}) for r in responses)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedProvider:
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.provider = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Sleeps(list):
    """An injected ``sleep`` that records the delays asked for and returns at once."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


@pytest.fixture
def provider():
    with ScriptedProvider() as fake:
        yield fake


@pytest.fixture
async def make_http(provider):
    """ProviderHttp instances, closed before the provider stops."""
    made: list[ProviderHttp] = []

    def make(**kwargs: Any) -> ProviderHttp:
        made.append(ProviderHttp(**kwargs))
        return made[-1]

    yield make
    for http in made:
        await http.aclose()


@pytest.fixture
def redis_url() -> str:
    return require_service(REDIS_URL, "Redis (HUB_TEST_REDIS_URL)")


@pytest.fixture
async def redis_prefix(redis_url: str):
    """A key prefix of this test's own, and every key under it deleted afterwards."""
    import redis.asyncio

    prefix = f"hub-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.asyncio.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["in-process", "redis"])
def new_throttle(request):
    """Throttles of one kind; every Redis throttle made in a test shares that test's key prefix."""
    if request.param == "in-process":
        return InProcessThrottle
    url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    return lambda: RedisThrottle(url, prefix=prefix)


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, start + window) - i for i, start in enumerate(times))


# --- the throttle, measured at the provider ------------------------------------------------------------


async def test_throttle_holds_rate_and_concurrency_at_the_provider(provider, make_http, new_throttle):
    """200 requests queued at once under RateLimit(20, 1.0, concurrency=3); on Redis they come from two
    ProviderHttp instances, as from two processes, that share the one limit."""
    limits = (RateLimit(20, 1.0, concurrency=3),)
    provider.latency = 0.03
    instances = 1 if new_throttle is InProcessThrottle else 2
    kind = "in-process" if instances == 1 else "redis, 2 instances"
    https = [make_http(throttle=new_throttle()) for _ in range(instances)]
    connection = uuid.uuid4()

    started = time.monotonic()
    responses = await asyncio.gather(*(
        https[i % instances].request("GET", f"{provider.url}/items/{i}", provider="acme", connection_id=connection,
                                     rate_limits=limits)
        for i in range(200)
    ))
    elapsed = time.monotonic() - started

    assert [r.status_code for r in responses] == [200] * 200
    arrivals = [a.at for a in provider.arrivals]
    assert len(arrivals) == 200
    busiest = most_in_any_window(arrivals, 1.0)
    print(f"\n{kind}: busiest 1 s window {busiest}, most in flight {provider.max_in_flight}, "
          f"{elapsed:.2f} s for 200")
    assert busiest <= 20
    assert provider.max_in_flight <= 3
    # The 181st request cannot start before 9 s; the upper bound (generous for a loaded CI machine running
    # tests in parallel) says the limit is used, not wasted.
    assert 9.0 <= elapsed < 30.0


async def test_every_declared_limit_applies(new_throttle):
    throttle = new_throttle()
    limits = (RateLimit(3, 0.2), RateLimit(4, 0.6))
    began = time.monotonic()
    starts = []
    try:
        for _ in range(5):
            async with throttle.slot("acme:conn-1", limits):
                starts.append(time.monotonic() - began)
    finally:
        if isinstance(throttle, RedisThrottle):
            await throttle.aclose()
    assert starts[2] < 0.15  # the first three go at once
    assert starts[3] >= 0.2  # 3 per 0.2 s
    assert starts[4] >= 0.6  # 4 per 0.6 s


async def test_a_scoped_limit_holds_only_its_requests_which_also_count_against_the_unscoped_ones(new_throttle):
    """QuickBooks' shape: 4 requests per 0.5 s, of which at most 2 batch requests. A batch request waiting for
    its own limit does not hold up the others."""
    throttle = new_throttle()
    every, batch = RateLimit(4, 0.5), RateLimit(2, 0.5, scope="batch")
    began = time.monotonic()
    starts: dict[str, float] = {}

    async def call(name: str, limits: tuple[RateLimit, ...]) -> None:
        async with throttle.slot("qbo:conn-1", limits):
            starts[name] = time.monotonic() - began

    try:
        for name, limits in (("batch-1", (every, batch)), ("batch-2", (every, batch)), ("batch-3", (every, batch))):
            asyncio.get_running_loop().create_task(call(name, limits))
            await asyncio.sleep(0.01)
        await asyncio.gather(*(call(f"plain-{n}", (every,)) for n in (1, 2, 3)))
        await asyncio.sleep(0.7)
    finally:
        if isinstance(throttle, RedisThrottle):
            await throttle.aclose()
    plain = sorted(starts[f"plain-{n}"] for n in (1, 2, 3))  # on Redis they race: which one waits is chance
    assert max(starts["batch-1"], starts["batch-2"], plain[0], plain[1]) < 0.45  # at once, not a window later
    assert starts["batch-3"] >= 0.5  # 2 batch requests per 0.5 s
    assert plain[2] >= 0.5  # the two batch requests count against the 4 per 0.5 s


def test_a_connections_request_holds_the_unscoped_limits_and_those_of_its_scope():
    every, batch = RateLimit(500, 60, concurrency=10), RateLimit(40, 60, scope="batch")
    http = ProviderHttp().for_connection("quickbooks", "c", (every, batch))
    assert http.limits() == (every,) and http.limits("other") == (every,)
    assert http.limits("batch") == (every, batch)


async def test_connections_are_throttled_apart(provider, make_http):
    http = make_http()
    limits = (RateLimit(1, 10.0),)
    first, second = http.for_connection("acme", "one", limits), http.for_connection("acme", "two", limits)
    assert (await first.request("GET", f"{provider.url}/a")).status_code == 200
    assert (await second.request("GET", f"{provider.url}/b")).status_code == 200  # its own limit
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await first.request("GET", f"{provider.url}/c")  # one per 10 s for this connection
    assert [a.path for a in provider.arrivals] == ["/a", "/b"]


async def test_a_crashed_holder_frees_its_redis_slot_when_its_lease_expires(redis_url, redis_prefix):
    limits = (RateLimit(100, 1.0, concurrency=1),)
    crash = (
        "import asyncio, os, sys\n"
        "from hub.throttle import RedisThrottle\n"
        "from hub.types import RateLimit\n"
        "async def main():\n"
        "    throttle = RedisThrottle(sys.argv[1], prefix=sys.argv[2], lease_seconds=0.5)\n"
        "    async with throttle.slot('acme:conn-1', (RateLimit(100, 1.0, concurrency=1),)):\n"
        "        os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", crash, redis_url, redis_prefix], check=True, cwd=ROOT, timeout=30)
    crashed_at = time.monotonic()
    throttle = RedisThrottle(redis_url, prefix=redis_prefix)
    try:
        async with asyncio.timeout(5):
            async with throttle.slot("acme:conn-1", limits):
                waited = time.monotonic() - crashed_at
    finally:
        await throttle.aclose()
    assert 0.3 <= waited < 1.5


def test_create_throttle_follows_the_broker_url():
    assert isinstance(create_throttle(None), InProcessThrottle)
    assert isinstance(create_throttle("amqp://guest@127.0.0.1//"), InProcessThrottle)
    for url in ("redis://127.0.0.1:6379/15", "rediss://127.0.0.1:6380/0"):
        throttle = create_throttle(url)
        assert isinstance(throttle, RedisThrottle)
        asyncio.run(throttle.aclose())  # never connected: constructing it does no I/O


# --- retries ------------------------------------------------------------------------------------------


async def test_429_is_retried_after_retry_after_seconds_even_on_post(provider, make_http):
    provider.answer((429, {"Retry-After": "1"}))
    response = await make_http().request("POST", f"{provider.url}/charges", json={"amount": 100})
    assert response.status_code == 200
    first, second = provider.arrivals
    assert second.at - first.at >= 1.0


async def test_a_4xx_the_caller_calls_throttled_is_retried_like_a_429_even_on_post(provider, make_http):
    sleeps = Sleeps()
    provider.answer((403, {"X-Reason": "rateLimitExceeded"}), (403, {"Retry-After": "2", "X-Reason": "userRate"}),
                    (403, {"X-Reason": "forbidden"}))
    http = make_http(sleep=sleeps)

    def google_rate_limit(response):
        return response.headers.get("x-reason", "").startswith(("rateLimit", "userRate"))

    first = await http.request("POST", f"{provider.url}/events", json={"a": 1}, throttled=google_rate_limit)
    assert first.status_code == 403 and first.headers["x-reason"] == "forbidden"  # a real 403 is returned
    assert len(provider.arrivals) == 3 and len(sleeps) == 2 and sleeps[1] == 2.0  # Retry-After honoured
    provider.answer(403)
    assert (await http.request("POST", f"{provider.url}/events")).status_code == 403  # no predicate: no retry
    assert len(provider.arrivals) == 4


async def test_retry_after_as_an_http_date_is_honoured(provider, make_http):
    not_before = int(time.time()) + 2
    provider.answer((503, {"Retry-After": formatdate(not_before, usegmt=True)}))
    response = await make_http().request("GET", f"{provider.url}/envelopes/1")
    assert response.status_code == 200
    assert provider.arrivals[1].wall >= not_before


async def test_retry_after_beyond_the_cap_gives_the_response_back(provider, make_http):
    sleeps = Sleeps()
    provider.answer((429, {"Retry-After": "3600"}))
    response = await make_http(sleep=sleeps).request("GET", f"{provider.url}/x")
    assert response.status_code == 429
    assert len(provider.arrivals) == 1 and sleeps == []


async def test_503_on_get_is_retried_until_it_succeeds(provider, make_http):
    sleeps = Sleeps()
    provider.answer(503, 502)
    response = await make_http(sleep=sleeps).request("GET", f"{provider.url}/x")
    assert response.status_code == 200
    assert len(provider.arrivals) == 3 and len(sleeps) == 2


async def test_500_on_a_plain_post_is_not_retried(provider, make_http):
    sleeps = Sleeps()
    provider.answer(500)
    response = await make_http(sleep=sleeps).request("POST", f"{provider.url}/charges", json={"amount": 100})
    assert response.status_code == 500
    assert len(provider.arrivals) == 1 and sleeps == []


async def test_idempotent_false_turns_off_5xx_retries(provider, make_http):
    provider.answer(503)
    response = await make_http(sleep=Sleeps()).request("GET", f"{provider.url}/x", idempotent=False)
    assert response.status_code == 503 and len(provider.arrivals) == 1


@pytest.mark.parametrize("keyed", [
    {"headers": {"Idempotency-Key": "job-42-charge"}},  # Stripe
    {"params": {"requestid": "job-42-invoice", "minorversion": "75"}},  # QuickBooks
    {"idempotent": True},
])
async def test_500_on_an_idempotent_post_is_retried_with_the_same_key(provider, make_http, keyed):
    provider.answer(500, 500)
    response = await make_http(sleep=Sleeps()).request("POST", f"{provider.url}/charges", json={"a": 1}, **keyed)
    assert response.status_code == 200
    assert len(provider.arrivals) == 3
    assert len({a.headers.get("Idempotency-Key") for a in provider.arrivals}) == 1
    assert len({a.query for a in provider.arrivals}) == 1


async def test_max_attempts_then_the_last_response(provider, make_http):
    sleeps = Sleeps()
    provider.answer(*[503] * 10)
    response = await make_http(sleep=sleeps, max_attempts=3).request("GET", f"{provider.url}/x")
    assert response.status_code == 503
    assert len(provider.arrivals) == 3 and len(sleeps) == 2


async def test_backoff_grows_exponentially_with_full_jitter_and_a_cap(provider, make_http, monkeypatch):
    provider.answer(*[503] * 20)
    jittered = Sleeps()
    await make_http(sleep=jittered, max_attempts=6, backoff_base=0.5, backoff_max=3.0).request("GET", provider.url)
    assert all(0 <= delay <= cap for delay, cap in zip(jittered, [0.5, 1.0, 2.0, 3.0, 3.0], strict=True))

    monkeypatch.setattr("hub.http.random.uniform", lambda low, high: high)  # the top of each jitter range
    ceilings = Sleeps()
    await make_http(sleep=ceilings, max_attempts=6, backoff_base=0.5, backoff_max=3.0).request("GET", provider.url)
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connect_error_is_retried_until_the_provider_listens():
    late = ScriptedProvider(port=free_port())
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:  # the provider comes up while we back off
        sleeps.append(delay)
        late.__enter__()

    http = ProviderHttp(sleep=sleep)
    try:
        response = await http.request("POST", f"{late.url}/charges", json={"a": 1})
        assert response.status_code == 200
        assert len(sleeps) == 1 and len(late.arrivals) == 1
    finally:
        await http.aclose()
        if sleeps:
            late.__exit__()


async def test_a_refused_connection_gives_up_after_max_attempts(make_http, caplog):
    caplog.set_level(logging.INFO, logger="hub.http")
    sleeps = Sleeps()
    with pytest.raises(httpx.ConnectError):
        await make_http(sleep=sleeps, max_attempts=3).request("GET", f"http://127.0.0.1:{free_port()}/x")
    assert len(sleeps) == 2
    attempts = [r for r in caplog.records if hasattr(r, "duration_ms")]
    assert [(r.attempt, r.status) for r in attempts] == [(1, "ConnectError"), (2, "ConnectError"), (3, "ConnectError")]


async def test_read_timeout_is_retried_only_when_idempotent(provider, make_http):
    provider.latency = 0.5
    http = make_http(sleep=Sleeps(), max_attempts=2)
    with pytest.raises(httpx.ReadTimeout):
        await http.request("POST", f"{provider.url}/charges", json={"a": 1}, timeout=0.1)
    assert len(provider.arrivals) == 1
    with pytest.raises(httpx.ReadTimeout):
        await http.request("GET", f"{provider.url}/charges/1", timeout=0.1)
    assert len(provider.arrivals) == 3


# --- logging ------------------------------------------------------------------------------------------


async def test_each_attempt_is_logged_without_query_string_or_headers(provider, make_http, caplog):
    caplog.set_level(logging.INFO, logger="hub.http")
    provider.answer((503, {"Retry-After": "0"}))
    connection = uuid.uuid4()
    http = make_http().for_connection("quickbooks", connection, ())
    response = await http.request(
        "GET", f"{provider.url}/v3/company/1/query?query=select-secret-1", params={"token": "query-secret-2"},
        headers={"Authorization": "Bearer header-secret-3"},
    )
    assert response.status_code == 200
    records = [r for r in caplog.records if r.name == "hub.http"]
    messages = [r.getMessage() for r in records]
    assert messages[0].startswith("GET 127.0.0.1/v3/company/1/query 503 ")
    assert "attempt=1" in messages[0] and "provider=quickbooks" in messages[0] and str(connection) in messages[0]
    assert messages[1].startswith("retrying GET 127.0.0.1/v3/company/1/query after 503 in 0.00s")
    assert messages[2].startswith("GET 127.0.0.1/v3/company/1/query 200 ") and "attempt=2" in messages[2]
    last = records[2]
    assert (last.method, last.host, last.path, last.status, last.attempt) == (
        "GET", "127.0.0.1", "/v3/company/1/query", 200, 2)
    assert (last.provider, last.connection) == ("quickbooks", str(connection)) and last.duration_ms >= 0
    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    for secret in ("select-secret-1", "query-secret-2", "header-secret-3", "Bearer", "?"):
        assert secret not in everything


# --- a connection's HTTP ------------------------------------------------------------------------------


class RecordingThrottle:
    def __init__(self) -> None:
        self.slots: list[tuple[str, tuple[RateLimit, ...]]] = []

    def slot(self, key: str, limits: tuple[RateLimit, ...]):
        self.slots.append((key, limits))
        return InProcessThrottle().slot(key, limits)


async def test_a_connection_is_throttled_by_provider_and_connection_id(provider, make_http):
    throttle = RecordingThrottle()
    http = make_http(throttle=throttle)
    limits = (RateLimit(500, 60.0, concurrency=10),)
    connection = uuid.uuid4()
    await http.for_connection("quickbooks", connection, limits).request("GET", provider.url, provider="ignored")
    await http.request("GET", provider.url, provider="quickbooks")  # unbound, no limits: not throttled
    assert throttle.slots == [(f"quickbooks:{connection}", limits)]


class CardDeclined(Exception):
    http_status = 402


async def test_call_sdk_runs_blocking_calls_in_threads_inside_the_throttle_and_logs_them(make_http, caplog):
    caplog.set_level(logging.INFO, logger="hub.http")
    connection = uuid.uuid4()
    http = make_http().for_connection("stripe", connection, (RateLimit(2, 0.3, concurrency=1),))
    calls: list[tuple[float, float, int]] = []
    running = 0
    most_running = 0
    lock = threading.Lock()

    def create_charge(amount: int, *, currency: str) -> dict[str, Any]:  # a vendor SDK: blocking HTTP
        nonlocal running, most_running
        with lock:
            running += 1
            most_running = max(most_running, running)
        began = time.monotonic()
        time.sleep(0.05)
        with lock:
            running -= 1
        calls.append((began, time.monotonic(), threading.get_ident()))
        return {"amount": amount, "currency": currency}

    results = await asyncio.gather(*(
        http.call_sdk(create_charge, 100 * i, currency="usd", method="post", path="/v1/charges") for i in range(4)
    ))
    assert results == [{"amount": 100 * i, "currency": "usd"} for i in range(4)]
    assert most_running == 1
    assert threading.get_ident() not in {thread for _, _, thread in calls}
    calls.sort()
    assert calls[2][0] >= calls[0][1] + 0.3  # 2 per 0.3 s, counted until each call came back

    def declined() -> None:
        raise CardDeclined("card declined")

    with pytest.raises(CardDeclined):
        await http.call_sdk(declined, method="POST", path="/v1/charges")
    records = [r for r in caplog.records if r.name == "hub.http"]
    assert [(r.method, r.path, r.status, r.provider, r.connection) for r in records] == (
        [("POST", "/v1/charges", 200, "stripe", str(connection))] * 4 + [("POST", "/v1/charges", 402, "stripe",
                                                                            str(connection))]
    )
    assert records[-1].getMessage().startswith("POST (sdk)/v1/charges 402 ")
