"""The Google Drive plugin's conformance adapter: how ``hub.testing.conformance`` (and demo mode) starts the
simulator, points the plugin at it, connects through Google's consent, and what records and push
notifications look like."""

from __future__ import annotations

import base64

import hub_google_drive.plugin
from hub.testing.adapter import ProviderAdapter
from hub_google_drive.channels import channel_token
from hub_google_drive.simulator import CLIENT_ID, CLIENT_SECRET, FOLDER, GoogleDriveSimulator

CHUNK_SIZE = 4 * 256 * 1024
"""1 MiB chunks against the simulator: a resumable upload is several chunks without big test files."""


class GoogleDriveAdapter(ProviderAdapter):
    provider = "google_drive"
    plugin = ("google_drive", hub_google_drive.plugin)
    probe = ("list_folder", {"folder_id": "root", "page_size": 10})

    def simulator(self) -> GoogleDriveSimulator:
        return GoogleDriveSimulator()

    def environ(self, simulator: GoogleDriveSimulator) -> dict[str, str]:
        return {"GOOGLE_DRIVE_BASE_URL": simulator.url, "GOOGLE_CLIENT_ID": CLIENT_ID,
                "GOOGLE_CLIENT_SECRET": CLIENT_SECRET, "GOOGLE_DRIVE_CHUNK_SIZE": str(CHUNK_SIZE)}

    def wrong_client_environ(self, simulator: GoogleDriveSimulator) -> dict[str, str]:
        return self.environ(simulator) | {"GOOGLE_CLIENT_SECRET": "GOCSPX-not-the-client-secret"}

    def secrets(self, simulator: GoogleDriveSimulator) -> list[str]:
        with simulator.lock:
            issued = list(simulator.issued)
        return super().secrets(simulator) + [CLIENT_SECRET] + issued

    def outbound_samples(self):
        return {
            "job_folder": [{"id": "job-1", "name": "12 Elm St remodel"}, {"id": "job-2", "name": "Oak Ave deck"}],
            "document": [
                {"id": "doc-1", "job_id": "job-1", "name": "contract.pdf", "mime_type": "application/pdf",
                 "content_base64": base64.b64encode(b"%PDF-1.7 contract").decode(), "version": "1"},
                {"id": "doc-2", "job_id": "job-2", "name": "plans.txt", "mime_type": "text/plain",
                 "content_base64": base64.b64encode(b"deck plans").decode()},
            ],
        }

    def remote_count(self, simulator: GoogleDriveSimulator, entity: str) -> int:
        with simulator.lock:
            files = list(simulator.files.values())
        return sum(1 for f in files if (f.mime_type == FOLDER) == (entity == "job_folder"))

    def seed_inbound(self, simulator: GoogleDriveSimulator) -> None:
        simulator.add_file("site-photo.jpg", b"\xff\xd8 photo", mime_type="image/jpeg")
        simulator.add_file("someone-elses.pdf", b"%PDF", by_app=False)  # drive.file: the hub never sees it

    def webhook(self, simulator: GoogleDriveSimulator, connection, *, secret: str = "good"):
        key = CLIENT_SECRET if secret == "good" else "GOCSPX-someone-elses-secret"
        channel = "4ba78bf0-6a47-11e2-bcfd-0800200c9a66"
        token = channel_token(key, connection["id"], channel)
        return b"", {"x-goog-channel-id": channel, "x-goog-channel-token": token,
                     "x-goog-resource-id": "ret08u3rv24htgh289g", "x-goog-resource-state": "change",
                     "x-goog-message-number": "10", "x-goog-resource-uri": f"{simulator.url}/drive/v3/changes"}

    def webhook_path(self, connection) -> str:
        return f"/v1/webhooks/google_drive/{connection['id']}"
