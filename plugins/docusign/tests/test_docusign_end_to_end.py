"""The whole path, on every database and job runner: connect, send a contract, DocuSign's Connect messages
through the hub's endpoint as the signers open and sign it, the signed PDF downloaded once and kept as a hub
file, and ``esign.envelope.completed`` (with the file's id) delivered, signed, to the tenant's endpoint."""

from __future__ import annotations

import json

import standardwebhooks
from ds_flows import connect, contract, events, ok, record

from hub.testing import subscribe, wait_for
from hub_docusign.testing import deliver_connect


async def test_a_contract_is_sent_signed_filed_and_announced_once(client, hub, tenant, simulator, jobs,
                                                                   webhook_receiver):
    connection = await connect(client, tenant)
    endpoint = await subscribe(client, tenant, webhook_receiver, ["esign.envelope.completed"])

    sent = await ok(client, tenant, "send_envelope", contract())
    envelope_id = sent["envelope_id"]
    assert (sent["status"], sent["document_type"], sent["document_id"], sent["job_id"]) == (
        "sent", "contract", "c-42", "job-7")
    definition = simulator.envelope(envelope_id)
    assert definition.event_notification["url"] == f"http://127.0.0.1:8000/v1/webhooks/docusign/{connection['id']}"

    simulator.walk(envelope_id, to="completed")
    delivered = await deliver_connect(client, simulator)
    assert [m.event for m, _ in delivered] == [
        "envelope-sent", "recipient-sent", "recipient-delivered", "envelope-delivered", "recipient-completed",
        "recipient-sent", "recipient-delivered", "recipient-completed", "envelope-completed"]
    assert {status for _, status in delivered} == {200}
    completed_message = delivered[-1][0]
    again = await client.post(f"/v1/webhooks/docusign/{connection['id']}", content=completed_message.body,
                              headers=completed_message.headers)  # DocuSign redelivers what it doubts
    assert again.status_code == 200

    async def completed():
        found = await events(client, tenant, "esign.envelope.completed")
        return found or None

    (event,) = await wait_for(completed)
    data = event["data"]
    assert (data["envelope_id"], data["status"], data["document_type"], data["document_id"], data["job_id"],
            data["file_path"]) == (envelope_id, "completed", "contract", "c-42", "job-7", "contract/c-42/signed.pdf")
    assert [(s["email"], s["status"]) for s in data["signers"]] == [
        ("olive@example.com", "completed"), ("carl@example.com", "completed")]

    meta = (await client.get(f"/v1/files/{data['file_id']}", headers=tenant.headers)).json()
    assert (meta["path"], meta["content_type"]) == ("contract/c-42/signed.pdf", "application/pdf")
    content = (await client.get(f"/v1/files/{data['file_id']}/content", headers=tenant.headers)).content
    assert content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")
    assert b"Signed by Carl Contractor" in content
    assert simulator.downloads(envelope_id) == 1

    kept = await record(client, tenant, envelope_id)
    assert (kept["status"], kept["file_id"], kept["sent_by"]) == ("completed", data["file_id"], "user-3")

    (request,) = await wait_for(lambda: _received(webhook_receiver))
    standardwebhooks.Webhook(endpoint["secret"]).verify(request.body, request.headers)
    sent_event = json.loads(request.body)
    assert (sent_event["type"], sent_event["data"]["file_id"]) == ("esign.envelope.completed", data["file_id"])
    assert len(await events(client, tenant, "esign.envelope.completed")) == 1
    assert len(await events(client, tenant, "esign.envelope.sent")) == 1


async def _received(receiver):
    return receiver.received or None
