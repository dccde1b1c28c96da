"""The core's fixtures (tests/conftest.py), run with this plugin against the QuickBooks simulator instead of
the core's test provider. Import them by name so it is plain which ones are reused; a later hub.testing kit
replaces this import."""

from __future__ import annotations

from pathlib import Path

import pytest

import hub_quickbooks.plugin
from hub.config import Settings
from hub.runtime import Hub
from hub_quickbooks.simulator import CLIENT_ID, CLIENT_SECRET, VERIFIER_TOKEN, QuickBooksSimulator
from tests.conftest import (  # noqa: F401  (fixtures)
    ADMIN_TOKEN,
    ENCRYPTION_KEY,
    background,
    client,
    database_url,
    hub,
    jobs,
    live_hub,
    tenant,
)


@pytest.fixture
def qbo():
    with QuickBooksSimulator() as simulator:
        yield simulator


def make_hub(settings: Settings) -> Hub:
    return Hub.create(settings, entry_points=False, extra_plugins=[("quickbooks", hub_quickbooks.plugin)])


@pytest.fixture
def hub_factory():
    return make_hub


@pytest.fixture
def settings(database_url: str, qbo: QuickBooksSimulator, tmp_path: Path) -> Settings:  # noqa: F811
    return Settings(
        home=tmp_path / "home", database_url=database_url, encryption_keys=(ENCRYPTION_KEY,),
        admin_token=ADMIN_TOKEN, public_url="http://127.0.0.1:8000",
        environ={"QUICKBOOKS_BASE_URL": qbo.url, "QUICKBOOKS_CLIENT_ID": CLIENT_ID,
                 "QUICKBOOKS_CLIENT_SECRET": CLIENT_SECRET, "QUICKBOOKS_VERIFIER_TOKEN": VERIFIER_TOKEN},
    )
