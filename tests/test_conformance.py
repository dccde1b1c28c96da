"""The test provider passes the conformance suite every provider plugin runs."""

from hub.testing.conformance import conformance_suite
from tests.testprovider.conformance import TestOAuthAdapter

TestTestOAuthConformance = conformance_suite(TestOAuthAdapter())
