"""Google Drive passes the conformance suite every provider plugin runs."""

from hub.testing.conformance import conformance_suite
from hub_google_drive.testing import GoogleDriveAdapter

TestGoogleDriveConformance = conformance_suite(GoogleDriveAdapter())
