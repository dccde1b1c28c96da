"""Twilio's signatures: the SDK's validator over the public URL (never the Host header), form bodies and JSON
bodies with bodySHA256, twilio-python's own test vector, and TwiML back."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

import msgspec
import pytest
from twilio_flows import connect, webhook_url

from hub import Unauthorized, WebhookRequest
from hub.testing import run_jobs
from hub_twilio import webhooks
from hub_twilio.simulator import signature

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")

# twilio-python's tests/unit/test_request_validator.py
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
                 "To": "+18005551212"}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
VECTOR_ACCOUNT = "AC" + "12345" * 6 + "ab"


class TokenOnly:
    """What ``verify`` reads of a connection: its credentials."""

    def __init__(self, token: str) -> None:
        self.token = token

    def credentials(self, fields):
        return msgspec.convert({"account_sid": VECTOR_ACCOUNT, "auth_token": self.token}, fields)


def test_the_sdk_vector_verifies_and_a_tampered_parameter_does_not():
    body = urlencode(VECTOR_PARAMS).encode()
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": VECTOR_SIGNATURE}
    assert signature(VECTOR_TOKEN, VECTOR_URL, {k: [v] for k, v in VECTOR_PARAMS.items()}) == VECTOR_SIGNATURE

    webhooks.verify(WebhookRequest(body=body, headers=headers, url=VECTOR_URL), TokenOnly(VECTOR_TOKEN))
    webhooks.verify(WebhookRequest(body=body, headers=headers, url=VECTOR_URL.replace(".com/", ".com:443/")),
                    TokenOnly(VECTOR_TOKEN))  # Twilio may have signed the URL with or without the port
    for refused in (
        WebhookRequest(body=body.replace(b"Digits=1234", b"Digits=1235"), headers=headers, url=VECTOR_URL),
        WebhookRequest(body=body, headers=headers, url=VECTOR_URL.replace("foo=1", "foo=2")),
        WebhookRequest(body=body, headers=headers | {"x-twilio-signature": ""}, url=VECTOR_URL),
    ):
        with pytest.raises(Unauthorized):
            webhooks.verify(refused, TokenOnly(VECTOR_TOKEN))
    with pytest.raises(Unauthorized):
        webhooks.verify(WebhookRequest(body=body, headers=headers, url=VECTOR_URL), TokenOnly("54321"))


class TestBehindAProxy:
    @pytest.fixture
    def settings(self, settings):
        """The hub behind a proxy: Twilio calls https://mycompany.com, the app sees 127.0.0.1:8000 as its Host."""
        return msgspec.structs.replace(settings, public_url="https://mycompany.com")

    async def test_the_vector_through_our_endpoint_is_checked_against_the_public_url(self, client, hub, tenant,
                                                                                     simulator):
        simulator.add_account(VECTOR_ACCOUNT, VECTOR_TOKEN, "Vector Co").numbers.add("+15017122661")
        connection = await connect(client, tenant,
                                   credentials={"account_sid": VECTOR_ACCOUNT, "auth_token": VECTOR_TOKEN})
        path = f"/v1/webhooks/twilio/{connection['id']}?foo=1&bar=2"
        params = VECTOR_PARAMS | {"MessageSid": "SM" + "1" * 32, "Body": "hello", "AccountSid": VECTOR_ACCOUNT}
        public = f"https://mycompany.com{path}"
        body = urlencode(params).encode()
        signed = {"Content-Type": "application/x-www-form-urlencoded",
                  "X-Twilio-Signature": signature(VECTOR_TOKEN, public, {k: [v] for k, v in params.items()})}

        accepted = await client.post(path, content=body, headers=signed)
        as_host_saw_it = await client.post(path, content=body, headers=signed | {"X-Twilio-Signature": signature(
            VECTOR_TOKEN, f"http://127.0.0.1:8000{path}", {k: [v] for k, v in params.items()})})
        tampered = await client.post(path, content=body.replace(b"Digits=1234", b"Digits=4321"), headers=signed)

        assert accepted.status_code == 200, accepted.text
        assert accepted.headers["content-type"].startswith("text/xml")
        assert accepted.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
        assert (as_host_saw_it.status_code, tampered.status_code) == (401, 401)
        assert tampered.json()["error"]["code"] == "invalid_signature"
        await run_jobs(hub)
        [event] = (await client.get("/v1/events?type=sms.received", headers=tenant.headers)).json()
        assert (event["data"]["from"], event["data"]["body"]) == ("+14158675309", "hello")


async def test_json_bodies_are_checked_by_their_body_sha256(client, hub, tenant, simulator):
    connection = await connect(client, tenant)
    payload = {"MessageSid": "SM" + "2" * 32, "AccountSid": "ACx", "MessageStatus": "delivered",
               "To": "+14155550100", "From": "+15017122661"}
    call = simulator.json_webhook(webhook_url(connection), payload)
    assert "bodySHA256=" + hashlib.sha256(call.body).hexdigest() in call.url

    good = await client.post(call.path, content=call.body, headers=call.headers)
    altered = json.dumps(payload | {"MessageStatus": "failed"}).encode()
    tampered = await client.post(call.path, content=altered, headers=call.headers)
    unhashed = await client.post(call.path.split("?")[0], content=call.body, headers=call.headers)

    assert good.status_code == 200, good.text
    assert (tampered.status_code, unhashed.status_code) == (401, 401)
    await run_jobs(hub)
    [record] = (await client.get("/v1/records/twilio/message", headers=tenant.headers)).json()["items"]
    assert record["data"]["status"] == "delivered"


async def test_a_late_status_never_moves_a_message_back_and_failures_keep_their_error_code(client, hub, tenant,
                                                                                          simulator):
    connection = await connect(client, tenant)
    sid = (await client.post("/v1/connections/twilio/actions/send_sms", headers=tenant.headers,
                             json={"to": "+14155550100", "body": "hi"})).json()["sid"]
    other = (await client.post("/v1/connections/twilio/actions/send_sms", headers=tenant.headers,
                               json={"to": "+14155550101", "body": "hi"})).json()["sid"]
    for call in (simulator.status_callback(sid, "delivered"), simulator.status_callback(sid, "sent"),
                 simulator.status_callback(other, "undelivered", error_code=30003)):
        assert (await client.post(call.path, content=call.body, headers=call.headers)).status_code == 200
    await run_jobs(hub)
    records = {r["external_id"]: r["data"] for r in
               (await client.get("/v1/records/twilio/message", headers=tenant.headers)).json()["items"]}
    assert records[sid]["status"] == "delivered"
    assert (records[other]["status"], records[other]["error_code"]) == ("undelivered", "30003")
    assert connection["id"]


async def test_a_connections_url_without_its_auth_token_or_of_another_provider_is_refused(client, tenant, simulator):
    connection = await connect(client, tenant)
    call = simulator.inbound_message(webhook_url(connection), from_="+14155550123", body="hi")
    assert (await client.post("/v1/webhooks/twilio", content=call.body, headers=call.headers)).status_code == 404
    missing = call.path.replace(connection["id"], "00000000-0000-0000-0000-000000000000")
    assert (await client.post(missing, content=call.body, headers=call.headers)).status_code == 404
