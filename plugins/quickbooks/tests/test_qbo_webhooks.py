"""Intuit's webhooks at unit level: the signature (with Intuit's own test vector), both payload shapes, and
what handling a notification asks of the hub."""

from __future__ import annotations

import pytest

import hub_quickbooks.plugin
from hub import Unauthorized, WebhookRequest
from hub.config import Settings
from hub.plugins import load_plugins
from hub_quickbooks.simulator import REALM_ID, SimulatorState

# From Intuit's Java SDK tests (../shared/providers.md).
VECTOR_TOKEN = "b5771f19b12ddb4bcdb9f08bdc50bc63878a"
VECTOR_BODY = (b'{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer",'
               b'"id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}')
VECTOR_SIGNATURE = "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q="


def verifier(tokens: str = VECTOR_TOKEN):
    registry, _ = load_plugins(Settings(environ={"QUICKBOOKS_VERIFIER_TOKEN": tokens}), entry_points=False,
                               extra=[("quickbooks", hub_quickbooks.plugin)])
    return registry.verifiers["quickbooks"]


def request(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"content-type": "application/json"} | ({"intuit-signature": signature} if signature else {})
    return WebhookRequest(body=body, headers=headers, url="http://127.0.0.1:8000/v1/webhooks/quickbooks")


def test_intuits_test_vector_verifies():
    verifier().verify(request(VECTOR_BODY, VECTOR_SIGNATURE), None)


@pytest.mark.parametrize("position", [0, 57, len(VECTOR_BODY) - 1])
def test_a_one_byte_change_to_the_body_fails(position):
    body = bytearray(VECTOR_BODY)
    body[position] ^= 0x01
    with pytest.raises(Unauthorized):
        verifier().verify(request(bytes(body), VECTOR_SIGNATURE), None)


def test_a_missing_or_foreign_signature_fails_and_a_rotated_token_still_verifies():
    with pytest.raises(Unauthorized):
        verifier().verify(request(VECTOR_BODY, None), None)
    with pytest.raises(Unauthorized):
        verifier("another-token").verify(request(VECTOR_BODY, VECTOR_SIGNATURE), None)
    with pytest.raises(Unauthorized):
        verifier("").verify(request(VECTOR_BODY, VECTOR_SIGNATURE), None)  # nothing configured: nothing passes
    verifier(f"new-token,{VECTOR_TOKEN}").verify(request(VECTOR_BODY, VECTOR_SIGNATURE), None)


def test_the_legacy_payload_parses_into_one_event_per_changed_entity_routed_by_realm():
    state = SimulatorState()
    body, headers = state.webhook_request([("Payment", "12", "Create"), ("Invoice", "7", "Update")])
    events = verifier(state.verifier_token).parse(WebhookRequest(body=body, headers=headers, url="x"))
    assert [(e.type, e.account_id, e.payload["id"]) for e in events] == [
        ("qbo.payment.create", REALM_ID, "12"), ("qbo.invoice.update", REALM_ID, "7")]
    assert len({e.event_id for e in events}) == 2
    again = verifier(state.verifier_token).parse(WebhookRequest(body=body, headers=headers, url="x"))
    assert [e.event_id for e in again] == [e.event_id for e in events]  # a redelivery is the same events


def test_the_cloudevents_payload_parses_with_intuits_event_ids():
    state = SimulatorState()
    body, headers = state.webhook_request([("Customer", "3", "Update")], format="cloudevents")
    v = verifier(state.verifier_token)
    v.verify(WebhookRequest(body=body, headers=headers, url="x"), None)
    (event,) = v.parse(WebhookRequest(body=body, headers=headers, url="x"))
    assert (event.type, event.account_id, event.payload["intuitentityid"]) == ("qbo.customer.updated.v1", REALM_ID, "3")
    assert event.event_id == event.payload["id"]


def test_an_unusable_body_is_refused_by_parse():
    with pytest.raises(ValueError):
        verifier().parse(request(b'{"something": "else"}', None))


class _Ctx:
    def __init__(self, import_payments: bool = True) -> None:
        self.settings = type("S", (), {"import_payments": import_payments})()


async def test_handling_a_notification_asks_for_an_incremental_pull_of_that_entity():
    state = SimulatorState()
    v = verifier(state.verifier_token)
    for change, fmt, pulled in ((("Payment", "1", "Create"), "legacy", "payment"),
                                (("Customer", "1", "Update"), "cloudevents", "client"),
                                (("Invoice", "4", "Delete"), "legacy", "invoice")):
        body, headers = state.webhook_request([change], format=fmt)
        (event,) = v.parse(WebhookRequest(body=body, headers=headers, url="x"))
        outcome = await v.handle(_Ctx(), event)
        assert outcome.syncs == [pulled] and outcome.events == []
    body, headers = state.webhook_request([("Payment", "1", "Create")])
    (event,) = v.parse(WebhookRequest(body=body, headers=headers, url="x"))
    assert await v.handle(_Ctx(import_payments=False), event) is None
    body, headers = state.webhook_request([("Estimate", "1", "Create")])
    (event,) = v.parse(WebhookRequest(body=body, headers=headers, url="x"))
    assert await v.handle(_Ctx(), event) is None


def test_the_sample_is_signed_so_that_it_verifies():
    v = verifier("token-a")
    sample = v.sample("qbo.payment.create", "http://127.0.0.1:8000/v1/webhooks/quickbooks")
    v.verify(sample, None)
    assert v.parse(sample)[0].type == "qbo.payment.create"


def test_the_environment_setting_picks_intuits_sandbox_or_production_hosts():
    from hub_quickbooks.config import Hosts

    assert Hosts.from_environ({}).api == "https://sandbox-quickbooks.api.intuit.com"
    assert Hosts.from_environ({"QUICKBOOKS_ENVIRONMENT": "production"}).api == "https://quickbooks.api.intuit.com"
    production = Hosts.from_environ({"QUICKBOOKS_ENVIRONMENT": "Production "})
    assert (production.authorize, production.token, production.revoke) == (
        "https://appcenter.intuit.com/connect/oauth2", "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "https://developer.api.intuit.com/v2/oauth2/tokens/revoke")
    with pytest.raises(ValueError):
        Hosts.from_environ({"QUICKBOOKS_ENVIRONMENT": "staging"})
