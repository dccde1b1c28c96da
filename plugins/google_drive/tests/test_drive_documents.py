"""Documents out (a job's documents as files in its folder, new versions as new versions of the same file)
and signed envelopes filed by the ``hub_event`` observer when the tenant turns it on."""

from __future__ import annotations

import base64

import pytest
from drive_flows import action, connect, run, settings, sync
from sqlalchemy import select

from hub.db.models import Event
from hub.testing import run_jobs

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")


def document(n: int, content: bytes, version: str, **extra) -> dict:
    return {"id": f"doc-{n}", "job_id": "job-1", "name": f"document-{n}.pdf", "mime_type": "application/pdf",
            "content_base64": base64.b64encode(content).decode(), "version": version, **extra}


async def push(client, hub, tenant, records) -> dict:
    run_id = await sync(client, tenant, "document", records=records)
    await run_jobs(hub)
    return await run(client, tenant, run_id)


async def test_documents_go_to_the_jobs_folder_new_versions_update_the_file_unchanged_make_no_call(
        client, hub, tenant, drive):
    await connect(client, tenant)
    folder = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "12 Elm St"})
    first = await push(client, hub, tenant, [document(1, b"%PDF v1", "1"), document(2, b"%PDF other", "1")])
    assert (first["created"], first["failed"]) == (2, 0), first
    files = {f.name: f for f in drive.children(folder["folder_id"])}
    assert sorted(files) == ["document-1.pdf", "document-2.pdf"] and files["document-1.pdf"].content == b"%PDF v1"

    calls = drive.calls()
    again = await push(client, hub, tenant, [document(1, b"%PDF v1", "1"), document(2, b"%PDF other", "1")])
    assert (again["unchanged"], again["created"], again["updated"]) == (2, 0, 0)
    assert drive.calls() == calls, "unchanged documents called Drive"

    drive.fail_next(404, path=f"/upload/drive/v3/files/{files['document-2.pdf'].id}")  # as if deleted in Drive
    gone = await push(client, hub, tenant, [document(2, b"%PDF other", "2")])
    assert (gone["created"], gone["failed"]) == (1, 0), gone  # the new version became a new file
    newer = await push(client, hub, tenant, [document(1, b"%PDF v2, signed", "2")])
    assert newer["updated"] == 1, newer
    after = {f.name: f for f in drive.children(folder["folder_id"])}
    assert after["document-1.pdf"].id == files["document-1.pdf"].id, "a new version made a new file"
    assert after["document-1.pdf"].content == b"%PDF v2, signed"
    assert len(drive.children(folder["folder_id"])) == 3  # the fault only pretended document-2 was gone


async def test_a_document_of_a_job_without_a_folder_gets_one_and_a_bad_document_fails_alone(client, hub, tenant, drive):
    await connect(client, tenant)
    result = await push(client, hub, tenant, [
        document(1, b"%PDF", "1", job_id="job-new"),
        {"id": "doc-bad", "job_id": "job-new", "name": "nothing.pdf"},  # neither file_id nor content
        {"id": "doc-gone", "job_id": "job-new", "name": "gone.pdf", "file_id": "00000000-0000-0000-0000-000000000000"},
    ])
    assert (result["created"], result["failed"]) == (1, 2), result
    (folder,) = drive.folders()
    assert folder.name == "Job job-new" and [f.name for f in drive.children(folder.id)] == ["document-1.pdf"]


async def put_signed_pdf(hub, tenant, content: bytes = b"%PDF-1.7 signed by both parties"):
    from hub.files import TenantFiles

    return await TenantFiles(hub, tenant.id).put("contract/c-42/signed.pdf", content, content_type="application/pdf")


def completed(file_id, job_id="job-1") -> dict:
    return {"type": "esign.envelope.completed", "data": {
        "envelope_id": "env-1", "status": "completed", "document_type": "contract", "document_id": "c-42",
        "job_id": job_id, "signers": [{"email": "owner@client.example", "name": "Owner", "status": "completed"}],
        "file_id": str(file_id), "file_path": "contract/c-42/signed.pdf"}}


async def publish(client, tenant, event: dict) -> None:
    response = await client.post("/v1/events", json=event, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def test_a_completed_envelopes_pdf_lands_in_the_job_folder_when_the_automation_is_on(client, hub, tenant, drive):
    await connect(client, tenant)
    folder = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "12 Elm St"})
    pdf = await put_signed_pdf(hub, tenant)
    await settings(client, tenant, file_signed_envelopes=True)

    await publish(client, tenant, completed(pdf.id))
    await run_jobs(hub)
    (filed,) = drive.children(folder["folder_id"])
    assert (filed.name, filed.content, filed.mime_type) == (
        "contract-c-42-signed.pdf", b"%PDF-1.7 signed by both parties", "application/pdf")

    uploads = drive.calls("/upload/")
    await publish(client, tenant, completed(pdf.id))  # the same envelope again (a redelivered status)
    await run_jobs(hub)
    assert drive.calls("/upload/") == uploads and len(drive.children(folder["folder_id"])) == 1


async def test_nothing_is_filed_when_the_automation_is_off(client, hub, tenant, drive):
    await connect(client, tenant)
    folder = await action(client, tenant, "create_job_folder", {"job_id": "job-1", "name": "12 Elm St"})
    pdf = await put_signed_pdf(hub, tenant)
    calls = drive.calls()
    await publish(client, tenant, completed(pdf.id))
    ran = await run_jobs(hub)
    assert any(r.kind == "event.observe" and r.status == "done" for r in ran), ran  # the observer did run
    assert drive.children(folder["folder_id"]) == [] and drive.calls() == calls


async def test_another_tenants_file_is_never_filed(client, hub, tenant, drive):
    from hub.testing.app import new_tenant

    await connect(client, tenant)
    await settings(client, tenant, file_signed_envelopes=True)
    other = await new_tenant(client)
    theirs = await put_signed_pdf(hub, other, b"%PDF someone else's contract")
    await publish(client, tenant, completed(theirs.id))
    await run_jobs(hub)
    assert drive.calls("/upload/") == 0 and drive.folders() == []
    async with hub.session() as session:
        assert (await session.scalars(select(Event).where(Event.type == "esign.envelope.completed"))).all()
