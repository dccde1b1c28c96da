"""The demo console: the other side of every wire in demo mode, on one local HTTP server.

- ``POST /receiver`` is the demo tenant's webhook endpoint: each delivery is recorded, its Standard
  Webhooks signature checked against the endpoint's secret, and a line printed.
- ``GET /receiver`` lists what arrived (``?type=payment.received`` narrows it).
- ``POST /providers/{provider}/{trigger}`` makes something happen on a provider's side, as a person there
  would (a client pays an invoice in QuickBooks, a signer signs in DocuSign): the plugin's adapter names
  these ``demo_triggers``.
- ``GET /`` says what is where.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from hub.testing.adapter import DemoPlace, ProviderAdapter
from hub.testing.receiver import Received, signature_holds
from hub.testing.simulator import Request, Response, Simulator


class DemoConsole(Simulator):
    keep_alive = True

    def __init__(self, providers: Mapping[str, tuple[ProviderAdapter, Simulator]], *,
                 echo: Callable[[str], None] | None = None, port: int = 0) -> None:
        super().__init__(port=port)
        self.providers = dict(providers)
        self.places: dict[str, DemoPlace] = {}
        """Per provider, where its triggers send what happens (set once the demo has connected it)."""
        self.secrets: list[str] = []
        """The receiver endpoint's signing secrets (set once the demo has created the endpoint)."""
        self.received: list[Received] = []
        self.echo = echo

    def handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["receiver"] and request.method == "POST":
            return self._receive(request)
        if parts == ["receiver"] and request.method == "GET":
            return Response.json(self.deliveries(request.query.get("type")))
        if len(parts) == 3 and parts[0] == "providers" and request.method == "POST":
            return self._trigger(parts[1], parts[2], request)
        if not parts and request.method == "GET":
            return Response.json({
                "receiver": f"{self.url}/receiver",
                "triggers": {name: sorted(adapter.demo_triggers()) for name, (adapter, _) in self.providers.items()},
            })
        return Response.json({"error": {"code": "not_found", "message": f"no {request.method} {request.path}"}},
                             status=404)

    def _receive(self, request: Request) -> Response:
        with self.lock:
            secrets = list(self.secrets)
        received = Received(request.path, request.headers, request.body,
                            signature_holds(secrets, request.headers, request.body))
        with self.lock:
            self.received.append(received)
        if self.echo is not None:
            try:
                event = received.json()
            except ValueError:
                event = {}
            mark = "signature ok" if received.verified else "SIGNATURE DOES NOT HOLD"
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            shown = ("entity", "direction", "status") if str(event.get("type", "")).startswith("sync.") else ()
            about = " ".join(str(data[k]) for k in shown if data.get(k))
            source = f" from {event['provider']}" if event.get("provider") else ""
            self.echo(f"webhook received: {event.get('type', '?')}{source}{f' ({about})' if about else ''}"
                      f" [{received.id}, {mark}]")
        return Response(204)

    def _trigger(self, provider: str, name: str, request: Request) -> Response:
        found = self.providers.get(provider)
        trigger = found[0].demo_triggers().get(name) if found else None
        place = self.places.get(provider)
        if trigger is None or place is None:
            return Response.json({"error": {"code": "not_found", "message": f"no trigger {provider}/{name}"}},
                                 status=404)
        try:
            body = request.json() or {}
        except ValueError:
            return Response.json({"error": {"code": "invalid_json", "message": "the body is not JSON"}}, status=400)
        if not isinstance(body, dict):
            return Response.json({"error": {"code": "invalid_body", "message": "the body must be an object"}},
                                 status=422)
        try:
            answer = trigger(found[1], body, place)
        except LookupError as exc:
            return Response.json({"error": {"code": "not_found", "message": str(exc)}}, status=404)
        except ValueError as exc:
            return Response.json({"error": {"code": "invalid_body", "message": str(exc)}}, status=422)
        return Response.json(answer if answer is not None else {"ok": True})

    def deliveries(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            received = list(self.received)
        out = []
        for r in received:
            try:
                event = r.json()
            except ValueError:
                event = None
            kind = event.get("type") if isinstance(event, dict) else None
            if event_type is None or kind == event_type:
                out.append({"id": r.id, "type": kind, "verified": r.verified, "event": event})
        return out

    def wait_for(self, event_type: str, *, after: int = 0, data: Mapping[str, Any] | None = None,
                 timeout: float = 30.0) -> dict[str, Any]:
        """The first verified delivery of ``event_type`` (whose data has the fields of ``data``) among those
        received after the ``after``-th."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                fresh = self.received[after:]
            for r in fresh:
                try:
                    event = r.json()
                except ValueError:
                    continue
                if not (isinstance(event, dict) and event.get("type") == event_type and r.verified):
                    continue
                got = event.get("data") if isinstance(event.get("data"), dict) else {}
                if all(got.get(k) == v for k, v in (data or {}).items()):
                    return event
            if time.monotonic() > deadline:
                seen = [json.loads(r.body).get("type") for r in fresh if r.body.startswith(b"{")]
                raise TimeoutError(f"no signed {event_type} webhook arrived within {timeout:.0f} s (got: {seen})")
            time.sleep(0.05)
