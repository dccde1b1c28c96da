"""The plugin authors' test kit, installed with the hub.

- ``hub.testing.fixtures``: the pytest plugin (loaded by pytest through the ``pytest11`` entry point ``hub``):
  ``hub``, ``client``, ``tenant``, ``jobs``, ``clock``, ``webhook_receiver``, ``live_hub`` ...
- ``hub.testing.simulator``: the base of provider simulators (real HTTP on 127.0.0.1, request log, faults).
- ``hub.testing.conformance``: the suite every provider plugin runs with one line.
- Helpers, importable from here: ``run_jobs``, ``Clock``, ``Receiver``, ``new_tenant``, ``subscribe``,
  ``connect_oauth``, ``wait_for``, ``LiveHub``.

See docs/testing_your_plugin.md.
"""

from hub.testing.app import ADMIN_TOKEN, ENCRYPTION_KEY, PUBLIC_URL, LiveHub, TenantHandle, new_tenant, wait_for
from hub.testing.clock import Clock
from hub.testing.flows import RETURN_URL, authorize, callback, connect_oauth, consent, pause_schedules
from hub.testing.jobs import Ran, run_jobs
from hub.testing.receiver import Answer, Received, Receiver, signature_holds


async def subscribe(client, tenant, receiver: Receiver, event_types: list[str] | None = None) -> dict:
    """Create a webhook endpoint of ``tenant`` pointing at ``receiver`` and give the receiver its secret, so
    it checks every delivery's signature. Returns the endpoint as the API answered."""
    response = await client.post("/v1/webhook-endpoints", headers=tenant.headers,
                                 json={"url": receiver.url, "event_types": event_types or ["*"]})
    assert response.status_code == 201, response.text
    endpoint = response.json()
    receiver.secrets = [endpoint["secret"]]
    return endpoint


__all__ = [
    "ADMIN_TOKEN", "Answer", "Clock", "ENCRYPTION_KEY", "LiveHub", "PUBLIC_URL", "RETURN_URL", "Ran", "Received",
    "Receiver", "TenantHandle", "authorize", "callback", "connect_oauth", "consent", "new_tenant", "pause_schedules",
    "run_jobs", "signature_holds", "subscribe", "wait_for",
]
