"""Connect: every configured HMAC key is tried against every signature header, a tampered body is refused,
redeliveries and DocuSign's retries are processed once (the signed PDF downloaded once), statuses never move
back, and messages are routed by the DocuSign account."""

from __future__ import annotations

import base64
import copy

import pytest
from ds_flows import connect, contract, events, ok, record
from sqlalchemy import select

from hub.db.models import WebhookInbox
from hub.testing import new_tenant, run_jobs
from hub_docusign.pdf import make_pdf
from hub_docusign.simulator import ACCOUNT_ID, HMAC_KEY, OTHER_ACCOUNT_ID, SECOND_HMAC_KEY, ConnectMessage
from hub_docusign.testing import deliver_connect, environ

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")
RETIRED_KEY = "ds-sim-connect-hmac-key-retired-Zz1Yy2Xx3Ww4Vv5Uu6Tt7Ss8Rr9="


@pytest.fixture
def hub_environ(simulator):
    return environ(simulator, hmac_keys=(HMAC_KEY, SECOND_HMAC_KEY))


async def _inbox(hub) -> list[WebhookInbox]:
    async with hub.session() as session:
        return list(await session.scalars(select(WebhookInbox).order_by(WebhookInbox.received_at)))


async def _sent(client, hub, tenant, simulator) -> str:
    envelope_id = (await ok(client, tenant, "send_envelope", contract()))["envelope_id"]
    assert {status for _, status in await deliver_connect(client, simulator)} == {200}  # envelope- and recipient-sent
    await run_jobs(hub)
    return envelope_id


async def test_a_message_signed_with_the_second_of_two_keys_is_accepted(client, hub, tenant, simulator):
    await connect(client, tenant)
    simulator.hmac_keys = [RETIRED_KEY, SECOND_HMAC_KEY]  # the account's keys: one the hub no longer knows
    envelope_id = (await ok(client, tenant, "send_envelope", contract()))["envelope_id"]
    simulator.deliver(envelope_id)
    messages = simulator.take_connect()
    assert all("X-DocuSign-Signature-2" in m.headers for m in messages)
    for message in messages:
        response = await client.post(f"/v1/webhooks/docusign/{(await _connection_id(client, tenant))}",
                                     content=message.body, headers=message.headers)
        assert response.status_code == 200, response.text
    await run_jobs(hub)
    assert {row.status for row in await _inbox(hub)} == {"processed"}
    assert (await record(client, tenant, envelope_id))["status"] == "delivered"
    assert len(await events(client, tenant, "esign.envelope.delivered")) == 1


async def test_a_tampered_body_an_unknown_key_or_no_signature_is_refused_and_nothing_stored(client, hub, tenant,
                                                                                           simulator):
    await connect(client, tenant)
    await ok(client, tenant, "send_envelope", contract())
    (message, *_) = simulator.take_connect()
    tampered = message.body.replace(b'"envelope-sent"', b'"envelope-completed"')
    unknown = {**message.headers, "X-DocuSign-Signature-1": base64.b64encode(b"x" * 32).decode()}
    unsigned = {k: v for k, v in message.headers.items() if not k.startswith("X-DocuSign-Signature")}
    for body, headers in ((tampered, message.headers), (message.body, unknown), (message.body, unsigned)):
        response = await client.post("/v1/webhooks/docusign", content=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_signature"
    assert await _inbox(hub) == []


async def test_the_same_completion_delivered_twice_downloads_the_pdf_once(client, hub, tenant, simulator):
    await connect(client, tenant)
    envelope_id = await _sent(client, hub, tenant, simulator)
    simulator.walk(envelope_id, to="completed")
    delivered = await deliver_connect(client, simulator)
    completion = next(m for m, _ in delivered if m.event == "envelope-completed")
    retry = completion.retried()  # DocuSign's retry: retryCount 1, a new body and signature
    later = copy.deepcopy(completion.payload) | {"generatedDateTime": "2099-01-01T00:00:00.0000000Z"}
    another = ConnectMessage(completion.url, envelope_id, completion.event, later, True, True, (HMAC_KEY,))
    for message in (completion, retry, another):
        response = await client.post("/v1/webhooks/docusign", content=message.body, headers=message.headers)
        assert response.status_code == 200, response.text
    await run_jobs(hub)

    assert simulator.downloads(envelope_id) == 1
    (completed,) = await events(client, tenant, "esign.envelope.completed")
    assert completed["data"]["file_path"] == "contract/c-42/signed.pdf"
    rows = [row for row in await _inbox(hub) if row.event_type == "envelope-completed"]
    assert len(rows) == 2  # the redelivery and the retry are one event; the later message is another
    assert {row.status for row in rows} == {"processed"}
    files = (await client.get("/v1/files?prefix=contract/", headers=tenant.headers)).json()
    assert [f["path"] for f in files] == ["contract/c-42/signed.pdf"]


async def test_late_messages_never_move_an_envelope_back(client, hub, tenant, simulator):
    await connect(client, tenant)
    envelope_id = await _sent(client, hub, tenant, simulator)
    simulator.walk(envelope_id, to="completed")
    messages = simulator.take_connect()
    for message in reversed(messages):  # Connect promises no order
        response = await client.post("/v1/webhooks/docusign", content=message.body, headers=message.headers)
        assert response.status_code == 200
        await run_jobs(hub)
    kept = await record(client, tenant, envelope_id)
    assert kept["status"] == "completed" and kept["file_id"]
    assert [s["status"] for s in kept["signers"]] == ["completed", "completed"]
    assert len(await events(client, tenant, "esign.envelope.completed")) == 1
    assert await events(client, tenant, "esign.envelope.delivered") == []  # it came after the completion


async def test_a_declined_envelope_is_announced_with_the_reason_and_nothing_is_downloaded(client, hub, tenant,
                                                                                        simulator):
    await connect(client, tenant)
    envelope_id = await _sent(client, hub, tenant, simulator)
    simulator.decline(envelope_id, reason="The price is wrong")
    await deliver_connect(client, simulator)
    await run_jobs(hub)
    (declined,) = await events(client, tenant, "esign.envelope.declined")
    assert (declined["data"]["declined_reason"], declined["data"]["document_id"]) == ("The price is wrong", "c-42")
    (signer,) = await events(client, tenant, "esign.recipient.declined")
    assert signer["data"]["recipient"]["email"] == "olive@example.com"
    assert simulator.downloads(envelope_id) == 0


@pytest.mark.parametrize(("custom_fields", "path"), [
    ([{"name": "hub_document_type", "value": "change_order"}, {"name": "hub_document_id", "value": "co-9"}],
     "change_order/co-9/signed.pdf"),
    ([], "envelope/{envelope_id}/signed.pdf"),
    ([{"name": "hub_document_type", "value": ".."}, {"name": "hub_document_id", "value": "etc"}],
     "envelope/{envelope_id}/signed.pdf"),  # edited in DocuSign into something that is no path segment
])
async def test_an_envelope_the_hub_has_no_record_of_is_filed_by_its_custom_fields_or_its_id(
        client, hub, tenant, simulator, custom_fields, path):
    """Sent from DocuSign itself, or the hub stopped before it wrote the record: Connect still files it."""
    await connect(client, tenant)
    created = simulator._create(simulator.account(), {
        "emailSubject": "Change order 9", "status": "sent", "customFields": {"textCustomFields": custom_fields},
        "documents": [{"documentId": "1", "name": "CO-9", "fileExtension": "pdf",
                       "documentBase64": base64.b64encode(make_pdf([["CO-9"]])).decode()}],
        "recipients": {"signers": [{"email": "olive@example.com", "name": "Olive Owner", "recipientId": "1"}]},
        "eventNotification": {"url": "http://127.0.0.1:8000/v1/webhooks/docusign", "includeHMAC": "true",
                              "requireAcknowledgment": "true", "events": ["envelope-sent", "envelope-completed"],
                              "eventData": {"version": "restv2.1", "format": "json",
                                            "includeData": ["recipients", "custom_fields"]}}})
    envelope_id = created["envelopeId"]
    simulator.walk(envelope_id)
    await deliver_connect(client, simulator)
    await run_jobs(hub)
    (completed,) = await events(client, tenant, "esign.envelope.completed")
    assert completed["data"]["file_path"] == path.format(envelope_id=envelope_id)
    content = (await client.get(f"/v1/files/{completed['data']['file_id']}/content", headers=tenant.headers)).content
    assert content.startswith(b"%PDF-")


async def test_messages_are_routed_by_account_and_another_accounts_are_kept_unrouted(client, hub, tenant,
                                                                                    simulator):
    await connect(client, tenant)
    other = await new_tenant(client, "Another builder")
    mine = (await ok(client, tenant, "send_envelope", contract()))["envelope_id"]
    for message in simulator.take_connect():
        assert (await client.post("/v1/webhooks/docusign", content=message.body,
                                  headers=message.headers)).status_code == 200
    foreign = []
    for path in ("/v1/webhooks/docusign", f"/v1/webhooks/docusign/{await _connection_id(client, tenant)}"):
        foreign.append(simulator._create(simulator.account(OTHER_ACCOUNT_ID), {
            "emailSubject": "Elsewhere", "status": "sent",
            "documents": [{"documentId": "1", "name": "X", "fileExtension": "pdf",
                           "documentBase64": base64.b64encode(make_pdf([["X"]])).decode()}],
            "recipients": {"signers": [{"email": "x@example.com", "name": "X", "recipientId": "1"}]},
            "eventNotification": {"url": "http://127.0.0.1:8000/v1/webhooks/docusign", "includeHMAC": "true",
                                  "events": ["envelope-sent"]}})["envelopeId"])
        (message,) = simulator.take_connect()
        response = await client.post(path, content=message.body, headers=message.headers)
        assert response.status_code == 200
    await run_jobs(hub)
    rows = await _inbox(hub)
    assert sorted((row.account_id, row.status) for row in rows) == sorted([
        (ACCOUNT_ID, "processed"), (ACCOUNT_ID, "processed"), (OTHER_ACCOUNT_ID, "unrouted"),
        (OTHER_ACCOUNT_ID, "processed")])  # the last one named this connection's URL: processed, and ignored
    assert (await record(client, tenant, mine))["status"] == "sent"
    assert [await record(client, tenant, envelope_id) for envelope_id in foreign] == [None, None]
    assert (await client.get("/v1/records/docusign/envelope", headers=other.headers)).status_code == 404


async def _connection_id(client, tenant) -> str:
    return (await client.get("/v1/connections/docusign", headers=tenant.headers)).json()["id"]
