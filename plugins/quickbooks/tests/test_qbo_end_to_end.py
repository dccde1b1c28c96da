"""The whole path: connect, push clients, vendors and invoices, a payment made in QuickBooks, Intuit's webhook
through the hub's endpoint, the payment imported and linked, ``payment.received`` recorded once and delivered,
signed, to the tenant's own webhook endpoint."""

from __future__ import annotations

import json
import time

import pytest
import standardwebhooks
from qbo_flows import clients, connect, invoice, mappings, run_sync
from sqlalchemy import select

from hub.db.models import WebhookInbox
from hub.testing import wait_for


async def test_connect_sync_pay_notify_import_receive_and_deliver_once(client, hub, tenant, qbo, jobs,
                                                                       webhook_receiver):
    receiver = webhook_receiver  # the kit's: on 127.0.0.1, so the hub under test may deliver to it
    await connect(client, tenant)
    endpoint = await client.post("/v1/webhook-endpoints", headers=tenant.headers,
                                 json={"url": receiver.url, "event_types": ["payment.*"]})
    assert endpoint.status_code == 201, endpoint.text
    assert (await run_sync(client, tenant, "client", clients(3)))["created"] == 3
    assert (await run_sync(client, tenant, "vendor", [{"id": "ven-1", "company_name": "Lumber Co",
                                                       "tax_id": "12-3456789"}]))["created"] == 1
    assert (await run_sync(client, tenant, "invoice", [invoice(1, client_id="client-2")]))["created"] == 1
    assert (await run_sync(client, tenant, "payment"))["status"] == "completed"  # nothing paid yet
    qbo_invoice = (await mappings(client, tenant, "invoice"))["inv-1"]

    payment = qbo.state.make_payment(qbo_invoice, "1500.50", method="Check", ref="2201")
    body, headers = qbo.state.webhook_request([("Payment", payment["Id"], "Create")])
    answers = []
    for _ in range(2):  # Intuit redelivers what it thinks was not acknowledged
        started = time.perf_counter()
        response = await client.post("/v1/webhooks/quickbooks", content=body, headers=headers)
        answers.append((response.status_code, time.perf_counter() - started))
    assert [status for status, _ in answers] == [200, 200]
    assert max(seconds for _, seconds in answers) < 1.0  # Intuit wants its answer within 3 s

    async def received():
        events = (await client.get("/v1/events?type=payment.received", headers=tenant.headers)).json()
        return events or None

    (event,) = await wait_for(received)
    assert event["provider"] == "quickbooks"
    assert {k: event["data"][k] for k in ("payment_id", "invoice_id", "amount", "method", "reference_number")} == {
        "payment_id": payment["Id"], "invoice_id": "inv-1", "amount": "1500.5", "method": "Check",
        "reference_number": "2201"}
    records = (await client.get("/v1/records/quickbooks/payment", headers=tenant.headers)).json()["items"]
    assert [(r["external_id"], r["data"]["invoice_id"]) for r in records] == [(payment["Id"], "inv-1")]

    async with hub.session() as session:
        inbox = list((await session.scalars(select(WebhookInbox))).all())
    assert [(row.status, row.account_id, row.event_type) for row in inbox] == [
        ("processed", qbo.state.consent_realm, "qbo.payment.create")]  # the redelivery was stored once

    async def delivered():
        return receiver.received or None

    (request,) = await wait_for(delivered)  # the hub's sender, running beside the workers
    standardwebhooks.Webhook(endpoint.json()["secret"]).verify(request.body, request.headers)
    forged = request.body.replace(b"1500.5", b"1500.6")
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(endpoint.json()["secret"]).verify(forged, request.headers)
    sent = json.loads(request.body)
    assert (sent["id"], sent["type"], sent["provider"]) == (event["id"], "payment.received", "quickbooks")
    assert (sent["data"]["invoice_id"], sent["data"]["amount"], sent["data"]["method"]) == ("inv-1", "1500.5", "Check")

    async def settled():  # the webhook's pull records the event a moment before its run is marked finished
        runs = (await client.get("/v1/syncs?entity=payment", headers=tenant.headers)).json()
        return all(r["status"] not in ("queued", "running") for r in runs)

    await wait_for(settled)
    await run_sync(client, tenant, "payment", type="full")  # read again: still one event, delivered once
    assert len((await client.get("/v1/events?type=payment.received", headers=tenant.headers)).json()) == 1

    async def written():
        deliveries = (await client.get(f"/v1/webhook-endpoints/{endpoint.json()['id']}/deliveries",
                                       headers=tenant.headers)).json()
        return deliveries if all(d["status"] == "succeeded" for d in deliveries) else None

    assert [(d["event_type"], d["attempts"]) for d in await wait_for(written)] == [("payment.received", 1)]
    assert receiver.count == 1


async def test_a_forged_notification_is_refused_and_nothing_is_stored(client, hub, tenant, qbo):
    await connect(client, tenant)
    body, headers = qbo.state.webhook_request([("Payment", "1", "Create")])
    response = await client.post("/v1/webhooks/quickbooks", content=body.replace(b'"1"', b'"2"'), headers=headers)
    assert response.status_code == 401
    async with hub.session() as session:
        assert (await session.scalars(select(WebhookInbox))).all() == []
