"""Per-connection throttles that keep a provider's declared rate limits as the provider counts them.

Every ``RateLimit(requests, per_seconds, concurrency)`` a request is given applies at once: at most
``requests`` requests reach the provider in any sliding interval of ``per_seconds``, and at most
``concurrency`` are in flight. Requests of one key given different limits (a scoped limit on top of the
unscoped ones) share the limits they have in common.

A request counts against a window from the moment it may start until ``per_seconds`` after its response
has come back. The provider receives it somewhere in between, so however long the network takes, no
interval of ``per_seconds`` at the provider ever holds more than ``requests`` arrivals. The price is one
round trip per window of throughput.

Dramatiq's rate limiters were considered and not used: ``WindowRateLimiter`` counts fixed buckets, so
with a 1-second window twice the limit gets through across a bucket boundary, and it keeps one key per
second of window (3,600 keys for DocuSign's hourly limit). Both throttles here keep a strict sliding log.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from hub.ids import new_id
from hub.types import RateLimit

if TYPE_CHECKING:
    import redis.asyncio


class Throttle(Protocol):
    def slot(self, key: str, limits: tuple[RateLimit, ...]) -> AbstractAsyncContextManager[None]:
        """Wait until one more request under ``key`` keeps every limit; hold the slot while it runs."""
        ...


def concurrency_of(limits: tuple[RateLimit, ...]) -> int | None:
    caps = [limit.concurrency for limit in limits if limit.concurrency is not None]
    return min(caps) if caps else None


class _KeyState:
    """One key's sliding log of finished requests and count of requests in flight, per limit. A request
    holds the limits it was given (every unscoped one, and those of its scope), so requests of different
    scopes share the limits they have in common."""

    def __init__(self) -> None:
        self.finished: dict[RateLimit, deque[float]] = {}
        self.in_flight: dict[RateLimit, int] = {}
        self.turns: dict[tuple[RateLimit, ...], asyncio.Lock] = {}
        """Waiters with the same limits queue in arrival order: no thundering herd."""
        self.released = asyncio.Event()

    def delay(self, limits: tuple[RateLimit, ...], now: float) -> float | None:
        """0 when a request may start now, else seconds until it may, or None to wait for a release."""
        delay = 0.0
        for limit in limits:
            finished = self.finished.setdefault(limit, deque())
            in_flight = self.in_flight.get(limit, 0)
            if limit.concurrency is not None and in_flight >= limit.concurrency:
                return None
            while finished and finished[0] <= now - limit.per_seconds:
                finished.popleft()
            if in_flight + len(finished) >= limit.requests:
                if not finished:  # every request in the window is still in flight
                    return None
                delay = max(delay, finished[0] + limit.per_seconds - now)
        return delay

    def acquire(self, limits: tuple[RateLimit, ...]) -> None:
        for limit in limits:
            self.in_flight[limit] = self.in_flight.get(limit, 0) + 1

    def release(self, limits: tuple[RateLimit, ...], now: float) -> None:
        for limit in limits:
            self.in_flight[limit] -= 1
            self.finished[limit].append(now)
        self.released.set()


class InProcessThrottle:
    """The throttle for one process (asyncio). Use ``RedisThrottle`` when several processes share a limit."""

    def __init__(self) -> None:
        self._keys: dict[str, _KeyState] = {}

    @asynccontextmanager
    async def slot(self, key: str, limits: tuple[RateLimit, ...]) -> AsyncIterator[None]:
        if not limits:
            yield
            return
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
        turn = state.turns.get(limits)
        if turn is None:
            turn = state.turns[limits] = asyncio.Lock()
        async with turn:
            while (delay := state.delay(limits, time.monotonic())) != 0:
                state.released.clear()
                try:
                    async with asyncio.timeout(delay):
                        await state.released.wait()
                except TimeoutError:
                    pass
            state.acquire(limits)
        try:
            yield
        finally:
            state.release(limits, time.monotonic())


# KEYS: the in-flight lease set, then one sliding log per limit.
# ARGV: lease id, lease seconds, concurrency (0: none), then requests and window seconds per limit.
# Returns 0 when acquired, else the milliseconds to wait, or -1 when only a release can free a slot.
# Entries in flight are scored by their lease expiry (so they stay in the window, and a crashed holder's
# entry goes away); release re-scores them with the time the response came back.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease, lease_seconds, concurrency = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local wait, unknown = 0, false
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if concurrency > 0 and redis.call('ZCARD', KEYS[1]) >= concurrency then unknown = true end
for i = 2, #KEYS do
  local requests, window = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= requests then
    local oldest = tonumber(redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')[2])
    if oldest > now then unknown = true else wait = math.max(wait, oldest + window - now) end
  end
end
if wait > 0 then return math.ceil(wait * 1000) end
if unknown then return -1 end
redis.call('ZADD', KEYS[1], now + lease_seconds, lease)
redis.call('PEXPIRE', KEYS[1], math.ceil(lease_seconds * 1000))
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease_seconds, lease)
  redis.call('PEXPIRE', KEYS[i], math.ceil((lease_seconds + tonumber(ARGV[2 * i + 1])) * 1000))
end
return 0
"""

_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREM', KEYS[1], ARGV[1])
for i = 2, #KEYS do redis.call('ZADD', KEYS[i], 'XX', now, ARGV[1]) end
return 0
"""


class RedisThrottle:
    """The throttle shared by every process and machine on one Redis: a sliding log per limit in a sorted
    set, and the requests in flight as a sorted set of leases scored by expiry, all on Redis's clock.
    Requests of every scope share the one in-flight set, so a scoped limit's ``concurrency`` counts them all.

    A holder that crashes keeps its slot for at most ``lease_seconds`` (longer than any request runs).
    Waiters poll: exactly when the window frees a slot, every ``poll_seconds`` while only a release can.
    """

    def __init__(
        self, url: str, *, prefix: str = "hub:throttle:", lease_seconds: float = 300.0, poll_seconds: float = 0.02
    ) -> None:
        import redis.asyncio

        self._redis: redis.asyncio.Redis = redis.asyncio.Redis.from_url(url)
        self._prefix = prefix
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)

    def _keys(self, key: str, limits: tuple[RateLimit, ...]) -> list[str]:
        base = f"{self._prefix}{{{key}}}"  # one hash slot per key, for Redis Cluster
        return [f"{base}:in-flight"] + [
            f"{base}:log:{f'{limit.scope}:' if limit.scope else ''}{limit.requests}/{limit.per_seconds}"
            for limit in limits]

    @asynccontextmanager
    async def slot(self, key: str, limits: tuple[RateLimit, ...]) -> AsyncIterator[None]:
        if not limits:
            yield
            return
        keys = self._keys(key, limits)
        lease = new_id().hex
        args: list[str | float | int] = [lease, self._lease_seconds, concurrency_of(limits) or 0]
        for limit in limits:
            args += [limit.requests, limit.per_seconds]
        try:
            while (wait_ms := int(await self._acquire(keys=keys, args=args))) != 0:
                await asyncio.sleep(wait_ms / 1000 if wait_ms > 0 else self._poll_seconds * random.uniform(0.5, 1.5))
        except BaseException:
            await self._release(keys=keys, args=[lease])  # in case the script ran before we were interrupted
            raise
        try:
            yield
        finally:
            await self._release(keys=keys, args=[lease])

    async def aclose(self) -> None:
        await self._redis.aclose()


def create_throttle(broker_url: str | None) -> Throttle:
    """Redis when the hub's broker is Redis (every worker and API process then shares each limit), else
    one throttle per process."""
    if broker_url and broker_url.startswith(("redis://", "rediss://")):
        return RedisThrottle(broker_url)
    return InProcessThrottle()
