"""The conformance adapter of the test provider's ``testoauth``: how the suite (hub.testing.conformance)
starts its server, connects, and makes its records and webhooks."""

from __future__ import annotations

import json

from hub.testing.adapter import ProviderAdapter
from tests.testprovider import plugin
from tests.testprovider.server import FakeProvider
from tests.testprovider.webhooks import oauth_signature

WEBHOOK_SECRET = "whsec-conformance-0123456789"


class TestOAuthAdapter(ProviderAdapter):
    provider = "testoauth"
    plugin = ("testprovider", plugin)
    probe = ("echo", {"text": "probe"})
    databases = ("sqlite", "postgres")  # the core's own test provider proves the suite on both

    def simulator(self) -> FakeProvider:
        return FakeProvider()

    def environ(self, simulator: FakeProvider) -> dict[str, str]:
        return {"TESTPROVIDER_URL": simulator.url, "TESTOAUTH_WEBHOOK_SECRETS": WEBHOOK_SECRET}

    def wrong_client_environ(self, simulator: FakeProvider) -> dict[str, str]:
        return self.environ(simulator) | {"TESTOAUTH_CLIENT_SECRET": "not-the-client-secret"}

    def secrets(self, simulator: FakeProvider) -> list[str]:
        return super().secrets(simulator) + [plugin.CLIENT_SECRET, WEBHOOK_SECRET] + simulator.state.issued

    def outbound_samples(self):
        return {"client": [{"id": f"c-{n}", "company_name": f"Client {n} LLC", "email": f"c{n}@example.com"}
                           for n in range(3)]}

    def remote_count(self, simulator: FakeProvider, entity: str) -> int:
        return len(simulator.state.customers)

    def seed_inbound(self, simulator: FakeProvider) -> None:
        for n in range(3):
            simulator.state.put_payment(f"pay_{n}", f"{n + 1}0.00")

    def webhook(self, simulator: FakeProvider, connection, *, secret: str = "good"):
        body = json.dumps({"id": "evt_conformance_1", "type": "payment.created",
                           "account": connection["external_account_id"],
                           "data": {"id": "pay_w1", "amount": "5.00"}}).encode()
        key = WEBHOOK_SECRET if secret == "good" else "whsec-someone-else"
        return body, {"content-type": "application/json", "x-test-signature": oauth_signature(key, body)}
