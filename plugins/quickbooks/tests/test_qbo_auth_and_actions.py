"""Intuit OAuth (rotating refresh tokens, revocation on disconnect), the actions, and auto-sync on a tenant's
own events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from qbo_flows import clients, connect, invoice, mappings
from sqlalchemy import select, update

import hub_quickbooks.plugin
from hub.context import EventContext
from hub.db.models import Connection, Job
from hub.testing import wait_for
from hub.types import HubEvent
from hub_quickbooks.simulator import CLIENT_ID, CLIENT_SECRET


async def expire_access_token(hub) -> None:
    async with hub.session() as session:
        await session.execute(update(Connection).values(token_expires_at=datetime.now(UTC) - timedelta(minutes=1)))


async def action(client, tenant, name: str, body: dict):
    return await client.post(f"/v1/connections/quickbooks/actions/{name}", json=body, headers=tenant.headers)


async def test_the_rotating_refresh_token_survives_three_refreshes(client, hub, tenant, qbo):
    await connect(client, tenant)
    for n in range(1, 4):
        await expire_access_token(hub)
        response = await action(client, tenant, "get_company_info", {})
        assert response.status_code == 200, response.text
        assert response.json()["company_name"] == "Sandbox Company_US_1"
        assert qbo.state.refresh_calls == n
    assert len(qbo.state.refresh_tokens) == 1  # every earlier refresh token is dead at Intuit
    (live,) = qbo.state.refresh_tokens
    async with hub.session() as session:
        conn = (await session.execute(Connection.__table__.select())).first()
    assert hub.vault.decrypt(conn.refresh_token_enc, conn.tenant_id, conn.id, "refresh_token") == live


async def test_disconnect_revokes_the_grant_at_intuit(client, hub, tenant, qbo):
    await connect(client, tenant)
    (live,) = qbo.state.refresh_tokens
    response = await client.delete("/v1/connections/quickbooks", headers=tenant.headers)
    assert response.status_code in (200, 204), response.text
    assert qbo.state.revoked == [live] and not qbo.state.refresh_tokens and not qbo.state.access_tokens


async def test_a_refresh_token_used_twice_is_refused_as_intuit_does(qbo):
    token_url = f"{qbo.url}/oauth2/v1/tokens/bearer"
    consent = httpx.get(f"{qbo.url}/connect/oauth2", params={
        "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": "http://127.0.0.1:9/cb", "state": "s",
        "scope": "com.intuit.quickbooks.accounting"})
    code = httpx.URL(consent.headers["location"]).params["code"]
    auth = (CLIENT_ID, CLIENT_SECRET)
    first = httpx.post(token_url, auth=auth, data={"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": "http://127.0.0.1:9/cb"}).json()
    refreshed = httpx.post(token_url, auth=auth, data={"grant_type": "refresh_token",
                                                       "refresh_token": first["refresh_token"]})
    again = httpx.post(token_url, auth=auth, data={"grant_type": "refresh_token",
                                                   "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != first["refresh_token"]
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}


async def test_get_accounts_lists_the_active_chart_of_accounts(client, hub, tenant, qbo):
    await connect(client, tenant)
    qbo.state._create(qbo.state.company(), "Account", {"Name": "Old Fees", "AccountType": "Expense",
                                                       "Active": False})
    response = await action(client, tenant, "get_accounts", {})
    assert response.status_code == 200, response.text
    accounts = response.json()["accounts"]
    assert [a["name"] for a in accounts] == ["Checking", "Accounts Receivable (A/R)", "Services", "Job Materials"]
    assert accounts[2] == {"id": "3", "name": "Services", "type": "Income", "active": True, "number": "4000"}
    every = (await action(client, tenant, "get_accounts", {"active_only": False})).json()["accounts"]
    assert len(every) == 5


async def test_create_invoice_pushes_the_client_first_and_maps_both(client, hub, tenant, qbo):
    await connect(client, tenant)
    response = await action(client, tenant, "create_invoice", invoice(7, client=clients(1)[0]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "created"
    assert body["quickbooks_invoice_id"] == (await mappings(client, tenant, "invoice"))["inv-7"]
    assert body["quickbooks_customer_id"] == (await mappings(client, tenant, "client"))["client-0"]
    again = await action(client, tenant, "create_invoice", invoice(7, client=clients(1)[0]))
    assert again.json()["outcome"] == "unchanged" and len(qbo.state.objects("Invoice")) == 1

    refused = await action(client, tenant, "create_invoice", invoice(8, line_items=[
        {"description": "Odd", "quantity": "3", "unit_price": "10.00", "amount": "31.00"}]))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "quickbooks_rejected"
    assert "Amount is not equal to UnitPrice * Qty (6070)" in refused.json()["error"]["message"]


async def test_a_tenant_event_syncs_the_record_when_auto_sync_is_on(client, hub, tenant, qbo):
    await connect(client, tenant)
    context = EventContext(tenant_id=tenant.id, config=hub.settings, _hub=hub)

    def event(type: str, data: dict) -> HubEvent:
        return HubEvent(id=str(uuid.uuid4()), type=type, tenant_id=tenant.id, provider=None, data=data,
                        occurred_at=datetime.now(UTC))

    await hub_quickbooks.plugin.hub_event(event("client.created", clients(1)[0]), context)
    assert len(qbo.state.objects("Customer")) == 1 and "client-0" in await mappings(client, tenant, "client")

    await hub_quickbooks.plugin.hub_event(event("invoice.created", {"invoice": invoice(1)}), context)
    assert "inv-1" in await mappings(client, tenant, "invoice")

    response = await client.patch("/v1/connections/quickbooks", json={"settings": {"auto_sync_vendors": False}},
                                  headers=tenant.headers)
    assert response.status_code == 200
    await hub_quickbooks.plugin.hub_event(event("vendor.created", {"id": "ven-1", "company_name": "Lumber Co"}),
                                          context)
    assert qbo.state.objects("Vendor") == {}
    await hub_quickbooks.plugin.hub_event(event("client.updated", {"id": "bad"}), context)  # logged, not raised


async def test_events_a_tenant_publishes_reach_quickbooks_only_while_auto_sync_is_on(client, hub, tenant, qbo, jobs):
    await connect(client, tenant)
    settings = await client.patch("/v1/connections/quickbooks", headers=tenant.headers,
                                  json={"settings": {"auto_sync_vendors": False}})
    assert settings.status_code == 200, settings.text

    async def publish(type: str, data: dict) -> None:
        response = await client.post("/v1/events", json={"type": type, "data": data}, headers=tenant.headers)
        assert response.status_code == 201, response.text

    async def observed():
        """Every observer job has ended, so what it would have pushed is in QuickBooks by now."""
        async with hub.session() as session:
            states = (await session.scalars(select(Job.status).where(Job.kind == "event.observe"))).all()
        return bool(states) and all(state in ("done", "failed") for state in states)

    record = clients(1)[0]
    await publish("client.created", {"client": record})
    await wait_for(observed)
    (customer,) = qbo.state.objects("Customer").values()
    assert customer["DisplayName"] == "Client 0 LLC"
    assert (await mappings(client, tenant, "client")) == {"client-0": customer["Id"]}

    await publish("client.updated", record | {"email": "billing@client0.example"})  # the record itself as data
    await publish("invoice.created", {"invoice": invoice(1)})
    await wait_for(observed)
    assert customer["Id"] in qbo.state.objects("Customer")
    assert qbo.state.objects("Customer")[customer["Id"]]["PrimaryEmailAddr"] == {"Address": "billing@client0.example"}
    (qbo_invoice,) = qbo.state.objects("Invoice").values()
    assert qbo_invoice["CustomerRef"]["value"] == customer["Id"] and qbo_invoice["DocNumber"] == "INV-1"

    vendor = {"id": "ven-1", "company_name": "Lumber Co", "tax_id": "12-3456789"}
    await publish("vendor.created", {"vendor": vendor})  # auto_sync_vendors is off
    await publish("invoice.paid", {"invoice": invoice(2)})  # not an event QuickBooks syncs on
    await wait_for(observed)
    assert qbo.state.objects("Vendor") == {} and len(qbo.state.objects("Invoice")) == 1

    await client.patch("/v1/connections/quickbooks", json={"settings": {"auto_sync_vendors": True}},
                       headers=tenant.headers)
    await publish("vendor.updated", {"vendor": vendor})
    await wait_for(observed)
    assert [v["TaxIdentifier"] for v in qbo.state.objects("Vendor").values()] == ["12-3456789"]
