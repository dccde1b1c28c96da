"""The one HTTP client every plugin uses to reach its provider.

One shared ``httpx.AsyncClient`` per process, timeouts always, retries with exponential backoff and full
jitter, Retry-After honoured, each connection throttled to its provider's declared rate limits
(``hub.throttle``), and a log line per attempt with the method, host, path, status, duration and attempt
— never the query string, headers or body, where tokens and secrets live.

What is retried:

- connect errors: the request never left, so it is always safe;
- 429: the provider did not process the request; and a response the caller's ``throttled(response)`` says
  is the provider's way of saying the same (Google answers some rate limits with a 403 whose reason is
  ``rateLimitExceeded``), which is retried like a 429;
- 500/502/503/504 and read timeouts or dropped connections, only when the request is idempotent: GET,
  HEAD, OPTIONS, PUT, DELETE, or one carrying an idempotency key (an ``Idempotency-Key`` header, as
  Stripe takes, or a ``requestid`` query parameter, as QuickBooks takes), or ``idempotent=True``.
  ``idempotent=False`` turns this off.

The request is built once, so every attempt sends the same headers and the same idempotency key. After
``max_attempts`` the last response is returned (or the last error raised): callers decide what a 4xx or
5xx means.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from hub.metrics import PROVIDER_REQUESTS, PROVIDER_RETRIES, PROVIDER_SECONDS
from hub.throttle import InProcessThrottle, Throttle
from hub.types import RateLimit

log = logging.getLogger("hub.http")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_RETRY_AFTER = 120.0
"""A provider asking to wait longer than this gets its response back instead of a sleeping job."""
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES_IF_IDEMPOTENT = frozenset({500, 502, 503, 504})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
MAYBE_PROCESSED = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Sent, but no answer came back: retried only when the request is idempotent."""
SEND_KWARGS = ("auth", "follow_redirects")


@functools.cache
def tls_context(trust_env: bool = True) -> ssl.SSLContext:
    """One verifying TLS context per process (and ``trust_env``): loading the CA bundle takes about 0.1 s,
    which every new client would otherwise pay again."""
    return httpx.create_ssl_context(trust_env=trust_env)


def is_idempotent(request: httpx.Request, idempotent: bool | None) -> bool:
    if idempotent is not None:
        return idempotent
    return (
        request.method in IDEMPOTENT_METHODS
        or "idempotency-key" in request.headers
        or "requestid" in request.url.params
    )


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the provider asks us to wait (``Retry-After`` as delta-seconds or an HTTP-date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def sdk_status(exc: BaseException) -> int | str:
    for name in ("status", "http_status", "status_code"):
        value = getattr(exc, name, None)
        if isinstance(value, int):
            return value
    return type(exc).__name__


def log_attempt(
    method: str, host: str | None, path: str, status: int | str, started: float, attempt: int,
    provider: str | None, connection: str | None,
) -> None:
    elapsed = time.perf_counter() - started
    duration_ms = round(elapsed * 1000, 1)
    PROVIDER_REQUESTS.labels(provider or "unknown", str(status)).inc()
    PROVIDER_SECONDS.labels(provider or "unknown").observe(elapsed)
    log.info(
        "%s %s%s %s %.1fms attempt=%d provider=%s connection=%s",
        method, host or "(sdk)", path, status, duration_ms, attempt, provider, connection,
        extra={
            "method": method, "host": host, "path": path, "status": status, "duration_ms": duration_ms,
            "attempt": attempt, "provider": provider, "connection": connection,
        },
    )


class ProviderHttp:
    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        throttle: Throttle | None = None,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._client = client or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False,
                                                   verify=tls_context())
        self._throttle = throttle or InProcessThrottle()
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    @property
    def throttle(self) -> Throttle:
        return self._throttle

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform between 0 and base * 2**(attempt-1), capped at ``backoff_max``."""
        return random.uniform(0, min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1)))

    def _slot(
        self, provider: str | None, connection_id: Any, limits: tuple[RateLimit, ...]
    ) -> contextlib.AbstractAsyncContextManager[None]:
        if not limits:
            return contextlib.nullcontext()
        return self._throttle.slot(f"{provider}:{connection_id}", limits)

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        provider: str | None = None,
        connection_id: Any = None,
        rate_limits: tuple[RateLimit, ...] = (),
        idempotent: bool | None = None,
        throttled: Callable[[httpx.Response], bool] | None = None,
        **httpx_kwargs: Any,
    ) -> httpx.Response:
        send_kwargs = {name: httpx_kwargs.pop(name) for name in SEND_KWARGS if name in httpx_kwargs}
        request = self._client.build_request(method.upper(), url, **httpx_kwargs)
        safe_to_repeat = is_idempotent(request, idempotent)
        connection = None if connection_id is None else str(connection_id)
        host, path = request.url.host, request.url.path
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self._max_attempts
            started = time.perf_counter()
            try:
                async with self._slot(provider, connection_id, rate_limits):
                    started = time.perf_counter()
                    response = await self._client.send(request, **send_kwargs)
            except httpx.TransportError as exc:
                log_attempt(request.method, host, path, type(exc).__name__, started, attempt, provider, connection)
                if last or not (isinstance(exc, NEVER_SENT) or (safe_to_repeat and isinstance(exc, MAYBE_PROCESSED))):
                    raise
                delay = self.backoff(attempt)
                reason = type(exc).__name__
            else:
                status = response.status_code
                log_attempt(request.method, host, path, status, started, attempt, provider, connection)
                limited = status == 429 or (throttled is not None and 400 <= status < 500 and throttled(response))
                if last or not (limited or (safe_to_repeat and status in RETRY_STATUSES_IF_IDEMPOTENT)):
                    return response
                asked = retry_after(response) if limited or status == 503 else None
                if asked is not None and asked > MAX_RETRY_AFTER:
                    return response
                delay = self.backoff(attempt) if asked is None else asked
                reason = str(status)
                await response.aclose()
            PROVIDER_RETRIES.labels(provider or "unknown", reason).inc()
            log.info(
                "retrying %s %s%s after %s in %.2fs (attempt %d of %d)",
                request.method, host, path, reason, delay, attempt + 1, self._max_attempts,
                extra={"method": request.method, "host": host, "path": path, "status": reason, "retry_in": delay,
                       "attempt": attempt, "provider": provider, "connection": connection},
            )
            await self._sleep(delay)

    def for_connection(self, provider: str, connection_id: Any, rate_limits: tuple[RateLimit, ...]) -> ConnectionHttp:
        return ConnectionHttp(self, provider, connection_id, rate_limits)

    async def aclose(self) -> None:
        await self._client.aclose()
        close = getattr(self._throttle, "aclose", None)
        if close is not None:
            await close()


class ConnectionHttp:
    """``ctx.http``: the shared client bound to one connection and its provider's rate limits."""

    def __init__(self, http: ProviderHttp, provider: str, connection_id: Any, rate_limits: tuple[RateLimit, ...]):
        self._http = http
        self.provider = provider
        self.connection_id = connection_id
        self.rate_limits = rate_limits

    def limits(self, scope: str | None = None) -> tuple[RateLimit, ...]:
        """The limits a request of ``scope`` holds: every unscoped one, and those declared for that scope."""
        return tuple(limit for limit in self.rate_limits if limit.scope is None or limit.scope == scope)

    async def request(
        self, method: str, url: str | httpx.URL, *, idempotent: bool | None = None, provider: str | None = None,
        scope: str | None = None, throttled: Callable[[httpx.Response], bool] | None = None, **httpx_kwargs: Any,
    ) -> httpx.Response:
        """``scope`` names a kind of request with limits of its own (``RateLimit(scope=...)``), such as
        QuickBooks' batch requests. ``throttled(response)`` says whether a 4xx other than 429 is the provider's
        rate-limit answer (Google's 403 ``rateLimitExceeded``): it is then retried like a 429. ``provider`` is
        accepted for code written against ``ProviderHttp`` and ignored."""
        return await self._http.request(
            method, url, provider=self.provider, connection_id=self.connection_id, rate_limits=self.limits(scope),
            idempotent=idempotent, throttled=throttled, **httpx_kwargs,
        )

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the connection's throttle slots, for a vendor SDK call that does its own HTTP."""
        return self._http._slot(self.provider, self.connection_id, self.limits())

    async def call_sdk(self, fn: Callable[..., Any], *args: Any, method: str, path: str, **kwargs: Any) -> Any:
        """Run a blocking vendor-SDK call in a thread inside a throttle slot, logged like ``request``.

        The status logged is the exception's ``status``/``http_status``/``status_code`` when the SDK
        raises, else 200. The SDK's own retries, if enabled, happen inside the one slot: keep them off.
        """
        connection = None if self.connection_id is None else str(self.connection_id)
        async with self.slot():
            started = time.perf_counter()
            status: int | str = 200
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except BaseException as exc:
                status = sdk_status(exc)
                raise
            finally:
                log_attempt(method.upper(), None, path, status, started, 1, self.provider, connection)
