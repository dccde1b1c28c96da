"""The hub's kit (``hub.testing``) loads with pytest; these fixtures point it at this plugin and its simulator."""

import pytest

import hub_twilio.plugin
from hub_twilio.simulator import TwilioSimulator
from hub_twilio.testing import TwilioAdapter


@pytest.fixture
def simulator():
    with TwilioSimulator(messages_per_second=50) as sim:
        yield sim


@pytest.fixture
def hub_plugins():
    return [("twilio", hub_twilio.plugin)]


@pytest.fixture
def hub_environ(simulator):
    return TwilioAdapter().environ(simulator)
