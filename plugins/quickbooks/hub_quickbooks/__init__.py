"""QuickBooks Online for the integration hub (distribution ``hub-quickbooks``, entry point ``quickbooks``)."""
