"""google-api-python-client on the hub's HTTP client.

The client is synchronous and talks through an httplib2-style ``http`` object (``request(uri, method, body,
headers)`` -> ``(response, content)``). ``HubHttp`` is that object: it runs in the worker thread the client
call runs in, and hands every request to the hub's ``ctx.http`` on the event loop
(``asyncio.run_coroutine_threadsafe``), so the connection's rate limits, retries with ``Retry-After`` and the
redacted request log apply to the SDK's requests exactly as to any other. The client's own retries stay off
(``num_retries=0``, its default): the hub's client is the one place that retries.

The Drive service is built once per API root from the discovery document shipped in the package
(``static_discovery=True``: no network) and pointed at ``client_options.api_endpoint``; each call passes its
own ``HubHttp`` to ``execute``/``next_chunk``, so one built service serves every connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httplib2
import httpx
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

Send = Callable[..., Awaitable[httpx.Response]]
RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded"})
"""``ctx.http.request`` (or ``ProviderHttp.request`` bound to the provider, during the connect flow)."""

logging.getLogger("googleapiclient.discovery_cache").setLevel(logging.ERROR)


class _Unbound:
    """The http a shared service is built with: every call must bring its own ``HubHttp``."""

    def request(self, *args: Any, **kwargs: Any):
        raise RuntimeError("a Drive request was executed without the hub's http (pass http=HubHttp(...))")


@functools.lru_cache(maxsize=8)
def drive_service(api_root: str):
    return build("drive", "v3", http=_Unbound(), static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": api_root})


def google_rate_limited(response: httpx.Response) -> bool:
    """Google says "slow down" with 403 as well as 429: ``{"error": {"errors": [{"reason":
    "userRateLimitExceeded"}]}}``. The hub's client retries those like a 429."""
    if response.status_code != 403:
        return False
    try:
        errors = response.json()["error"]["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return any(isinstance(e, dict) and e.get("reason") in RATE_LIMIT_REASONS for e in errors)


class HubHttp:
    """An ``httplib2.Http`` stand-in that sends through the hub's client, with the caller's access token
    applied by google-auth's ``Credentials``."""

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop, access_token: str, api_root: str) -> None:
        self._send = send
        self._loop = loop
        self._credentials = Credentials(token=access_token)
        root = urlsplit(api_root)
        self._scheme, self._netloc = root.scheme, root.netloc

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
                redirections: int = 5, connection_type: Any = None) -> tuple[httplib2.Response, bytes]:
        headers = {k.lower(): str(v) for k, v in (headers or {}).items()}
        self._credentials.apply(headers)
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        content_range = headers.get("content-range", "")
        # A chunk of a resumable upload is never repeated blindly: after a failure the upload asks the
        # session how much arrived (an empty PUT with ``bytes */size``) and goes on from there.
        idempotent = False if method == "PUT" and content_range and not content_range.startswith("bytes */") else None
        future = asyncio.run_coroutine_threadsafe(
            self._send(method, self._same_scheme(uri), content=body, headers=headers, idempotent=idempotent,
                       throttled=google_rate_limited),
            self._loop)
        response = future.result()
        info = {k.lower(): v for k, v in response.headers.items()}
        info["status"] = str(response.status_code)
        return httplib2.Response(info), response.content

    def _same_scheme(self, uri: str) -> str:
        """googleapiclient moves media-upload URLs to the api_endpoint's host but keeps ``https``."""
        parts = urlsplit(uri)
        if parts.netloc == self._netloc and parts.scheme != self._scheme:
            return urlunsplit(parts._replace(scheme=self._scheme))
        return uri
