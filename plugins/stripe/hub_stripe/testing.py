"""The conformance adapter: how ``hub.testing.conformance`` (and the demo mode) start the Stripe simulator,
point the plugin at it, connect, and what records and webhooks look like."""

from __future__ import annotations

import hub_stripe.plugin
from hub.testing.adapter import ProviderAdapter
from hub_stripe.simulator import (
    API_KEY,
    CONNECT_WEBHOOK_SECRET,
    PLATFORM_KEY,
    WEBHOOK_SECRET,
    StripeSimulator,
)


class StripeAdapter(ProviderAdapter):
    provider = "stripe"
    plugin = ("stripe", hub_stripe.plugin)
    probe = ("get_account", {})

    def simulator(self) -> StripeSimulator:
        return StripeSimulator()

    def environ(self, simulator: StripeSimulator) -> dict[str, str]:
        return {"STRIPE_BASE_URL": simulator.url, "STRIPE_SECRET_KEY": PLATFORM_KEY,
                "STRIPE_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET}

    def credentials(self, simulator: StripeSimulator) -> dict:
        return {"secret_key": API_KEY, "webhook_secrets": [WEBHOOK_SECRET]}

    def bad_credentials(self, simulator: StripeSimulator) -> dict:
        return {"secret_key": "sk_test_notTheKey0123456789", "webhook_secrets": [WEBHOOK_SECRET]}

    def secrets(self, simulator: StripeSimulator) -> list[str]:
        issued = [o["client_secret"] for kind in ("payment_intent", "setup_intent")
                  for account in list(simulator.accounts) for o in simulator.objects(kind, account)]
        return super().secrets(simulator) + [API_KEY, PLATFORM_KEY, WEBHOOK_SECRET, CONNECT_WEBHOOK_SECRET] + issued

    def outbound_samples(self):
        clients = [{"id": f"client-{n}", "company_name": f"Client {n} LLC", "email": f"c{n}@example.com"}
                   for n in range(3)]
        return {
            "client": clients,
            "charge": [{"id": f"charge-{n}", "invoice_id": f"inv-{n}", "client_id": f"client-{n}",
                        "payment_method_id": "pm_card_visa", "amount": 1000 + n, "currency": "usd"}
                       for n in range(3)],
        }

    def remote_count(self, simulator: StripeSimulator, entity: str) -> int:
        kind = {"client": "customer", "charge": "payment_intent"}[entity]
        return len(simulator.objects(kind))

    def webhook(self, simulator: StripeSimulator, connection, *, secret: str = "good"):
        intent = simulator.create_payment_intent(4200, account=connection["external_account_id"],
                                                 metadata={"invoice_id": "inv-hook"})
        simulator.confirm(intent["id"], account=connection["external_account_id"])
        event = simulator.events_of("payment_intent.succeeded")[-1]
        secrets = simulator.webhook_secrets if secret == "good" else ["whsec_someoneElses0123456789"]
        return simulator.signed(event, secrets)

    def webhook_path(self, connection) -> str:
        return f"/v1/webhooks/stripe/{connection['id']}"

