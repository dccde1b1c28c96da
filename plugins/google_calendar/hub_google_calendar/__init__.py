"""Google Calendar for the integration hub."""
