"""The core's own test wiring: its tests run the kit's fixtures (``hub.testing.fixtures``, loaded by pytest
through the ``pytest11`` entry point) with the test provider plugin (tests/testprovider) against its local
server. Every test that takes ``hub`` runs on SQLite and on PostgreSQL (``HUB_TEST_DATABASE_URL``)."""

from __future__ import annotations

import pytest

from hub.config import Settings
from hub.runtime import Hub
from hub.testing.app import ADMIN_TOKEN, ENCRYPTION_KEY, new_tenant, wait_for
from hub.testing.fixtures import REDIS_URL, require_service
from tests.testprovider import plugin as test_plugin
from tests.testprovider.server import FakeProvider

# Shared by many core tests; imported from here by them.
__all__ = ["ADMIN_TOKEN", "ENCRYPTION_KEY", "REDIS_URL", "WEBHOOK_SECRETS", "make_hub", "new_tenant",
           "require_service", "wait_for"]

WEBHOOK_SECRETS = "whsec-test-old,whsec-test-new"


@pytest.fixture
def provider():
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def hub_plugins():
    return [("testprovider", test_plugin)]


@pytest.fixture
def hub_environ(provider: FakeProvider) -> dict[str, str]:
    return {"TESTPROVIDER_URL": provider.url, "TESTOAUTH_WEBHOOK_SECRETS": WEBHOOK_SECRETS}


def make_hub(settings: Settings) -> Hub:
    """A Hub with the test provider, for the tests' helper processes and hubs made by hand."""
    return Hub.create(settings, entry_points=False, extra_plugins=[("testprovider", test_plugin)])
