"""Google Drive for the integration hub."""
