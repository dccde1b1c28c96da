"""The one HTTP client every plugin uses to reach its provider.

One shared ``httpx.AsyncClient`` per process, timeouts always, and a log line per request with the
method, host, path, status, duration and attempt — never the query string, headers or body, where
tokens and secrets live.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

log = logging.getLogger("hub.http")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ProviderHttp:
    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False)

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def request(self, method: str, url: str, *, provider: str | None = None, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        target = httpx.URL(url)
        status: int | str = "error"
        try:
            response = await self._client.request(method, url, **kwargs)
            status = response.status_code
            return response
        finally:
            log.info(
                "provider request",
                extra={
                    "provider": provider,
                    "method": method,
                    "host": target.host,
                    "path": target.path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "attempt": 1,
                },
            )

    async def aclose(self) -> None:
        await self._client.aclose()
