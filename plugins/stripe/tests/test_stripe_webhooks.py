"""Stripe's webhooks: the signature checked by the SDK against every active secret, stale and future
timestamps refused, and payments applied once and in any order (the origin guide added the amount again
on every redelivery, and a late failure could undo a success)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from stripe_flows import CLIENT, action, connect_own_key, deliver, events, own_path, records

from hub import Unauthorized
from hub.db.models import WebhookInbox
from hub.testing import run_jobs
from hub_stripe.simulator import WEBHOOK_SECRET, signature_header
from hub_stripe.webhooks import check_signature

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")

NEW_SECRET = "whsec_rotated0123456789abcdefghij"


async def paid_and_failed(client, tenant, simulator) -> tuple[dict, dict, dict]:
    """An intent whose first attempt was declined and whose second succeeded: Stripe sent a failure
    and then a success for it."""
    intent = await action(client, tenant, "create_payment_intent", {
        "invoice_id": "inv-9", "amount": 5000, "client_id": CLIENT["id"], "client": CLIENT})
    simulator.confirm(intent["payment_intent_id"], "pm_card_chargeDeclined")
    simulator.confirm(intent["payment_intent_id"], "pm_card_visa")
    (failed,) = simulator.events_of("payment_intent.payment_failed")
    (succeeded,) = simulator.events_of("payment_intent.succeeded")
    return intent, failed, succeeded


async def inbox(hub) -> list[WebhookInbox]:
    async with hub.session() as session:
        return list(await session.scalars(select(WebhookInbox)))


async def test_a_redelivered_and_reordered_payment_counts_once_and_a_late_failure_does_not_undo_it(
        client, hub, tenant, simulator):
    connection = await connect_own_key(client, tenant)
    intent, failed, succeeded = await paid_and_failed(client, tenant, simulator)
    path = own_path(connection)

    for event in (succeeded, succeeded, failed, succeeded):  # three times, and the failure after the success
        assert (await deliver(client, simulator, event, path)).status_code == 200
        await run_jobs(hub)

    (payment,) = await records(client, tenant, "payment")
    assert payment["external_id"] == intent["payment_intent_id"] and payment["data"]["amount"] == "50.00"
    assert await records(client, tenant, "payment_failure") == []
    assert len(await events(client, tenant, "payment.succeeded")) == 1
    assert await events(client, tenant, "payment.failed") == []
    assert len(await inbox(hub)) == 2  # the redeliveries were stored once


async def test_a_failure_then_its_success_records_both_and_the_success_stands(client, hub, tenant, simulator):
    connection = await connect_own_key(client, tenant)
    intent, failed, succeeded = await paid_and_failed(client, tenant, simulator)
    for event in (failed, succeeded, failed):
        await deliver(client, simulator, event, own_path(connection))
        await run_jobs(hub)

    (failure,) = await records(client, tenant, "payment_failure")
    assert failure["data"]["failure_message"] == "Your card was declined."
    assert failure["data"]["decline_code"] == "generic_decline"
    (failed_event,) = await events(client, tenant, "payment.failed")
    assert failed_event["data"]["invoice_id"] == "inv-9" and failed_event["data"]["amount"] == "50.00"
    assert len(await events(client, tenant, "payment.succeeded")) == 1
    assert len(await records(client, tenant, "payment")) == 1


async def test_the_same_success_under_a_new_event_id_records_nothing_twice(client, hub, tenant, simulator):
    connection = await connect_own_key(client, tenant)
    _, _, succeeded = await paid_and_failed(client, tenant, simulator)
    for event_id in ("evt_a", "evt_b"):
        await deliver(client, simulator, succeeded | {"id": event_id}, own_path(connection))
        await run_jobs(hub)
    assert len(await events(client, tenant, "payment.succeeded")) == 1
    assert len(await records(client, tenant, "payment")) == 1


async def test_a_forged_or_stale_webhook_is_refused_and_nothing_is_stored(client, hub, tenant, simulator):
    connection = await connect_own_key(client, tenant)
    _, _, succeeded = await paid_and_failed(client, tenant, simulator)
    now = int(time.time())
    good_body, good_headers = simulator.signed(succeeded)
    forgeries = {
        "tampered body": (good_body.replace(b'"amount": 5000', b'"amount": 9000'), good_headers),
        "wrong secret": simulator.signed(succeeded, ["whsec_someoneElse0123456789abcd"]),
        "301 s old": simulator.signed(succeeded, timestamp=now - 301),
        "10 minutes ahead": simulator.signed(succeeded, timestamp=now + 600),
        "no signature": (good_body, {k: v for k, v in good_headers.items() if k != "stripe-signature"}),
        "v0 scheme only": (good_body, good_headers | {
            "stripe-signature": good_headers["stripe-signature"].replace("v1=", "v0=")}),
    }
    for forgery, (body, headers) in forgeries.items():
        response = await client.post(own_path(connection), content=body, headers=headers)
        assert response.status_code == 401, (forgery, response.text)
        assert response.json()["error"]["code"] == "invalid_signature", forgery
    assert await inbox(hub) == []
    assert (await client.post(own_path(connection), content=good_body, headers=good_headers)).status_code == 200


def test_the_tolerance_is_300_seconds_back_and_60_ahead():
    body = b'{"id": "evt_1", "object": "event"}'
    header = signature_header(body, [WEBHOOK_SECRET], timestamp=1_000_000)
    for now in (1_000_300, 999_940, 1_000_000):
        check_signature(body, header, [NEW_SECRET, WEBHOOK_SECRET], now=now)
    for now, reason in ((1_000_301, "too old"), (999_939, "in the future")):
        with pytest.raises(Unauthorized, match=reason):
            check_signature(body, header, [WEBHOOK_SECRET], now=now)
    with pytest.raises(Unauthorized, match="does not match"):
        check_signature(body, header, [NEW_SECRET], now=1_000_000)


async def test_a_timestamp_within_the_tolerance_is_accepted(client, hub, tenant, simulator):
    connection = await connect_own_key(client, tenant)
    _, _, succeeded = await paid_and_failed(client, tenant, simulator)
    response = await deliver(client, simulator, succeeded, own_path(connection), timestamp=int(time.time()) - 240)
    assert response.status_code == 200, response.text


async def test_a_rotated_endpoint_secret_verifies_during_and_after_the_rotation(client, hub, tenant, simulator):
    # The tenant rolls its endpoint secret: Stripe signs with the old and the new one until the old expires.
    connection = await connect_own_key(client, tenant, webhook_secrets=[WEBHOOK_SECRET, NEW_SECRET])
    _, failed, succeeded = await paid_and_failed(client, tenant, simulator)
    path = own_path(connection)
    assert (await deliver(client, simulator, failed, path, [WEBHOOK_SECRET, NEW_SECRET])).status_code == 200
    assert (await deliver(client, simulator, succeeded, path, [NEW_SECRET])).status_code == 200
    # The old secret expired at Stripe and the tenant drops it: a webhook signed only with it is refused.
    await connect_own_key(client, tenant, webhook_secrets=[NEW_SECRET])
    assert (await deliver(client, simulator, failed | {"id": "evt_old"}, path, [WEBHOOK_SECRET])).status_code == 401


async def test_the_shared_url_takes_only_connect_events_signed_with_the_platform_secret(client, hub, tenant, simulator):
    connection = await connect_own_key(client, tenant)
    _, _, succeeded = await paid_and_failed(client, tenant, simulator)
    # An own account's event signed with its own secret is no platform event: refused on the shared URL.
    response = await deliver(client, simulator, succeeded, "/v1/webhooks/stripe", [WEBHOOK_SECRET])
    assert response.status_code == 401
    assert connection["metadata"] == {"mode": "own_key"}
