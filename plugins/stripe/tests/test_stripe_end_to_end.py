"""A payment end to end, on every database and job runner: a payment intent for an invoice (the client's
Stripe customer made on first use), the customer confirms it, Stripe's signed webhook reaches the hub,
the payment is recorded and ``payment.succeeded`` is delivered to the tenant's endpoint."""

from __future__ import annotations

from decimal import Decimal

from stripe_flows import CLIENT, action, connect_own_key, deliver, own_path, records

from hub.testing import subscribe, wait_for


async def test_a_payment_succeeds_end_to_end(client, hub, tenant, simulator, jobs, webhook_receiver):
    connection = await connect_own_key(client, tenant)
    await subscribe(client, tenant, webhook_receiver, ["payment.*"])

    intent = await action(client, tenant, "create_payment_intent", {
        "invoice_id": "inv-1001", "amount": 125050, "client_id": CLIENT["id"], "client": CLIENT,
        "description": "Kitchen remodel, progress payment 2"})
    assert intent["status"] == "requires_payment_method"
    assert intent["client_secret"].startswith(intent["payment_intent_id"] + "_secret_")
    (customer,) = simulator.objects("customer")
    assert customer["id"] == intent["customer_id"] and customer["email"] == CLIENT["email"]
    assert customer["metadata"] == {"tenant_id": str(tenant.id), "client_id": CLIENT["id"]}
    (created,) = simulator.objects("payment_intent")
    assert created["metadata"]["invoice_id"] == "inv-1001" and created["automatic_payment_methods"] == {"enabled": True}

    simulator.confirm(intent["payment_intent_id"], "pm_card_visa")  # the customer pays in the browser
    (succeeded,) = simulator.events_of("payment_intent.succeeded")
    assert (await deliver(client, simulator, succeeded, own_path(connection))).status_code == 200

    async def delivered():
        return webhook_receiver.deliveries()

    (delivery,) = await wait_for(delivered, timeout=60)
    assert delivery.verified and delivery.json()["type"] == "payment.succeeded"
    data = delivery.json()["data"]
    assert (data["invoice_id"], Decimal(data["amount"]), data["currency"], data["failure_message"]) == (
        "inv-1001", Decimal("1250.50"), "USD", None)
    (payment,) = await records(client, tenant, "payment")
    assert payment["external_id"] == intent["payment_intent_id"]
    assert payment["data"]["invoice_id"] == "inv-1001" and Decimal(payment["data"]["amount"]) == Decimal("1250.50")
