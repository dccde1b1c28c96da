"""The simulator on its own, as the demo mode runs it: Stripe's answers to a client that is not the hub's,
and events posted to a webhook endpoint signed as Stripe signs them."""

from __future__ import annotations

import httpx
import stripe

from hub.testing import Receiver, wait_for
from hub_stripe.simulator import API_KEY, WEBHOOK_SECRET, StripeSimulator
from hub_stripe.webhooks import check_signature


def test_the_sdk_with_its_own_http_client_gets_stripes_objects_and_errors():
    with StripeSimulator() as sim:
        sdk = stripe.StripeClient(API_KEY, base_addresses={"api": sim.url}, max_network_retries=0)
        customer = sdk.v1.customers.create(params={"email": "a@b.co", "name": "Ada", "metadata": {"k": "v"}})
        assert customer.id.startswith("cus_") and customer.metadata.to_dict() == {"k": "v"}
        try:
            sdk.v1.payment_intents.retrieve("pi_missing")
        except stripe.InvalidRequestError as exc:
            assert (exc.http_status, exc.code) == (404, "resource_missing")
        else:
            raise AssertionError("a missing intent was found")
        try:
            stripe.StripeClient("sk_test_wrongWrongWrong123", base_addresses={"api": sim.url}).v1.customers.list()
        except stripe.AuthenticationError as exc:
            assert exc.http_status == 401 and "Wrong123" not in str(exc)
        else:
            raise AssertionError("a wrong key was accepted")
        page = sdk.v1.customers.list(params={"limit": 1})
        assert page.has_more is False and [c.id for c in page.data] == [customer.id]
        assert httpx.get(f"{sim.url}/v1/customers?limit=101", auth=(API_KEY, "")).status_code == 400


async def test_forwarded_events_arrive_signed_with_every_active_secret():
    rotated = "whsec_rotatedSecret0123456789abc"
    with StripeSimulator() as sim, Receiver() as endpoint:
        sim.webhook_secrets = [WEBHOOK_SECRET, rotated]
        sim.forward_to(endpoint.url)
        intent = sim.create_payment_intent(2500, metadata={"invoice_id": "inv-1"})
        sim.confirm(intent["id"])

        async def arrived():
            with endpoint.lock:  # Stripe's signature, not Standard Webhooks': read them raw
                return [d for d in endpoint.received if b'"payment_intent.succeeded"' in d.body]

        (delivery,) = await wait_for(arrived)
        for secret in (WEBHOOK_SECRET, rotated):
            check_signature(delivery.body, delivery.headers["stripe-signature"], [secret])
