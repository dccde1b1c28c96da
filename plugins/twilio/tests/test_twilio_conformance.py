"""Twilio passes the conformance suite every provider plugin runs."""

from hub.testing.conformance import conformance_suite
from hub_twilio.testing import TwilioAdapter

TestTwilioConformance = conformance_suite(TwilioAdapter())
