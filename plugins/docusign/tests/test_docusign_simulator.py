"""The simulator keeps to DocuSign's documented behaviour: OAuth with PKCE and single-use codes, the default
account in userinfo, a combined document that is a well-formed PDF, Connect messages signed with every key
and retried with a new signature until acknowledged, the polling rule, and the rate-limit headers and errors."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import httpx
import pytest

from hub.testing import Answer, Receiver
from hub_docusign.pdf import make_pdf
from hub_docusign.simulator import (
    ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    HMAC_KEY,
    SECOND_HMAC_KEY,
    USER_ID,
    DocuSignSimulator,
    sign,
)


@pytest.fixture
def ds():
    with DocuSignSimulator(hmac_keys=(HMAC_KEY, SECOND_HMAC_KEY)) as sim:
        sim.tokens.issue("test-token", USER_ID, 3600)
        yield sim


def _api(ds, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{ds.url}/restapi/v2.1/accounts/{ACCOUNT_ID}{path}",
                         headers={"Authorization": "Bearer test-token"}, timeout=10, **kwargs)


def _envelope(ds, url: str = "http://127.0.0.1:9/hook") -> str:
    response = _api(ds, "POST", "/envelopes", json={
        "emailSubject": "Sign", "status": "sent",
        "documents": [{"documentId": "1", "name": "Contract", "fileExtension": "pdf",
                       "documentBase64": base64.b64encode(make_pdf([["Contract"]])).decode()}],
        "recipients": {"signers": [{"email": "a@example.com", "name": "A", "recipientId": "1", "routingOrder": "1"},
                                   {"email": "b@example.com", "name": "B", "recipientId": "2", "routingOrder": "2"}]},
        "eventNotification": {"url": url, "includeHMAC": "true", "requireAcknowledgment": "true",
                              "events": ["envelope-sent", "envelope-completed", "recipient-completed"],
                              "eventData": {"version": "restv2.1", "format": "json"}}})
    assert response.status_code == 201, response.text
    return response.json()["envelopeId"]


def well_formed_pdf(content: bytes) -> int:
    """Checks the header, the trailer and that every cross-reference entry points at its object; returns
    the number of pages."""
    assert content.startswith(b"%PDF-1.") and content.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", content).group(1))
    assert content[startxref:startxref + 4] == b"xref"
    header = re.match(rb"xref\n0 (\d+)\n", content[startxref:])
    entries = content[startxref + header.end():].split(b"\n")[:int(header.group(1))]
    for number, entry in enumerate(entries[1:], start=1):
        offset = int(entry[:10])
        assert content[offset:].startswith(b"%d 0 obj" % number), number
    return len(re.findall(rb"/Type /Page\b", content))


def test_oauth_codes_work_once_with_their_pkce_verifier_and_userinfo_names_the_default_account(ds):
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    redirect = "http://127.0.0.1:9/cb"

    def code() -> str:
        consent = httpx.get(f"{ds.url}/oauth/auth", params={
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect, "scope": "signature",
            "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"})
        assert consent.status_code == 302
        return dict(httpx.URL(consent.headers["location"]).params)["code"]

    def token(form: dict, secret: str = CLIENT_SECRET) -> httpx.Response:
        return httpx.post(f"{ds.url}/oauth/token", data=form, auth=(CLIENT_ID, secret))

    first = code()
    assert token({"grant_type": "authorization_code", "code": first, "redirect_uri": redirect,
                  "code_verifier": "w" * 64}).json() == {"error": "invalid_grant"}
    second = code()
    assert token({"grant_type": "authorization_code", "code": second, "redirect_uri": redirect},
                 secret="wrong").status_code == 401
    granted = token({"grant_type": "authorization_code", "code": second, "redirect_uri": redirect,
                     "code_verifier": verifier})
    assert granted.status_code == 200 and granted.json()["expires_in"] == 8 * 3600
    assert token({"grant_type": "authorization_code", "code": second, "redirect_uri": redirect,
                  "code_verifier": verifier}).json() == {"error": "invalid_grant"}  # used
    info = httpx.get(f"{ds.url}/oauth/userinfo", headers={"Authorization": f"Bearer {granted.json()['access_token']}"})
    accounts = info.json()["accounts"]
    assert accounts[0]["is_default"] is False and accounts[1]["account_id"] == ACCOUNT_ID
    assert accounts[1]["is_default"] is True and accounts[1]["base_uri"] == ds.url
    denied = httpx.get(f"{ds.url}/oauth/auth", params={"response_type": "code", "client_id": CLIENT_ID,
                                                       "redirect_uri": redirect, "decision": "deny"})
    assert "error=access_denied" in denied.headers["location"]


def test_the_combined_document_is_a_well_formed_pdf_with_the_signatures(ds):
    envelope_id = _envelope(ds)
    ds.walk(envelope_id)
    response = _api(ds, "GET", f"/envelopes/{envelope_id}/documents/combined")
    assert response.headers["content-type"] == "application/pdf"
    assert well_formed_pdf(response.content) == 2  # the document and the certificate of completion
    assert b"Signed by B <b@example.com>" in response.content


def test_connect_signs_with_every_key_and_a_retry_carries_a_new_signature(ds):
    envelope_id = _envelope(ds)
    ds.walk(envelope_id)
    messages = ds.take_connect()
    assert [m.event for m in messages] == ["envelope-sent", "recipient-completed", "recipient-completed",
                                           "envelope-completed"]
    completed = messages[-1]
    assert completed.headers["X-DocuSign-Signature-1"] == sign(HMAC_KEY, completed.body)
    assert completed.headers["X-DocuSign-Signature-2"] == sign(SECOND_HMAC_KEY, completed.body)
    payload = json.loads(completed.body)
    assert (payload["data"]["accountId"], payload["data"]["envelopeId"], payload["retryCount"]) == (
        ACCOUNT_ID, envelope_id, 0)
    assert payload["data"]["envelopeSummary"]["status"] == "completed"
    ds.acknowledge(completed, 503)
    (retry,) = ds.take_connect()
    assert json.loads(retry.body)["retryCount"] == 1
    assert retry.headers["X-DocuSign-Signature-1"] == sign(HMAC_KEY, retry.body) != completed.headers[
        "X-DocuSign-Signature-1"]


def test_send_connect_posts_and_retries_until_the_listener_answers_200():
    with Receiver(script=[Answer(500)], then=200) as listener, DocuSignSimulator() as ds:
        ds.tokens.issue("test-token", USER_ID, 3600)
        _envelope(ds, url=listener.url)
        assert ds.send_connect() == [500]
        assert ds.send_connect() == [200]
        assert [json.loads(r.body)["retryCount"] for r in listener.received] == [0, 1]
        assert ds.connect_outbox == []


def test_polling_an_envelope_within_15_minutes_is_refused_and_limits_are_reported(ds):
    envelope_id = _envelope(ds)
    first = _api(ds, "GET", f"/envelopes/{envelope_id}", params={"include": "recipients"})
    assert first.status_code == 200 and len(first.json()["recipients"]["signers"]) == 2
    assert first.headers["X-RateLimit-Limit"] == "3000" and first.headers["X-BurstLimit-Limit"] == "200"
    assert int(first.headers["X-RateLimit-Remaining"]) == 3000 - 2
    again = _api(ds, "GET", f"/envelopes/{envelope_id}")
    assert (again.status_code, again.json()["errorCode"]) == (400, "HOURLY_ENVELOPE_POLLING_LIMIT_EXCEEDED")
    ds.advance(15 * 60)
    later = _api(ds, "GET", f"/envelopes/{envelope_id}")
    assert later.status_code == 200 and ds.polling_violations == 1

    ds.burst_limit = 200 - int(later.headers["X-BurstLimit-Remaining"]) + 1  # room for one more in this burst
    statuses = [_api(ds, "GET", "/templates") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 429, 429]
    assert statuses[1].json()["errorCode"] == "BURST_APIINVOCATION_LIMIT_EXCEEDED"
    assert statuses[1].headers["X-BurstLimit-Remaining"] == "0"
    ds.advance(60)  # a new burst window
    missing = _api(ds, "GET", "/envelopes/00000000-0000-0000-0000-000000000000")
    assert (missing.status_code, missing.json()["errorCode"]) == (400, "ENVELOPE_DOES_NOT_EXIST")
    unauthorized = httpx.get(f"{ds.url}/restapi/v2.1/accounts/{ACCOUNT_ID}/templates",
                             headers={"Authorization": "Bearer nope"})
    assert (unauthorized.status_code, unauthorized.json()["errorCode"]) == (401, "USER_AUTHENTICATION_FAILED")


async def test_auto_connect_posts_each_message_as_it_happens_for_a_running_hub():
    from hub.testing import wait_for

    with Receiver() as listener, DocuSignSimulator(auto_connect=True) as ds:
        ds.tokens.issue("test-token", USER_ID, 3600)
        envelope_id = _envelope(ds, url=listener.url)
        ds.walk(envelope_id)

        async def all_four():
            return len(listener.received) == 4 or None

        await wait_for(all_four, timeout=20)
        assert [json.loads(r.body)["event"] for r in listener.received] == [
            "envelope-sent", "recipient-completed", "recipient-completed", "envelope-completed"]
        assert ds.connect_outbox == []
