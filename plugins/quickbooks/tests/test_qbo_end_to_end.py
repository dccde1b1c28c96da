"""The whole path: connect, push clients, vendors and invoices, a payment made in QuickBooks, Intuit's webhook
through the hub's endpoint, the payment imported and linked, and ``payment.received`` recorded once."""

from __future__ import annotations

import time

from qbo_flows import clients, connect, invoice, mappings, run_sync
from sqlalchemy import select

from hub.db.models import WebhookInbox
from hub.testing import wait_for


async def test_connect_sync_pay_notify_import_and_receive_once(client, hub, tenant, qbo, jobs):
    await connect(client, tenant)
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

    async def settled():  # the webhook's pull records the event a moment before its run is marked finished
        runs = (await client.get("/v1/syncs?entity=payment", headers=tenant.headers)).json()
        return all(r["status"] not in ("queued", "running") for r in runs)

    await wait_for(settled)
    await run_sync(client, tenant, "payment", type="full")  # read again: still one event
    assert len((await client.get("/v1/events?type=payment.received", headers=tenant.headers)).json()) == 1


async def test_a_forged_notification_is_refused_and_nothing_is_stored(client, hub, tenant, qbo):
    await connect(client, tenant)
    body, headers = qbo.state.webhook_request([("Payment", "1", "Create")])
    response = await client.post("/v1/webhooks/quickbooks", content=body.replace(b'"1"', b'"2"'), headers=headers)
    assert response.status_code == 401
    async with hub.session() as session:
        assert (await session.scalars(select(WebhookInbox))).all() == []
