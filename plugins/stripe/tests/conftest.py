"""The hub's kit (``hub.testing``) loads with pytest; these fixtures point it at this plugin and its simulator."""

import pytest

import hub_stripe.plugin
from hub_stripe.simulator import StripeSimulator
from hub_stripe.testing import StripeAdapter


@pytest.fixture
def simulator():
    with StripeSimulator() as sim:
        yield sim


@pytest.fixture
def hub_plugins():
    return [("stripe", hub_stripe.plugin)]


@pytest.fixture
def hub_environ(simulator):
    return StripeAdapter().environ(simulator)
