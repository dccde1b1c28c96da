"""QuickBooks passes the conformance suite every provider plugin runs."""

from hub.testing.conformance import conformance_suite
from hub_quickbooks.testing import QuickBooksAdapter

TestQuickBooksConformance = conformance_suite(QuickBooksAdapter())
