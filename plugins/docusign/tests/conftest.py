"""The hub's kit (``hub.testing``) loads with pytest; these fixtures point it at this plugin and its simulator."""

import pytest

import hub_docusign.plugin
from hub_docusign.simulator import DocuSignSimulator
from hub_docusign.testing import environ


@pytest.fixture
def simulator():
    with DocuSignSimulator() as sim:
        yield sim


@pytest.fixture
def hub_plugins():
    return [("docusign", hub_docusign.plugin)]


@pytest.fixture
def hub_environ(simulator):
    return environ(simulator)
