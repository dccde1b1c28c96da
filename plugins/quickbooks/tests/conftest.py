"""The QuickBooks plugin's tests run the hub's kit (``hub.testing``, a pytest plugin loaded by pytest)
with this plugin against the QuickBooks simulator."""

from __future__ import annotations

import pytest

import hub_quickbooks.plugin
from hub_quickbooks.simulator import CLIENT_ID, CLIENT_SECRET, VERIFIER_TOKEN, QuickBooksSimulator


@pytest.fixture
def qbo():
    with QuickBooksSimulator() as simulator:
        yield simulator


@pytest.fixture
def hub_plugins():
    return [("quickbooks", hub_quickbooks.plugin)]


@pytest.fixture
def hub_environ(qbo: QuickBooksSimulator) -> dict[str, str]:
    return {"QUICKBOOKS_BASE_URL": qbo.url, "QUICKBOOKS_CLIENT_ID": CLIENT_ID,
            "QUICKBOOKS_CLIENT_SECRET": CLIENT_SECRET, "QUICKBOOKS_VERIFIER_TOKEN": VERIFIER_TOKEN}
