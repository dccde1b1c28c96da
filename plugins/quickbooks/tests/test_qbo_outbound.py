"""Clients, vendors and invoices to QuickBooks through the hub's engine and the simulator's batch API."""

from __future__ import annotations

from decimal import Decimal

from qbo_flows import clients, connect, context, invoice, mappings, run_sync

from hub import OutboundItem
from hub.entities import Client
from hub_quickbooks.config import Hosts
from hub_quickbooks.simulator import REALM_ID
from hub_quickbooks.syncs import Outbound


async def test_connect_names_the_company_from_company_info(client, hub, tenant, qbo):
    connection = await connect(client, tenant)
    assert connection["status"] == "connected"
    assert connection["external_account_id"] == REALM_ID
    assert connection["external_account_name"] == "Sandbox Company_US_1"


async def test_clients_go_in_batches_of_30_and_an_unchanged_resync_sends_nothing(client, hub, tenant, qbo, jobs):
    await connect(client, tenant, settle=True)

    first = await run_sync(client, tenant, "client", clients(75))

    assert (first["status"], first["created"], first["failed"]) == ("completed", 75, 0)
    assert qbo.state.batch_calls == 3
    customers = qbo.state.objects("Customer")
    assert len(customers) == 75
    ids = await mappings(client, tenant, "client")
    seven = customers[ids["client-7"]]
    assert seven["DisplayName"] == "Client 7 LLC" and seven["PrimaryEmailAddr"] == {"Address": "c7@example.com"}
    assert seven["BillAddr"] == {"Line1": "7 Main St", "City": "Austin", "CountrySubDivisionCode": "TX",
                                 "PostalCode": "78701"}
    requests = len(qbo.state.requests)

    again = await run_sync(client, tenant, "client", clients(75))
    assert (again["unchanged"], again["created"], again["updated"]) == (75, 0, 0)
    assert len(qbo.state.requests) == requests  # not one request

    changed = clients(75)
    changed[7]["email"] = "new@example.com"
    third = await run_sync(client, tenant, "client", changed)
    assert (third["unchanged"], third["updated"]) == (74, 1)
    assert customers[ids["client-7"]]["PrimaryEmailAddr"] == {"Address": "new@example.com"}
    assert customers[ids["client-7"]]["SyncToken"] == "1"
    assert len(customers) == 75


async def test_a_batch_where_2_of_30_fail_reports_both_with_the_fault_and_keeps_28(client, hub, tenant, qbo, jobs):
    await connect(client, tenant)
    records = clients(30)
    for n in (4, 19):  # names QuickBooks already has: customer, vendor and employee names are unique
        qbo.state._create(qbo.state.company(), "Vendor", {"DisplayName": records[n]["company_name"]})

    run = await run_sync(client, tenant, "client", records)

    assert (run["status"], run["created"], run["failed"]) == ("completed_with_errors", 28, 2)
    assert qbo.state.batch_calls == 1
    assert {e["id"] for e in run["errors"]} == {"client-4", "client-19"}
    assert all(e["error"].startswith("Duplicate Name Exists Error (6240): The name supplied already exists")
               for e in run["errors"])
    assert set(await mappings(client, tenant, "client")) == {f"client-{n}" for n in range(30)} - {"client-4",
                                                                                                 "client-19"}


async def test_a_stale_sync_token_is_refetched_and_the_update_retried_once(client, hub, tenant, qbo, jobs):
    await connect(client, tenant)
    await run_sync(client, tenant, "client", clients(3))
    customer_id = (await mappings(client, tenant, "client"))["client-1"]
    qbo.state.edit("Customer", customer_id, {"Notes": "called about the deposit"})  # an accountant's edit

    run = await run_sync(client, tenant, "client", clients(3, phone="555-0199"))

    assert (run["updated"], run["failed"]) == (3, 0)
    customer = qbo.state.objects("Customer")[customer_id]
    assert customer["PrimaryPhone"] == {"FreeFormNumber": "555-0199"}
    assert customer["Notes"] == "called about the deposit"  # a sparse update keeps QuickBooks-only fields
    assert customer["SyncToken"] == "2"
    assert qbo.state.requests.count("POST /batch") == 3  # the first, the update, the one retry
    assert any(r == "GET /query" for r in qbo.state.requests)


async def test_a_repeated_push_whose_answer_was_lost_creates_nothing_twice(client, hub, tenant, qbo):
    await connect(client, tenant)
    ctx = await context(hub, tenant.id)
    push = Outbound(Hosts.from_environ(hub.settings.environ), "client")
    items = [OutboundItem(internal_id=r["id"], record=Client(**{k: v for k, v in r.items() if k != "billing_address"}),
                          idempotency_key=f"key-{r['id']}") for r in clients(5)]

    first = await push(ctx, items)
    again = await push(ctx, items)  # the job ran again: the first answer never reached the hub

    assert [r.external_id for r in again] == [r.external_id for r in first]
    assert {r.outcome for r in again} == {"created"}
    assert len(qbo.state.objects("Customer")) == 5 and qbo.state.replayed == 1


async def test_vendors_carry_the_tax_identifier(client, hub, tenant, qbo, jobs):
    await connect(client, tenant)
    run = await run_sync(client, tenant, "vendor", [
        {"id": "ven-1", "company_name": "Lumber Co", "contact_first_name": "Ann", "contact_last_name": "Lee",
         "email": "ann@lumber.example", "tax_id": "12-3456789"}])
    assert run["created"] == 1
    vendor = qbo.state.objects("Vendor")[(await mappings(client, tenant, "vendor"))["ven-1"]]
    assert (vendor["DisplayName"], vendor["GivenName"], vendor["TaxIdentifier"]) == ("Lumber Co", "Ann", "12-3456789")


async def test_an_invoice_whose_client_is_not_in_quickbooks_pushes_the_client_first(client, hub, tenant, qbo, jobs):
    await connect(client, tenant)
    record = invoice(1, client_id="client-9", client=clients(1, start=9)[0])

    run = await run_sync(client, tenant, "invoice", [record, invoice(2, client_id="client-404")])

    assert (run["created"], run["failed"]) == (1, 1)
    assert run["errors"] == [{"id": "inv-2", "error": "its client client-404 is not in QuickBooks: sync the client "
                                                      "first or send the invoice with its client"}]
    customer_id = (await mappings(client, tenant, "client"))["client-9"]  # the client's mapping was saved
    qbo_invoice = qbo.state.objects("Invoice")[(await mappings(client, tenant, "invoice"))["inv-1"]]
    assert qbo_invoice["CustomerRef"]["value"] == customer_id
    assert qbo_invoice["DocNumber"] == "INV-1" and qbo_invoice["DueDate"] == "2026-12-02"
    assert qbo_invoice["PrivateNote"] == "Job: Kitchen remodel"
    assert [(line["Description"], line["SalesItemLineDetail"]["Qty"], line["Amount"]) for line in qbo_invoice["Line"]]\
        == [("Demolition", 2, 300), ("Cabinets", 1, 1200.5)]
    assert Decimal(str(qbo_invoice["TotalAmt"])) == Decimal("1500.50")

    clients_run = await run_sync(client, tenant, "client", clients(1, start=9))
    assert clients_run["unchanged"] == 1  # pushed with the invoice, so already in QuickBooks as it is
    assert len(qbo.state.objects("Customer")) == 1


async def test_an_invoice_paid_in_quickbooks_updates_with_a_refetched_sync_token(client, hub, tenant, qbo, jobs):
    await connect(client, tenant)
    await run_sync(client, tenant, "invoice", [invoice(1, client=clients(1)[0])])
    invoice_id = (await mappings(client, tenant, "invoice"))["inv-1"]
    qbo.state.make_payment(invoice_id, "100.00")  # the balance changes, and with it the SyncToken

    run = await run_sync(client, tenant, "invoice", [invoice(1, client=clients(1)[0], due_date="2026-12-31")])

    assert (run["updated"], run["failed"]) == (1, 0)
    updated = qbo.state.objects("Invoice")[invoice_id]
    assert updated["DueDate"] == "2026-12-31" and Decimal(str(updated["Balance"])) == Decimal("1400.50")
