"""The hub's kit (``hub.testing``) loads with pytest; these fixtures point it at this plugin and its simulator."""

import pytest

import hub_google_calendar.plugin
from hub_google_calendar.simulator import GoogleCalendarSimulator
from hub_google_calendar.testing import GoogleCalendarAdapter


@pytest.fixture
def simulator():
    with GoogleCalendarSimulator() as sim:
        yield sim


@pytest.fixture
def hub_plugins():
    return [("google_calendar", hub_google_calendar.plugin)]


@pytest.fixture
def hub_environ(simulator):
    return GoogleCalendarAdapter().environ(simulator)
