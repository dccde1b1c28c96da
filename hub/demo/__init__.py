"""Demo mode (``hub serve --demo``): every installed plugin on its own simulator, a demo tenant connected to
each, and a walk-through of curl commands whose webhooks arrive, signed, at a local receiver.

Each plugin publishes its kit adapter (``hub.testing.adapter.ProviderAdapter``) under the ``hub.demo``
entry point group; the adapter starts the plugin's simulator, says which environment points the plugin at
it, connects a tenant, and names the plugin's walk-through steps and provider-side triggers. The hub runs
on its embedded defaults in a throwaway home, with ``HUB_LOOPBACK_ONLY``: every connection it opens, to a
provider or a webhook endpoint, must be to this machine, so nothing in demo mode can reach a real provider.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from hub.demo.console import DemoConsole
from hub.testing.adapter import DemoPlace, DemoStep, ProviderAdapter
from hub.testing.simulator import Simulator

ENTRY_POINT_GROUP = "hub.demo"
DROPPED_ENVIRONMENT = ("HUB_DATABASE_URL", "HUB_BROKER_URL", "HUB_ENCRYPTION_KEYS", "HUB_FILES_DIR", "HUB_HOME",
                       "HUB_ADMIN_TOKEN", "HUB_PUBLIC_URL")
"""Demo mode runs on the embedded defaults in a home of its own, whatever the operator's environment says."""


def installed_adapters(providers: Iterable[str]) -> dict[str, ProviderAdapter]:
    """The ``hub.demo`` adapters of the given (loaded) providers."""
    from importlib.metadata import entry_points

    wanted = set(providers)
    found: dict[str, ProviderAdapter] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in wanted:
            adapter = entry.load()()
            found[adapter.provider] = adapter
    return found


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Demo:
    """The hub, its simulators and the console, served on ``host:port`` (0: a free port).

    ``with Demo(port=0) as demo:`` serves from a thread and returns once the tenant is connected (tests);
    ``Demo().run()`` serves in the calling thread until interrupted (the CLI)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8000, home: Path | None = None,
                 echo: Callable[[str], None] = _stderr, environ: Mapping[str, str] | None = None) -> None:
        self.echo = echo
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
        self.url = f"http://{shown}:{self._socket.getsockname()[1]}"
        self._tmp = None if home is not None else tempfile.TemporaryDirectory(prefix="hub-demo-")
        self.home = home if home is not None else Path(self._tmp.name)
        self._base_environ = dict(os.environ if environ is None else environ)
        self.admin_token = secrets.token_urlsafe(24)
        self.api_key = ""
        self.tenant_id = ""
        self.adapters: dict[str, ProviderAdapter] = {}
        self.simulators: dict[str, Simulator] = {}
        self.skipped: list[str] = []
        self.console: DemoConsole | None = None
        self.hub = None
        self._server = None
        self._thread: threading.Thread | None = None

    # -- starting ---------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        import uvicorn

        from hub.api.app import create_app
        from hub.config import Settings
        from hub.jobs.worker import background_for
        from hub.plugins import load_plugins
        from hub.runtime import Hub
        from hub.vault import generate_key

        base = {k: v for k, v in self._base_environ.items() if k not in DROPPED_ENVIRONMENT}
        providers = load_plugins(Settings.from_env(base | {"HUB_HOME": str(self.home)}))[0].providers
        self.adapters = installed_adapters(providers)
        self.skipped = sorted(set(providers) - set(self.adapters))
        environ = dict(base)
        for name, adapter in sorted(self.adapters.items()):
            simulator = self.simulators[name] = adapter.demo_simulator()
            simulator.start()
            environ |= adapter.environ(simulator)
        providers = {n: (a, self.simulators[n]) for n, a in self.adapters.items()}
        port = self._socket.getsockname()[1]
        try:  # next to the hub's port, so the walk-through's commands stay the same from run to run
            self.console = DemoConsole(providers, echo=self.echo, port=port + 1 if port < 65535 else 0)
        except OSError:
            self.console = DemoConsole(providers, echo=self.echo)
        self.console.start()
        environ |= {"HUB_HOME": str(self.home), "HUB_PUBLIC_URL": self.url, "HUB_ADMIN_TOKEN": self.admin_token,
                    "HUB_ENCRYPTION_KEYS": generate_key(), "HUB_LOOPBACK_ONLY": "1",
                    "HUB_ALLOW_PRIVATE_WEBHOOK_URLS": "1"}
        settings = Settings.from_env(environ)
        self.hub = Hub.create(settings)
        app = create_app(self.hub, migrate=True, owns_hub=True, background=background_for(settings))
        self._server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))

    def _wait_started(self, thread: threading.Thread | None = None) -> None:
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or (thread is not None and not thread.is_alive()):
                raise RuntimeError("the demo hub did not start")
            time.sleep(0.02)

    async def setup(self) -> None:
        """The demo tenant with its API key, the receiver as its webhook endpoint, and every provider
        connected through the hub's own API."""
        from hub.testing.app import TenantHandle

        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            admin = {"Authorization": f"Bearer {self.admin_token}"}
            made = await client.post("/v1/admin/tenants", headers=admin, json={
                "name": "Demo Builders", "settings": {"timezone": "America/Chicago"}})
            made.raise_for_status()
            body = made.json()
            tenant = TenantHandle(body["tenant"]["id"], body["api_key"]["key"])
            self.tenant_id, self.api_key = str(tenant.id), tenant.key
            endpoint = await client.post("/v1/webhook-endpoints", headers=tenant.headers, json={
                "url": f"{self.console.url}/receiver", "event_types": ["*"], "description": "demo receiver"})
            endpoint.raise_for_status()
            self.console.secrets = [endpoint.json()["secret"]]
            for name, adapter in sorted(self.adapters.items()):
                await adapter.demo_connect(client, tenant, self.simulators[name])
                connection = await client.get(f"/v1/connections/{name}", headers=tenant.headers)
                connection.raise_for_status()
                self.console.places[name] = DemoPlace(self.url, connection.json())

    def __enter__(self) -> Demo:
        try:
            self._prepare()
            self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                            daemon=True)
            self._thread.start()
            self._wait_started(self._thread)
            asyncio.run(self.setup())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
        self._stop_simulators()

    def _stop_simulators(self) -> None:
        for simulator in self.simulators.values():
            simulator.stop()
        if self.console is not None:
            self.console.stop()
        self._socket.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def run(self, *, verbose: bool = False) -> None:
        """Serve until interrupted; once the hub is up, set up the demo and print the walk-through. Only
        warnings are logged unless ``verbose``: what a newcomer reads is the walk-through and the webhooks."""
        import logging

        if not verbose:
            logging.getLogger().setLevel(logging.WARNING)

        def set_up() -> None:
            try:
                self._wait_started()
                asyncio.run(self.setup())
            except Exception as exc:  # the server keeps running; say what failed
                self.echo(f"demo set-up failed: {type(exc).__name__}: {exc}")
                return
            self.echo(self.walkthrough())

        self._prepare()
        threading.Thread(target=set_up, daemon=True).start()
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._stop_simulators()

    # -- the walk-through ---------------------------------------------------------------------------------
    def steps(self) -> list[tuple[str, DemoStep]]:
        """(provider, step) for every step of the walk-through, in order."""
        return [(name, step) for name, adapter in sorted(self.adapters.items())
                for step in adapter.demo_steps(self.simulators[name])]

    def request_of(self, provider: str, step: DemoStep) -> tuple[str, str, dict[str, str], Any]:
        """(method, url, headers, json body) of a step."""
        if step.target == "provider":
            return step.method, f"{self.console.url}/providers/{provider}/{step.path.lstrip('/')}", {}, step.body
        return step.method, f"{self.url}{step.path}", {"Authorization": f"Bearer {self.api_key}"}, step.body

    def curl(self, provider: str, step: DemoStep) -> str:
        method, url, headers, body = self.request_of(provider, step)
        parts = ["curl -s"]
        if method != "GET":
            parts.append(f"-X {method}")
        parts.append(shlex.quote(url))
        if headers:
            parts.append('-H "$KEY"')
        if body is not None:
            parts.append("-H 'Content-Type: application/json' -d " + shlex.quote(json.dumps(body)))
        return " ".join(parts)

    def walkthrough(self) -> str:
        lines = [
            "",
            "Demo mode: every provider below runs as a local simulator; nothing leaves this machine.",
            f"  hub            {self.url}   (API reference: {self.url}/schema)",
            f"  receiver       {self.console.url}/receiver   (the tenant's webhook endpoint; GET lists them)",
            f"  demo tenant    {self.tenant_id}",
            f"  admin token    {self.admin_token}",
            f"  connected      {', '.join(sorted(self.adapters)) or 'nothing (no plugin has a simulator)'}",
        ]
        if self.skipped:
            lines.append(f"  not connected  {', '.join(self.skipped)} (no simulator: their calls are refused)")
        lines += ["", "Try it (each signed webhook it leads to is printed here as it arrives):", "",
                  f'KEY="Authorization: Bearer {self.api_key}"', ""]
        for provider, step in self.steps():
            lines.append(f"# {step.title}")
            lines.append(self.curl(provider, step))
            if step.events:
                lines.append(f"#   -> webhooks: {', '.join(step.events)}")
            if step.note:
                lines.append(f"#   {step.note}")
            lines.append("")
        lines.append(f"curl -s {self.console.url}/receiver   # every webhook the demo tenant received")
        return "\n".join(lines)
