"""What the kit needs to know about one provider of a plugin: ``ProviderAdapter``. The conformance suite
(``hub.testing.conformance``) and demo mode (``hub serve --demo``) both run a plugin on its simulator
through it; this module imports nothing from pytest, so demo mode runs without the test extras.

A plugin publishes its adapter under the ``hub.demo`` entry point group (``twilio =
"hub_twilio.testing:TwilioAdapter"``) for demo mode to find it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.testing.flows import connect_oauth
from hub.testing.simulator import Simulator

__all__ = ["DemoPlace", "DemoStep", "ProviderAdapter", "Trigger", "seen_secrets"]


@dataclass(frozen=True)
class DemoStep:
    """One step of demo mode's walk-through: an HTTP call a newcomer makes with curl, and what it leads to.

    ``target="hub"`` calls the hub's API (``path``) with the demo tenant's key; ``target="provider"`` calls
    the demo console's ``POST /providers/{provider}/{path}`` (``path``: the trigger's name), a trigger
    standing in for something a person does on the provider's side (a client pays in QuickBooks, a signer
    signs in DocuSign). The demo's test runs every step and waits until each of ``events`` has reached the
    demo's webhook receiver, signed."""

    title: str
    method: str
    path: str
    body: Any = None
    target: str = "hub"
    events: tuple[str, ...] = ()
    """Event types the step leads to; each must arrive at the receiver (in any order, after the step)."""
    data: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per event type, fields its ``data`` must have for the event to count as this step's (a
    ``sync.completed`` of this entity, not of another sync that happened to end meanwhile)."""
    note: str = ""
    """A line printed under the command: what to look at."""


@dataclass(frozen=True)
class DemoPlace:
    """Where a demo trigger's provider-side happening goes: the hub's public URL and the demo tenant's
    connection to the provider, as ``GET /v1/connections/{provider}`` shows it."""

    hub_url: str
    connection: Mapping[str, Any]


Trigger = Callable[[Simulator, dict[str, Any], DemoPlace], Any]
"""``trigger(simulator, body, place)`` -> a JSON-able answer: a provider-side happening in demo mode. It
raises ``ValueError`` for a body it cannot use and ``LookupError`` for something that is not there."""

class ProviderAdapter:
    """What the suite needs to know about one provider of a plugin. Subclass it; the defaults fit a
    plugin whose simulator is built on ``hub.testing.simulator.Simulator``."""

    provider: str
    """The provider's slug."""
    plugin: tuple[str, object]
    """(name, module) of the plugin, as ``load_plugins(extra=...)`` takes it."""
    databases: tuple[str, ...] = ("sqlite",)
    """The kit's databases the suite runs on. A plugin's behaviour rarely depends on the database, which the
    core's own suite proves on PostgreSQL; run your end-to-end test on the full matrix instead."""

    # -- the simulator --------------------------------------------------------------------------------
    def simulator(self) -> Simulator:
        """A new simulator, not started (the suite enters it as a context manager)."""
        raise NotImplementedError

    def environ(self, simulator: Simulator) -> dict[str, str]:
        """``config.environ`` that points the plugin at the simulator, with valid client credentials."""
        raise NotImplementedError

    def wrong_client_environ(self, simulator: Simulator) -> dict[str, str] | None:
        """For OAuth: the same, with a client secret the provider refuses (None: not applicable)."""
        return None

    def provider_calls(self, simulator: Simulator) -> int:
        """How many requests the provider received (the rate-limit and idempotency checks count them)."""
        return simulator.calls()

    def refresh_calls(self, simulator: Simulator) -> int:
        """How many token refreshes the provider received: by default, logged requests whose form body
        says ``grant_type=refresh_token``."""
        return len(simulator.logged(lambda r: r.method == "POST" and b"grant_type=refresh_token" in r.body))

    def secrets(self, simulator: Simulator) -> list[str]:
        """Every secret that must never appear in a log line. By default the ones the simulator saw in its
        requests (bearer tokens, Basic credentials, refresh tokens, codes and verifiers, API-key headers);
        add the client secret and webhook keys the adapter configured."""
        return seen_secrets(simulator)

    # -- connecting -----------------------------------------------------------------------------------
    def credentials(self, simulator: Simulator) -> dict[str, Any] | None:
        """For API-key providers: credentials the simulator accepts."""
        return None

    def bad_credentials(self, simulator: Simulator) -> dict[str, Any] | None:
        """For API-key providers: well-formed credentials the simulator refuses."""
        return None

    async def connect(self, client, tenant, simulator: Simulator) -> None:
        """Connect ``tenant``: the OAuth consent (``decision=allow`` on the simulator's consent page) or a
        ``PUT`` of ``credentials``."""
        if self.credentials(simulator) is None:
            outcome = await connect_oauth(client, tenant, self.provider)
            assert outcome["status"] == ["connected"], outcome
            return
        response = await client.put(f"/v1/connections/{self.provider}", headers=tenant.headers,
                                    json={"credentials": self.credentials(simulator)})
        assert response.status_code in (200, 201), response.text

    # -- records --------------------------------------------------------------------------------------
    def outbound_samples(self) -> Mapping[str, list[dict[str, Any]]]:
        """Entity -> hub records to push, for each outbound entity, in the order to push them."""
        return {}

    def remote_count(self, simulator: Simulator, entity: str) -> int | None:
        """How many objects of a pushed entity the provider holds (None: the suite relies on mappings)."""
        return None

    def seed_inbound(self, simulator: Simulator) -> None:
        """Put records in the simulator for every inbound entity to read."""

    # -- webhooks -------------------------------------------------------------------------------------
    def webhook(self, simulator: Simulator, connection: Mapping[str, Any], *, secret: str = "good"
                ) -> tuple[bytes, dict[str, str]] | None:
        """(body, headers) of a webhook of the provider about ``connection`` (as the API shows it), signed
        with the right secret (``secret="good"``) or a wrong one (``"wrong"``). None: no webhooks."""
        return None

    def webhook_path(self, connection: Mapping[str, Any]) -> str:
        return f"/v1/webhooks/{self.provider}"

    # -- rate limits ----------------------------------------------------------------------------------
    probe: tuple[str, dict[str, Any]] | None = None
    """A cheap action, (name, input), that makes one provider request: the rate-limit check calls it."""

    # -- demo mode (``hub serve --demo``) -------------------------------------------------------------
    def demo_simulator(self) -> Simulator:
        """The simulator demo mode runs: like ``simulator()``, but sending its webhooks to the hub by itself
        (``environ()`` has told it where), as the provider would."""
        return self.simulator()

    async def demo_connect(self, client, tenant, simulator: Simulator) -> None:
        """Connect the demo tenant through the hub's HTTP API (``client``: an ``httpx.AsyncClient`` on the
        running hub, whose own workers run the jobs). By default ``connect``."""
        await self.connect(client, tenant, simulator)

    def demo_steps(self, simulator: Simulator) -> list[DemoStep]:
        """The provider's part of the walk-through demo mode prints, and its test runs, in order."""
        return []

    def demo_triggers(self) -> Mapping[str, Trigger]:
        """Provider-side happenings the walk-through's ``target="provider"`` steps call, by name."""
        return {}


_SECRET_FIELDS = ("refresh_token", "code", "code_verifier", "client_secret", "token", "access_token")


def seen_secrets(simulator: Simulator) -> list[str]:
    """Secrets that went over the wire to the simulator, from its request log."""
    import base64

    found: set[str] = set()
    for entry in simulator.logged():
        request = entry.request
        if request.bearer:
            found.add(request.bearer)
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                found.add(base64.b64decode(authorization[6:]).decode().partition(":")[2])
            except ValueError:
                pass
        for name, value in request.headers.items():
            if "key" in name or "token" in name:
                found.add(value)
        fields: dict[str, Any] = {}
        if b"=" in request.body and not request.body.lstrip().startswith((b"{", b"[")):
            fields = request.form()
        elif request.body.lstrip().startswith(b"{"):
            try:
                fields = request.json()
            except ValueError:
                fields = {}
        found.update(str(fields[f]) for f in _SECRET_FIELDS if isinstance(fields, dict) and fields.get(f))
    return sorted(found)
