"""Demo mode's "pay" trigger: the client pays the invoice's open payment intent with one of Stripe's test
methods (found by the invoice, not by an id the newcomer never saw); a body it cannot use is refused before
anything is paid."""

from __future__ import annotations

import pytest

from hub.testing.adapter import DemoPlace
from hub_stripe.simulator import OWN_ACCOUNT, StripeSimulator
from hub_stripe.testing import StripeAdapter

PLACE = DemoPlace("http://127.0.0.1:9", {"external_account_id": OWN_ACCOUNT})


def test_pay_confirms_the_open_intent_of_the_invoice_and_no_other():
    pay = StripeAdapter().demo_triggers()["pay"]
    with StripeSimulator() as sim:
        intent = sim.create_payment_intent(240000, metadata={"invoice_id": "inv-1002"})
        other = sim.create_payment_intent(5000, metadata={"invoice_id": "inv-9"})
        assert pay(sim, {"invoice_id": "inv-1002"}, PLACE) == {"payment_intent_id": intent["id"],
                                                                 "status": "succeeded"}
        assert [e["data"]["object"]["id"] for e in sim.events_of("payment_intent.succeeded")] == [intent["id"]]
        assert {i["id"]: i["status"] for i in sim.objects("payment_intent")}[other["id"]] == "requires_payment_method"
        with pytest.raises(LookupError, match="inv-1002"):  # paid: nothing of it is open any more
            pay(sim, {"invoice_id": "inv-1002"}, PLACE)


def test_a_declined_test_card_leaves_the_intent_open_with_stripes_error():
    pay = StripeAdapter().demo_triggers()["pay"]
    with StripeSimulator() as sim:
        intent = sim.create_payment_intent(240000, metadata={"invoice_id": "inv-1002"})
        answer = pay(sim, {"invoice_id": "inv-1002", "payment_method": "pm_card_chargeDeclined"}, PLACE)
        assert answer == {"payment_intent_id": intent["id"], "status": "requires_payment_method",
                          "error": "Your card was declined."}
        assert len(sim.events_of("payment_intent.payment_failed")) == 1
        assert pay(sim, {"invoice_id": "inv-1002"}, PLACE)["status"] == "succeeded"


@pytest.mark.parametrize("body", [{}, {"invoice_id": 1002}, {"invoice_id": "inv-1002", "payment_method": "pm_x"}])
def test_pay_refuses_a_body_it_cannot_use(body):
    with StripeSimulator() as sim:
        sim.create_payment_intent(240000, metadata={"invoice_id": "inv-1002"})
        with pytest.raises(ValueError):
            StripeAdapter().demo_triggers()["pay"](sim, body, PLACE)
        assert not sim.events_of("payment_intent.succeeded")
