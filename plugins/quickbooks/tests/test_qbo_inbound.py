"""Payments, changes and the chart of accounts from QuickBooks into the hub's records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from qbo_flows import clients, connect, invoice, mappings, run_sync
from sqlalchemy import update

from hub.db.models import SyncCursor


async def records(client, tenant, entity: str) -> dict[str, dict]:
    page = (await client.get(f"/v1/records/quickbooks/{entity}?limit=1000", headers=tenant.headers)).json()
    return {r["external_id"]: r for r in page["items"]}


async def events(client, tenant, type: str) -> list[dict]:
    return (await client.get(f"/v1/events?type={type}", headers=tenant.headers)).json()


async def test_a_new_payment_is_linked_to_the_hub_invoice_and_received_once(client, hub, tenant, qbo, jobs):
    await connect(client, tenant, settle=True)
    await run_sync(client, tenant, "invoice", [invoice(1, client=clients(1)[0]), invoice(2, client=clients(1)[0])])
    qbo_invoices = await mappings(client, tenant, "invoice")
    payment = qbo.state.make_payment(qbo_invoices["inv-1"], "500.00", method="Check", ref="1042")

    first = await run_sync(client, tenant, "payment")  # the first read: every payment QuickBooks has

    assert (first["status"], first["created"]) == ("completed", 1)
    stored = (await records(client, tenant, "payment"))[payment["Id"]]["data"]
    assert stored["invoice_id"] == "inv-1" and stored["amount"] == "500"
    assert (stored["payment_method"], stored["reference_number"]) == ("Check", "1042")
    received = await events(client, tenant, "payment.received")
    assert len(received) == 1 and received[0]["provider"] == "quickbooks"
    assert {k: received[0]["data"][k] for k in ("payment_id", "invoice_id", "amount", "method")} == {
        "payment_id": payment["Id"], "invoice_id": "inv-1", "amount": "500", "method": "Check"}

    second = qbo.state.make_payment(qbo_invoices["inv-2"], "25.50", method="Credit Card")
    qbo.state.edit("Payment", payment["Id"], {"PrivateNote": "deposited"})  # read again, changed
    later = await run_sync(client, tenant, "payment")  # incremental: CDC from the saved cursor
    await run_sync(client, tenant, "payment", type="full")

    assert later["created"] == 1
    assert "GET /cdc" in qbo.state.requests
    received = await events(client, tenant, "payment.received")
    assert [(e["data"]["payment_id"], e["data"]["invoice_id"], e["data"]["method"]) for e in received] == [
        (payment["Id"], "inv-1", "Check"), (second["Id"], "inv-2", "Credit Card")]


async def test_payments_are_not_imported_when_the_setting_is_off(client, hub, tenant, qbo, jobs):
    await connect(client, tenant, settle=True)
    await run_sync(client, tenant, "invoice", [invoice(1, client=clients(1)[0])])
    qbo.state.make_payment((await mappings(client, tenant, "invoice"))["inv-1"])
    response = await client.patch("/v1/connections/quickbooks", json={"settings": {"import_payments": False}},
                                  headers=tenant.headers)
    assert response.status_code == 200, response.text
    requests = len(qbo.state.requests)

    run = await run_sync(client, tenant, "payment")

    assert run["processed"] == 0 and len(qbo.state.requests) == requests
    assert await events(client, tenant, "payment.received") == []


async def test_customers_changed_in_quickbooks_come_back_under_the_hub_id(client, hub, tenant, qbo, jobs):
    await connect(client, tenant, settle=True)
    await run_sync(client, tenant, "client", clients(2))
    ids = await mappings(client, tenant, "client")
    await run_sync(client, tenant, "client")
    qbo.state.edit("Customer", ids["client-1"], {"PrimaryEmailAddr": {"Address": "accounts@client1.example"}})
    qbo.state._create(qbo.state.company(), "Customer", {"DisplayName": "Walk-in Customer"})

    changes = await run_sync(client, tenant, "client")

    assert (changes["created"], changes["updated"]) == (1, 1)
    got = await records(client, tenant, "client")
    assert got[ids["client-1"]]["data"]["id"] == "client-1"
    assert got[ids["client-1"]]["data"]["email"] == "accounts@client1.example"
    walk_in = next(r for r in got.values() if r["data"].get("company_name") == "Walk-in Customer")
    assert walk_in["data"]["id"] == walk_in["external_id"]  # not from the hub: QuickBooks' id


async def test_a_cursor_older_than_cdc_reaches_starts_over_with_a_full_read(client, hub, tenant, qbo, jobs):
    await connect(client, tenant, settle=True)
    await run_sync(client, tenant, "vendor", [{"id": "ven-1", "company_name": "Lumber Co"}])
    await run_sync(client, tenant, "vendor")
    old = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    async with hub.session() as session:
        await session.execute(update(SyncCursor).where(SyncCursor.entity == "vendor")
                              .values(cursor=json.dumps({"since": old})))
    cdc_before = qbo.state.requests.count("GET /cdc")

    run = await run_sync(client, tenant, "vendor")

    assert run["status"] == "completed" and run["unchanged"] == 1
    assert qbo.state.requests.count("GET /cdc") == cdc_before  # QuickBooks would refuse a 45-day look-back


async def test_the_chart_of_accounts_is_an_inbound_entity(client, hub, tenant, qbo, jobs):
    await connect(client, tenant, settle=True)
    run = await run_sync(client, tenant, "account")
    assert run["created"] == 4
    names = {r["data"]["name"]: r["data"] for r in (await records(client, tenant, "account")).values()}
    assert names["Checking"] == {"id": "1", "name": "Checking", "type": "Bank", "number": "1000", "active": True}


async def test_the_import_interval_is_the_payment_pulls_schedule(client, hub, tenant, qbo):
    await connect(client, tenant)
    response = await client.patch("/v1/connections/quickbooks", headers=tenant.headers, json={
        "settings": {"import_payments": True}, "sync_schedules": {"payment": {"every_seconds": 900}}})
    assert response.status_code == 200, response.text
    assert response.json()["sync_schedules"] == {"payment": {"every_seconds": 900}}
    refused = await client.patch("/v1/connections/quickbooks", headers=tenant.headers,
                                 json={"settings": {"import_interval_minutes": 15}})
    assert refused.status_code == 422


async def test_invoices_changed_in_quickbooks_come_back_under_the_hub_ids_of_invoice_and_client(client, hub, tenant,
                                                                                                qbo, jobs):
    await connect(client, tenant, settle=True)
    await run_sync(client, tenant, "invoice", [invoice(1, client=clients(1)[0])])
    await run_sync(client, tenant, "invoice")  # the first read
    qbo_invoice = (await mappings(client, tenant, "invoice"))["inv-1"]
    qbo.state.edit("Invoice", qbo_invoice, {"DueDate": "2027-01-15"})  # an accountant moves the due date

    changes = await run_sync(client, tenant, "invoice")

    assert (changes["status"], changes["updated"]) == ("completed", 1)
    data = (await records(client, tenant, "invoice"))[qbo_invoice]["data"]
    assert (data["id"], data["client_id"], data["due_date"]) == ("inv-1", "client-0", "2027-01-15")
    assert [(line["description"], line["quantity"], line["unit_price"]) for line in data["line_items"]] == [
        ("Demolition", "2", "150"), ("Cabinets", "1", "1200.5")]
