"""The conformance adapter: how ``hub.testing.conformance`` (and the demo mode) start the Stripe simulator,
point the plugin at it, connect, and what records and webhooks look like; and demo mode's walk-through (a
payment in the client's payment form, a card charged off-session)."""

from __future__ import annotations

import hub_stripe.plugin
from hub.testing.adapter import DemoPlace, DemoStep, ProviderAdapter
from hub_stripe.simulator import (
    API_KEY,
    CONNECT_WEBHOOK_SECRET,
    OWN_ACCOUNT,
    PLATFORM_KEY,
    TEST_CARDS,
    WEBHOOK_SECRET,
    StripeSimulator,
)

DEMO_PAYMENT_METHODS = (*TEST_CARDS, "pm_usBankAccount")


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


    # -- demo mode ------------------------------------------------------------------------------------
    async def demo_connect(self, client, tenant, simulator: StripeSimulator) -> None:
        """Connected with the account's own key, whose webhook endpoint is the connection's URL on the hub:
        the simulator posts every event there, signed, as Stripe posts to a registered endpoint."""
        await self.connect(client, tenant, simulator)
        connection = await client.get(f"/v1/connections/{self.provider}", headers=tenant.headers)
        connection.raise_for_status()
        simulator.forward_to(str(client.base_url).rstrip("/") + self.webhook_path(connection.json()))

    def demo_steps(self, simulator: StripeSimulator) -> list[DemoStep]:
        client = {"id": "client-oak", "company_name": "Oak Street Homes", "email": "ap@oakstreet.example"}
        return [
            DemoStep("Stripe: ask for $2,400.00 against invoice INV-1002 (a payment intent; its client_secret is "
                     "for your payment form)", "POST", "/v1/connections/stripe/actions/create_payment_intent",
                     {"invoice_id": "inv-1002", "client_id": "client-oak", "client": client, "amount": 240000,
                      "currency": "usd", "description": "INV-1002 Oak St remodel, deposit"}),
            DemoStep("Stripe: the client pays it by card in the payment form (Stripe then notifies the hub)",
                     "POST", "pay", {"invoice_id": "inv-1002", "payment_method": "pm_card_visa"},
                     target="provider", events=("payment.succeeded",),
                     data={"payment.succeeded": {"invoice_id": "inv-1002", "amount": "2400.00"}},
                     note="with pm_card_chargeDeclined the card is declined and payment.failed arrives instead"),
            DemoStep("Stripe: charge the client's card off-session for invoice INV-1003 (once per charge_id; "
                     "pm_card_visa is Stripe's test Visa)", "POST",
                     "/v1/connections/stripe/actions/charge_payment_method",
                     {"invoice_id": "inv-1003", "client_id": "client-oak", "payment_method_id": "pm_card_visa",
                      "amount": 50000, "currency": "usd"},
                     events=("payment.succeeded",),
                     data={"payment.succeeded": {"invoice_id": "inv-1003", "amount": "500.00"}}),
        ]

    def demo_triggers(self):
        return {"pay": _pay}


def _pay(simulator: StripeSimulator, body: dict, place: DemoPlace) -> dict:
    """The client confirms the latest open payment intent of an invoice in the payment form (Stripe.js) with
    one of Stripe's test payment methods; Stripe emits ``payment_intent.succeeded`` (or ``payment_failed``)."""
    invoice_id, method = body.get("invoice_id"), body.get("payment_method", "pm_card_visa")
    if not isinstance(invoice_id, str):
        raise ValueError("invoice_id (the invoice the payment intent was created for, e.g. inv-1002) is required")
    if method not in DEMO_PAYMENT_METHODS:
        raise ValueError(f"payment_method is one of Stripe's test methods: {', '.join(DEMO_PAYMENT_METHODS)}")
    account = place.connection.get("external_account_id") or OWN_ACCOUNT
    with simulator.lock:
        open_intents = [i for i in simulator.objects("payment_intent", account)
                        if (i.get("metadata") or {}).get("invoice_id") == invoice_id
                        and i["status"] in ("requires_payment_method", "requires_confirmation")]
        if not open_intents:
            raise LookupError(f"no payment intent of invoice {invoice_id} is waiting for payment (create one first)")
        intent = simulator.confirm(open_intents[-1]["id"], method, account=account)
    answer = {"payment_intent_id": intent["id"], "status": intent["status"]}
    if intent.get("last_payment_error"):
        answer["error"] = intent["last_payment_error"]["message"]
    return answer
