"""Stripe passes the conformance suite every provider plugin runs."""

from hub.testing.conformance import conformance_suite
from hub_stripe.testing import StripeAdapter

TestStripeConformance = conformance_suite(StripeAdapter())
