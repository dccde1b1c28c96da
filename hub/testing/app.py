"""The hub under test: tenants through the admin API, the app served over real HTTP, polling helpers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from hub.runtime import Hub

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
ENCRYPTION_KEY = "q0eDJi4JuQkMDdFs3nXgBEpm-bDDdH8xd_IoFhPkW2c"
PUBLIC_URL = "http://127.0.0.1:8000"


@dataclass
class TenantHandle:
    id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def new_tenant(client, name: str = "Acme Builders") -> TenantHandle:
    """A tenant made through ``POST /v1/admin/tenants``, with its first API key."""
    response = await client.post(
        "/v1/admin/tenants", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return TenantHandle(uuid.UUID(body["tenant"]["id"]), body["api_key"]["key"])


class LiveHub:
    """The hub served by uvicorn over real HTTP on 127.0.0.1, in a thread of the test process."""

    def __init__(self, hub: Hub) -> None:
        import uvicorn

        from hub.api.app import create_app

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


async def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate.__name__}")
        await asyncio.sleep(every)
