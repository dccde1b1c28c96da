"""Google Calendar passes the conformance suite every provider plugin runs."""

from hub.testing.conformance import conformance_suite
from hub_google_calendar.testing import GoogleCalendarAdapter

TestGoogleCalendarConformance = conformance_suite(GoogleCalendarAdapter())
