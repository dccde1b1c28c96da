"""Stripe for the integration hub."""
