"""Twilio for the integration hub."""
