"""The guard that keeps webhook deliveries off private networks (server-side request forgery).

A tenant chooses the URL, so without a guard the hub would POST wherever it is told: to its own admin
API on 127.0.0.1, a database on 10.x, or the cloud metadata service at 169.254.169.254. The guard
refuses every address that is not global unicast: loopback, private (RFC 1918, fc00::/7), shared
(100.64/10), link-local (169.254/16 — the metadata services — and fe80::/10), unspecified, multicast,
reserved, and IPv6 forms that carry one of those IPv4 addresses (``::ffff:10.0.0.1``, 6to4, NAT64).

It runs twice: when an endpoint is created or its URL changed (a clear 422), and when a connection is
opened to send (DNS can change in between). At send time the check and the connect are one step: the
connection pool's network backend resolves the host, checks every address, and connects to a checked
address — so a name that resolves to a public address for the check and to 127.0.0.1 a moment later
(DNS rebinding) cannot slip through. The pool still keys connections by host name, so TLS verifies the
certificate for the host name and a keep-alive connection is never shared between two names.
Redirects are not followed, and proxies from the environment are ignored (a proxy would connect for us).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import typing
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from hub.errors import ValidationFailed
from hub.http import tls_context

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``resolve(host, port)`` -> the host's addresses, as strings."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_LENGTH = 2048


class UnsafeUrl(ValidationFailed):
    """The URL is not one the hub will deliver to."""

    code = "webhook_url_not_allowed"


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(ip: IPAddress) -> bool:
    """True for a global unicast address: the only kind the hub delivers to unless the operator allows more."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if ip.teredo is not None:
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback or ip.is_private
        or ip.is_unspecified
    )


def parse_url(url: str) -> httpx.URL:
    """An http(s) URL with a host and no credentials, or a 422 saying what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the URL is longer than {MAX_URL_LENGTH} characters", code="invalid_webhook_url")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise UnsafeUrl("not a valid URL", code="invalid_webhook_url") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UnsafeUrl("the URL must be http:// or https:// with a host", code="invalid_webhook_url")
    if parsed.userinfo:
        raise UnsafeUrl("the URL must not carry a user name or password", code="invalid_webhook_url")
    return parsed


class AddressGuard:
    """Resolves a host and refuses it unless every address it resolves to is public.

    ``loopback_only`` turns it round, for a hub that must reach nothing but this machine (demo mode,
    ``HUB_LOOPBACK_ONLY``): only loopback addresses and ``localhost`` pass, and no other name is even
    looked up."""

    def __init__(self, *, allow_private: bool = False, loopback_only: bool = False,
                 resolver: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self.loopback_only = loopback_only
        self.resolver = resolver or system_resolver

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, all checked; ``UnsafeUrl`` when one is not allowed."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if self.loopback_only and literal is None and host.lower() != "localhost":
            raise UnsafeUrl(f"{host}: this hub connects only to loopback addresses (HUB_LOOPBACK_ONLY)",
                            code="loopback_only")
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = await self.resolver(host, port)
            except OSError:
                raise UnsafeUrl(f"{host} does not resolve", code="webhook_url_unresolvable") from None
            if not found:
                raise UnsafeUrl(f"{host} does not resolve", code="webhook_url_unresolvable")
        if self.loopback_only:
            for address in found:
                if not ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
                    raise UnsafeUrl(f"{host} is not a loopback address; this hub connects only to loopback "
                                    "addresses (HUB_LOOPBACK_ONLY)", code="loopback_only")
        elif not self.allow_private:
            for address in found:
                try:
                    ip = ipaddress.ip_address(address.split("%", 1)[0])
                except ValueError:
                    raise UnsafeUrl(f"{host} resolves to an address the hub cannot check") from None
                if not is_public(ip):
                    what = host if literal is not None else f"{host} resolves to {ip}, which"
                    raise UnsafeUrl(f"{what} is a private, loopback, link-local or reserved address; "
                                    "webhooks go only to public addresses")
        return found

    async def check_url(self, url: str) -> httpx.URL:
        """Refuse a URL whose host is not public now (at create and update time)."""
        parsed = parse_url(url)
        if self.loopback_only or not self.allow_private:
            await self.addresses(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
        return parsed


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the guard in ``connect_tcp``: connects only to checked addresses.
    ``backend`` is what really connects (httpcore's default); tests pass one that records instead."""

    def __init__(self, guard: AddressGuard, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.guard.addresses(host, port):
            try:
                return await self.backend.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                      socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[typing.Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise UnsafeUrl("webhooks are not delivered to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


@contextlib.contextmanager
def _httpx_errors() -> typing.Iterator[None]:
    """httpcore's errors as httpx's (the classes share their names)."""
    try:
        yield
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise getattr(httpx, type(exc).__name__, httpx.TransportError)(str(exc)) from exc


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose every connection goes through ``GuardedBackend``.

    One small connection pool per origin rather than one big pool: httpcore matches each queued request
    against every connection of its pool, which costs O(requests x connections) per event and dominated
    the sender's time with a hundred requests in flight; the sender caps the requests per endpoint anyway.
    Pools idle longest are closed beyond ``max_pools``."""

    def __init__(self, guard: AddressGuard, *, backend: httpcore.AsyncNetworkBackend | None = None,
                 connections_per_origin: int = 8, max_pools: int = 1024, keepalive_expiry: float = 30.0) -> None:
        self._backend = GuardedBackend(guard, backend)
        self._ssl_context = tls_context(trust_env=False)
        self._per_origin = connections_per_origin
        self._max_pools = max_pools
        self._keepalive_expiry = keepalive_expiry
        self._pools: OrderedDict[tuple[bytes, bytes, int | None], httpcore.AsyncConnectionPool] = OrderedDict()

    async def _pool(self, url: httpx.URL) -> httpcore.AsyncConnectionPool:
        origin = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = httpcore.AsyncConnectionPool(
                ssl_context=self._ssl_context, max_connections=self._per_origin,
                max_keepalive_connections=self._per_origin, keepalive_expiry=self._keepalive_expiry,
                network_backend=self._backend)
            while len(self._pools) > self._max_pools:
                _, oldest = self._pools.popitem(last=False)
                await oldest.aclose()
        else:
            self._pools.move_to_end(origin)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                             target=request.url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        pool = await self._pool(request.url)
        with _httpx_errors():
            response = await pool.handle_async_request(core_request)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_ResponseStream(response.stream), extensions=response.extensions)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()
