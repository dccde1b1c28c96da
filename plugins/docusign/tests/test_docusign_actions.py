"""The actions against the simulator: the default account's base URI, envelopes from documents (inline or hub
files) and templates, drafts, refusals that leave nothing behind, status at most once per 15 minutes, void,
resend, the signed PDF as a hub file, another tenant's envelope, DocuSign's limits."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest
from ds_flows import action, connect, contract, events, ok, pdf_base64, record

from hub.testing import new_tenant, run_jobs
from hub_docusign.client import raise_for
from hub_docusign.config import DocuSignConfig
from hub_docusign.simulator import ACCOUNT_ID, OTHER_ACCOUNT_ID
from hub_docusign.testing import deliver_connect

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")


def _api_calls(simulator, method: str | None = None, suffix: str = "") -> int:
    return len(simulator.logged(lambda r: r.path.startswith("/restapi/") and (method is None or r.method == method)
                                and r.path.endswith(suffix)))


async def test_connecting_picks_the_default_account_and_every_call_goes_to_its_base_uri(client, tenant, simulator):
    connection = await connect(client, tenant)
    assert (connection["external_account_id"], connection["external_account_name"]) == (
        ACCOUNT_ID, "Ross Construction Demo")  # not the first account userinfo lists
    templates = (await ok(client, tenant, "list_templates"))["templates"]
    assert {(t["name"], tuple(t["roles"])) for t in templates} == {
        ("Standard construction contract", ("Client", "Contractor")), ("Change order", ("Client",))}
    (call,) = simulator.logged(lambda r: r.path.startswith("/restapi/"))
    assert call.request.path == f"/restapi/v2.1/accounts/{ACCOUNT_ID}/templates"


async def test_a_template_is_sent_with_its_roles_and_the_hubs_connect_listener(client, tenant, simulator):
    connection = await connect(client, tenant)
    template = next(t for t in (await ok(client, tenant, "list_templates"))["templates"] if t["name"] == "Change order")
    sent = await ok(client, tenant, "send_envelope", {
        "subject": "Change order 3", "template_id": template["template_id"], "document_type": "change_order",
        "document_id": "co-3", "signers": [{"email": "olive@example.com", "name": "Olive Owner",
                                            "role_name": "Client"}]})
    envelope = simulator.envelope(sent["envelope_id"])
    assert (envelope.status, envelope.template_id) == ("sent", template["template_id"])
    assert [(s["email"], s["roleName"]) for s in envelope.signers] == [("olive@example.com", "Client")]
    notification = envelope.event_notification
    assert notification["url"] == f"http://127.0.0.1:8000/v1/webhooks/docusign/{connection['id']}"
    assert (notification["includeHMAC"], notification["requireAcknowledgment"]) == ("true", "true")
    assert {"envelope-completed", "recipient-completed"} <= set(notification["events"])
    assert {f["name"]: f["value"] for f in envelope.custom_fields} == {
        "hub_document_type": "change_order", "hub_document_id": "co-3"}
    (announced,) = await events(client, tenant, "esign.envelope.sent")
    assert (announced["data"]["document_id"], announced["data"]["job_id"]) == ("co-3", None)


async def test_a_document_from_the_tenants_files_is_sent_and_another_tenants_file_is_a_404(client, tenant, simulator):
    await connect(client, tenant)
    pdf = base64.b64decode(pdf_base64("From the files"))
    uploaded = await client.post("/v1/files", headers=tenant.headers, data={"path": "drafts/c-50.pdf"},
                                 files={"file": ("c-50.pdf", pdf, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    document = {"name": "Contract C-50", "file_id": uploaded.json()["id"]}
    sent = await ok(client, tenant, "send_envelope", contract("c-50", documents=[document]))
    assert simulator.envelope(sent["envelope_id"]).documents[0]["content"] == pdf

    other = await new_tenant(client, "Another builder")
    await connect(client, other)
    refused = await action(client, other, "send_envelope", contract("c-51", documents=[document]))
    assert refused.status_code == 404, refused.text
    assert len(simulator.account().envelopes) == 1


BAD_INPUTS = [
    {"template_id": "8a7b6c5d-0000-0000-0000-000000000000"},  # documents and a template
    {"documents": []},  # neither
    {"documents": [{"name": "C", "content_base64": "not base64!"}]},
    {"documents": [{"name": "C", "content_base64": pdf_base64(), "file_id": "5f0c2d9e-7a1b-4c3d-9e8f-0a1b2c3d4e5f"}]},
    {"document_type": "../contracts"},
    {"document_id": "c/42"},
    {"signers": []},
    {"signers": [{"email": "not-an-email", "name": "X"}]},
    {"status": "completed"},
    {"subject": "x" * 101},
    {"unknown_field": True},
]


async def test_bad_input_is_a_422_and_nothing_is_sent_or_kept(client, tenant, simulator):
    await connect(client, tenant)
    for change in BAD_INPUTS:
        response = await action(client, tenant, "send_envelope", contract() | change)
        assert response.status_code == 422, (change, response.text)
        assert response.json()["error"]["code"] == "invalid_action_input"
    assert simulator.account().envelopes == {}
    assert (await client.get("/v1/records/docusign/envelope", headers=tenant.headers)).json()["items"] == []


async def test_what_docusign_refuses_is_a_clear_4xx_with_its_code_and_nothing_is_kept(client, tenant, simulator):
    await connect(client, tenant)
    unknown_template = await action(client, tenant, "send_envelope", contract(documents=[], template_id="0000-1111",
                                                                              signers=[{"email": "o@example.com",
                                                                                        "name": "O",
                                                                                        "role_name": "Client"}]))
    assert unknown_template.status_code == 404, unknown_template.text
    assert unknown_template.json()["error"]["details"]["docusign_error_code"] == "TEMPLATE_ID_INVALID"
    not_a_pdf = await action(client, tenant, "send_envelope", contract(documents=[
        {"name": "C", "file_extension": "pdf", "content_base64": base64.b64encode(b"plain text").decode()}]))
    assert not_a_pdf.status_code == 422, not_a_pdf.text
    assert not_a_pdf.json()["error"]["code"] == "docusign_format_conversion_error"
    assert "The data could not be converted" in not_a_pdf.json()["error"]["message"]
    assert (await client.get("/v1/records/docusign/envelope", headers=tenant.headers)).json()["items"] == []
    assert await events(client, tenant, "esign.envelope.sent") == []


async def test_a_draft_is_kept_and_not_announced(client, tenant, simulator):
    await connect(client, tenant)
    sent = await ok(client, tenant, "send_envelope", contract(status="draft"))
    assert sent["status"] == "draft"
    assert simulator.envelope(sent["envelope_id"]).status == "created"
    assert (await record(client, tenant, sent["envelope_id"]))["status"] == "draft"
    assert await events(client, tenant, "esign.envelope.sent") == []


async def test_the_status_is_asked_at_most_once_per_15_minutes_and_news_found_moves_the_record(
        client, hub, tenant, simulator, clock):
    await connect(client, tenant)
    envelope_id = (await ok(client, tenant, "send_envelope", contract()))["envelope_id"]
    got = await ok(client, tenant, "get_envelope", {"envelope_id": envelope_id})
    assert (got["cached"], got["envelope"]["status"]) == (True, "sent")  # the send itself was news
    assert _api_calls(simulator, "GET") == 0

    simulator.walk(envelope_id)  # signed; its Connect messages never arrive
    simulator.take_connect()
    clock.advance(timedelta(minutes=14))
    assert (await ok(client, tenant, "get_envelope", {"envelope_id": envelope_id}))["cached"] is True
    assert _api_calls(simulator, "GET") == 0

    clock.advance(timedelta(minutes=2))
    simulator.advance(16 * 60)
    got = await ok(client, tenant, "get_envelope", {"envelope_id": envelope_id})
    assert (got["cached"], got["envelope"]["status"]) == (False, "completed")
    assert [s["status"] for s in got["envelope"]["signers"]] == ["completed", "completed"]
    assert got["envelope"]["file_path"] == "contract/c-42/signed.pdf"
    assert _api_calls(simulator, "GET", envelope_id) == 1 and simulator.downloads(envelope_id) == 1
    (completed,) = await events(client, tenant, "esign.envelope.completed")
    assert completed["data"]["file_id"] == got["envelope"]["file_id"]

    for _ in range(3):
        assert (await ok(client, tenant, "get_envelope", {"envelope_id": envelope_id}))["cached"] is True
    assert _api_calls(simulator, "GET", envelope_id) == 1 and simulator.polling_violations == 0


async def test_void_is_announced_and_voiding_again_is_refused(client, hub, tenant, simulator):
    await connect(client, tenant)
    envelope_id = (await ok(client, tenant, "send_envelope", contract()))["envelope_id"]
    voided = await ok(client, tenant, "void_envelope", {"envelope_id": envelope_id, "reason": "Scope changed"})
    assert (voided["envelope"]["status"], voided["envelope"]["voided_reason"]) == ("voided", "Scope changed")
    assert simulator.envelope(envelope_id).status == "voided"
    await deliver_connect(client, simulator)  # Connect's envelope-voided changes nothing more
    await run_jobs(hub)
    (event,) = await events(client, tenant, "esign.envelope.voided")
    assert event["data"]["voided_reason"] == "Scope changed"
    again = await action(client, tenant, "void_envelope", {"envelope_id": envelope_id, "reason": "Again"})
    assert again.status_code == 422, again.text
    assert again.json()["error"]["code"] == "docusign_envelope_cannot_void_invalid_state"
    missing_reason = await action(client, tenant, "void_envelope", {"envelope_id": envelope_id, "reason": ""})
    assert missing_reason.status_code == 422


async def test_resend_and_the_signed_document_as_a_hub_file(client, hub, tenant, simulator):
    await connect(client, tenant)
    envelope_id = (await ok(client, tenant, "send_envelope", contract()))["envelope_id"]
    assert (await ok(client, tenant, "resend_envelope", {"envelope_id": envelope_id}))["resent"] is True
    early = await action(client, tenant, "download_document", {"envelope_id": envelope_id})
    assert (early.status_code, early.json()["error"]["code"]) == (409, "envelope_not_completed")

    simulator.walk(envelope_id)
    await deliver_connect(client, simulator)
    await run_jobs(hub)
    document = await ok(client, tenant, "download_document", {"envelope_id": envelope_id})
    assert (document["file_path"], simulator.downloads(envelope_id)) == ("contract/c-42/signed.pdf", 1)
    content = (await client.get(f"/v1/files/{document['file_id']}/content", headers=tenant.headers)).content
    assert content.startswith(b"%PDF-") and len(content) == document["size"]

    assert (await client.delete(f"/v1/files/{document['file_id']}", headers=tenant.headers)).status_code in (200, 204)
    again = await ok(client, tenant, "download_document", {"envelope_id": envelope_id})
    assert simulator.downloads(envelope_id) == 2  # the tenant deleted it: fetched again
    assert (await record(client, tenant, envelope_id))["file_id"] == again["file_id"]
    refused = await action(client, tenant, "resend_envelope", {"envelope_id": envelope_id})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "docusign_envelope_invalid_status"


async def test_another_tenants_envelope_is_a_404(client, tenant, simulator):
    await connect(client, tenant)
    envelope_id = (await ok(client, tenant, "send_envelope", contract()))["envelope_id"]
    simulator.make_default(OTHER_ACCOUNT_ID)  # the other tenant's DocuSign user has another default account
    other = await new_tenant(client, "Another builder")
    assert (await connect(client, other))["external_account_id"] == OTHER_ACCOUNT_ID
    for name, body in (("get_envelope", {"envelope_id": envelope_id}),
                       ("download_document", {"envelope_id": envelope_id}),
                       ("void_envelope", {"envelope_id": envelope_id, "reason": "mine now"})):
        response = await action(client, other, name, body)
        assert response.status_code == 404, (name, response.text)
    assert simulator.envelope(envelope_id).status == "sent"


async def test_a_throttled_request_is_retried_and_an_exhausted_hour_is_a_clear_error(client, tenant, simulator):
    await connect(client, tenant)
    simulator.throttle_next(retry_after=0, path="/restapi/")
    assert len((await ok(client, tenant, "list_templates"))["templates"]) == 2

    reset = str(3600 * 123456)
    response = httpx.Response(429, json={"errorCode": "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
                                         "message": "The maximum number of hourly API invocations has been exceeded."},
                              headers={"X-RateLimit-Reset": reset})
    with pytest.raises(Exception) as raised:
        raise_for(response, "template list")
    assert (raised.value.status, raised.value.code) == (503, "docusign_rate_limited")
    assert raised.value.details["resets_at"].startswith("1984-")


def test_the_declared_limits_follow_the_environment():
    demo = DocuSignConfig.from_environ({})
    production = DocuSignConfig.from_environ({"DOCUSIGN_ENVIRONMENT": "production"})
    assert demo.account_server == "https://account-d.docusign.com"
    assert production.account_server == "https://account.docusign.com"
    assert [(r.requests, r.per_seconds) for r in demo.rate_limits] == [(3000, 3600), (200, 30)]
    assert [(r.requests, r.per_seconds) for r in production.rate_limits] == [(3000, 3600), (500, 30)]
    with pytest.raises(ValueError):
        DocuSignConfig.from_environ({"DOCUSIGN_ENVIRONMENT": "staging"})
