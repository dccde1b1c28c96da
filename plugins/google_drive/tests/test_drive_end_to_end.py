"""The whole path on every database and job runner: connect (the scheduler opens the push channel), a job
folder, the e-signature plugin's completed envelope filed into it by the observer, the owner's edit of that
PDF in Drive notified to the hub and delivered, signed, to the tenant's own endpoint as ``document.changed``."""

from __future__ import annotations

import json

from drive_flows import action, connect, deliver_notifications, settings

from hub.testing import wait_for


async def test_connect_file_a_signed_envelope_then_hear_about_the_owners_edit(client, hub, tenant, drive, jobs,
                                                                            webhook_receiver):
    await connect(client, tenant, periodic=True)

    async def channel_open():
        return drive.live_channels() or None

    (channel,) = await wait_for(channel_open)  # the scheduler's first read of push_channel
    endpoint = await client.post("/v1/webhook-endpoints", headers=tenant.headers,
                                 json={"url": webhook_receiver.url, "event_types": ["document.*"]})
    assert endpoint.status_code == 201, endpoint.text
    folder = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "12 Elm St"})
    await settings(client, tenant, file_signed_envelopes=True)
    pdf = await client.post("/v1/files", headers=tenant.headers, data={"path": "contract/c-42/signed.pdf"},
                            files={"file": ("signed.pdf", b"%PDF-1.7 signed", "application/pdf")})
    assert pdf.status_code in (200, 201), pdf.text

    async def changes_read():  # the scheduler's first read of file_change: where changes start from
        runs = (await client.get("/v1/syncs?entity=file_change", headers=tenant.headers)).json()
        return any(r["status"] == "completed" for r in runs)

    await wait_for(changes_read)
    published = await client.post("/v1/events", headers=tenant.headers, json={
        "type": "esign.envelope.completed", "data": {
            "envelope_id": "env-1", "status": "completed", "document_type": "contract", "document_id": "c-42",
            "job_id": "job-1", "signers": [], "file_id": pdf.json()["id"], "file_path": "contract/c-42/signed.pdf"}})
    assert published.status_code == 201, published.text

    async def filed():
        return drive.children(folder["folder_id"]) or None

    (signed,) = await wait_for(filed)
    assert (signed.name, signed.content) == ("contract-c-42-signed.pdf", b"%PDF-1.7 signed")

    drive.edit_file(signed.id, content=b"%PDF-1.7 signed, and initialled by the owner")
    assert set(await deliver_notifications(client, drive)) == {200}

    async def delivered():
        return [r for r in webhook_receiver.received if json.loads(r.body)["type"] == "document.changed"] or None

    (request,) = await wait_for(delivered)
    sent = json.loads(request.body)["data"]
    assert (sent["file_id"], sent["document_id"], sent["name"]) == (signed.id, "esign:env-1", signed.name)
    assert drive.live_channels() == [channel]
