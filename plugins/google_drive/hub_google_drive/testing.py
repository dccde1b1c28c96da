"""The Google Drive plugin's conformance adapter: how ``hub.testing.conformance`` (and demo mode) starts the
simulator, points the plugin at it, connects through Google's consent, and what records and push
notifications look like."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import hub_google_drive.plugin
from hub.testing.adapter import DemoPlace, DemoStep, ProviderAdapter
from hub_google_drive.channels import channel_token
from hub_google_drive.simulator import CLIENT_ID, CLIENT_SECRET, FOLDER, GoogleDriveSimulator

CHUNK_SIZE = 4 * 256 * 1024
"""1 MiB chunks against the simulator: a resumable upload is several chunks without big test files."""
DEMO_WAIT_SECONDS = 30.0
SCOPE_OF_WORK = "Oak St remodel: demolition, framing, drywall.\n"


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

    # -- demo mode ------------------------------------------------------------------------------------
    def demo_simulator(self) -> GoogleDriveSimulator:
        """Posting each push notification to the hub as Drive does."""
        return GoogleDriveSimulator(deliver=True)

    async def demo_connect(self, client, tenant, simulator: GoogleDriveSimulator) -> None:
        """The consent; then the hub's scheduler makes the first reads: ``push_channel`` opens the channel and
        ``file_change`` takes the page token changes are read from. Waits for both, or a file changed in Drive
        before them would be no news to the hub."""
        await self.connect(client, tenant, simulator)
        connection = (await client.get(f"/v1/connections/{self.provider}", headers=tenant.headers)).json()
        address = f"/v1/webhooks/{self.provider}/{connection['id']}"
        deadline = time.monotonic() + DEMO_WAIT_SECONDS
        while True:
            read = await client.get(f"/v1/syncs?provider={self.provider}&entity=file_change&status=completed",
                                    headers=tenant.headers)
            read.raise_for_status()
            if read.json() and any(c.address.endswith(address) for c in simulator.live_channels()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the hub's first Google Drive reads opened no push channel")
            await asyncio.sleep(0.05)

    def demo_steps(self, simulator: GoogleDriveSimulator) -> list[DemoStep]:
        document = {"id": "doc-oak-scope", "job_id": "job-oak", "name": "Scope of work.txt", "mime_type": "text/plain",
                    "content_base64": base64.b64encode(SCOPE_OF_WORK.encode()).decode(), "version": "1"}
        synced = {"provider": "google_drive", "entity": "document", "direction": "outbound", "status": "completed",
                  "failed": 0}
        return [
            DemoStep("Google Drive: make the job's folder (the same job always gets the same folder)", "POST",
                     "/v1/connections/google_drive/actions/create_job_folder",
                     {"job_id": "job-oak", "name": "Oak St remodel"},
                     note="the answer has the folder's id and link; a new name renames it"),
            DemoStep("Google Drive: file the job's scope of work in it (a new version uploads over the same file)",
                     "POST", "/v1/connections/google_drive/syncs", {"entity": "document", "records": [document]},
                     events=("sync.completed",), data={"sync.completed": synced},
                     note="content_base64 is the file's text; a hub file (POST /v1/files) goes as \"file_id\""),
            DemoStep("Google Drive: the client edits the scope of work in Drive (Drive notifies the hub's push "
                     "channel; the hub reads what changed)", "POST", "edit-file",
                     {"document_id": "doc-oak-scope", "text": "Oak St remodel: demolition, framing, drywall, paint.\n"},
                     target="provider", events=("document.changed",),
                     data={"document.changed": {"document_id": "doc-oak-scope"}},
                     note="the hub's own uploads are no news: only changes made by someone else are reported"),
        ]

    def demo_triggers(self):
        return {"edit-file": _edit_file}


def _edit_file(simulator: GoogleDriveSimulator, body: dict, place: DemoPlace) -> dict[str, Any]:
    """Someone changes a document the hub filed, in Drive's own editor; Drive notifies the channel."""
    document, text = body.get("document_id"), body.get("text")
    if not isinstance(document, str) or not document:
        raise ValueError("document_id (the id of a document synced to Drive) is required")
    if not isinstance(text, str):
        raise ValueError("text (the file's new content) is required")
    with simulator.lock:
        found = [f for f in simulator.files.values()
                 if f.app_properties.get("hub_document_id") == document and not f.trashed]
        if not found:
            raise LookupError(f"Google Drive has no file of document {document} (sync it first)")
        if found[0].content == text.encode():
            raise ValueError("that is what the file holds already: a change needs new text")
        edited = simulator.edit_file(found[0].id, content=text.encode())
        return {"file_id": edited.id, "name": edited.name, "version": str(edited.version)}
