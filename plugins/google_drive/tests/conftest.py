"""The Google Drive plugin's tests run the hub's kit (``hub.testing``) with this plugin against the Drive
simulator."""

from __future__ import annotations

import pytest

import hub_google_drive.plugin
from hub_google_drive.simulator import GoogleDriveSimulator
from hub_google_drive.testing import GoogleDriveAdapter


@pytest.fixture
def drive():
    with GoogleDriveSimulator() as simulator:
        yield simulator


@pytest.fixture
def hub_plugins():
    return [("google_drive", hub_google_drive.plugin)]


@pytest.fixture
def hub_environ(drive: GoogleDriveSimulator) -> dict[str, str]:
    return GoogleDriveAdapter().environ(drive)
