"""Connecting (the tenant's own key, or onboarding as a connected account of the operator's platform) and
the actions a tenant's backend calls."""

from __future__ import annotations

import httpx
import pytest
from stripe_flows import CLIENT, action, connect_own_key, deliver, records

from hub.testing import new_tenant, run_jobs
from hub_stripe.simulator import API_KEY, CONNECT_WEBHOOK_SECRET, PLATFORM_ACCOUNT, WEBHOOK_SECRET

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")

COMPANY = {"email": "office@builders.example", "company_name": "Builders & Co"}
RETURN_URL = "https://app.example/settings/payments"


async def test_credentials_are_one_way_or_the_other_and_never_shown(client, hub, tenant, simulator):
    for bad in ({}, {"secret_key": API_KEY} | COMPANY, {"secret_key": "pk_test_publishable0123456789"},
                {"email": "office@builders.example"}):
        response = await client.put("/v1/connections/stripe", json={"credentials": bad}, headers=tenant.headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_credentials", bad
    assert simulator.requests == []  # refused before Stripe was asked
    connection = await connect_own_key(client, tenant)
    assert connection["status"] == "connected" and connection["external_account_name"] == "Own Key Builders"
    shown = (await client.get("/v1/connections/stripe", headers=tenant.headers)).text
    assert API_KEY not in shown and WEBHOOK_SECRET not in shown


async def test_a_tenant_onboarded_through_the_platform_is_pending_until_stripe_enables_charges(
        client, hub, tenant, simulator):
    put = await client.put("/v1/connections/stripe", json={"credentials": COMPANY}, headers=tenant.headers)
    assert put.status_code == 200, put.text
    connection = put.json()
    assert connection["status"] == "pending" and connection["metadata"]["mode"] == "platform"
    account_id = connection["external_account_id"]
    account = simulator.accounts[account_id]
    assert (account.platform, account.data["type"], account.data["email"]) == (
        PLATFORM_ACCOUNT, "standard", COMPANY["email"])
    assert account.data["business_profile"]["name"] == COMPANY["company_name"]
    assert account.data["metadata"] == {"tenant_id": str(tenant.id)}
    again = await client.put("/v1/connections/stripe", json={"credentials": COMPANY}, headers=tenant.headers)
    assert again.json()["external_account_id"] == account_id  # a retried connect makes no second account

    refused = await action(client, tenant, "create_payment_intent", {
        "invoice_id": "inv-1", "amount": 9900, "client_id": CLIENT["id"], "client": CLIENT}, status=409)
    assert refused["error"]["code"] == "not_connected"

    link = await action(client, tenant, "create_account_link", {"return_url": RETURN_URL})
    onboarding = httpx.get(link["url"], follow_redirects=False)  # the tenant finishes Stripe's onboarding
    assert onboarding.status_code == 302 and onboarding.headers["location"] == RETURN_URL
    (updated,) = simulator.events_of("account.updated")
    assert updated["account"] == account_id and updated["data"]["object"]["charges_enabled"] is True
    assert (await deliver(client, simulator, updated, "/v1/webhooks/stripe")).status_code == 200
    await run_jobs(hub)
    connected = (await client.get("/v1/connections/stripe", headers=tenant.headers)).json()
    assert connected["status"] == "connected" and connected["metadata"]["charges_enabled"] is True

    intent = await action(client, tenant, "create_payment_intent", {
        "invoice_id": "inv-1", "amount": 9900, "client_id": CLIENT["id"], "client": CLIENT})
    writes = simulator.logged(lambda r: r.method == "POST" and r.path in ("/v1/customers", "/v1/payment_intents"))
    assert [w.request.headers.get("stripe-account") for w in writes] == [account_id, account_id]
    assert simulator.objects("payment_intent", account_id)[0]["id"] == intent["payment_intent_id"]
    assert simulator.objects("payment_intent") == []  # nothing on the platform's own account

    simulator.confirm(intent["payment_intent_id"], account=account_id)
    (succeeded,) = simulator.events_of("payment_intent.succeeded")
    assert (await deliver(client, simulator, succeeded, "/v1/webhooks/stripe")).status_code == 200
    await run_jobs(hub)
    (payment,) = await records(client, tenant, "payment")
    assert payment["data"]["invoice_id"] == "inv-1" and payment["data"]["amount"] == "99.00"


async def test_connect_events_route_by_account_to_their_own_tenant_only(client, hub, tenant, simulator):
    other = await new_tenant(client, "Other Co")
    for who in (tenant, other):
        assert (await client.put("/v1/connections/stripe", json={"credentials": COMPANY | {
            "company_name": f"Co {who.id}"}}, headers=who.headers)).status_code == 200
    mine = (await client.get("/v1/connections/stripe", headers=tenant.headers)).json()["external_account_id"]
    event = simulator.complete_onboarding(mine)
    assert (await deliver(client, simulator, event, "/v1/webhooks/stripe", [CONNECT_WEBHOOK_SECRET])).status_code == 200
    await run_jobs(hub)
    assert (await client.get("/v1/connections/stripe", headers=tenant.headers)).json()["status"] == "connected"
    assert (await client.get("/v1/connections/stripe", headers=other.headers)).json()["status"] == "pending"


async def test_payment_methods_cards_and_bank_accounts_in_one_list(client, hub, tenant, simulator):
    await connect_own_key(client, tenant)
    assert await action(client, tenant, "list_payment_methods", {"client_id": CLIENT["id"]}) == {"payment_methods": []}
    customer = (await action(client, tenant, "create_customer", CLIENT))["customer_id"]
    card = simulator.add_payment_method(customer, brand="mastercard", last4="4444", exp=(8, 2029))
    bank = simulator.add_payment_method(customer, "us_bank_account", last4="6789", bank_name="STRIPE TEST BANK")
    listed = (await action(client, tenant, "list_payment_methods", {"client_id": CLIENT["id"]}))["payment_methods"]
    assert {m["id"]: m for m in listed} == {
        card["id"]: {"id": card["id"], "type": "card", "brand": "mastercard", "last4": "4444", "exp_month": 8,
                     "exp_year": 2029, "bank_name": None},
        bank["id"]: {"id": bank["id"], "type": "bank_account", "brand": None, "last4": "6789", "exp_month": None,
                     "exp_year": None, "bank_name": "STRIPE TEST BANK"},
    }


async def test_a_setup_intent_saves_cards_and_bank_accounts_and_each_call_is_a_new_one(client, hub, tenant, simulator):
    await connect_own_key(client, tenant)
    first = await action(client, tenant, "create_setup_intent", {"client_id": CLIENT["id"], "client": CLIENT})
    second = await action(client, tenant, "create_setup_intent", {"client_id": CLIENT["id"]})
    assert first["setup_intent_id"] != second["setup_intent_id"] and first["customer_id"] == second["customer_id"]
    (intent, _) = simulator.objects("setup_intent")
    assert intent["payment_method_types"] == ["card", "us_bank_account"] and intent["usage"] == "off_session"
    assert first["client_secret"].startswith(first["setup_intent_id"] + "_secret_")


async def test_bad_input_is_a_clear_4xx_and_nothing_reaches_stripe(client, hub, tenant, simulator):
    await connect_own_key(client, tenant)
    before = len(simulator.requests)
    for body in ({"invoice_id": "i", "amount": 0, "client_id": "c"},
                 {"invoice_id": "i", "amount": 10.5, "client_id": "c"},
                 {"invoice_id": "i", "amount": 100, "client_id": "c", "currency": "US Dollars"},
                 {"invoice_id": "i", "amount": 100, "client_id": "c", "surprise": True}):
        error = (await action(client, tenant, "create_payment_intent", body, status=422))["error"]
        assert error["code"] == "invalid_action_input", body
    unmapped = (await action(client, tenant, "create_payment_intent", {
        "invoice_id": "i", "amount": 100, "client_id": "nobody"}, status=422))["error"]
    assert unmapped["code"] == "client_not_mapped"
    assert len(simulator.requests) == before
    too_small = (await action(client, tenant, "create_payment_intent", {
        "invoice_id": "i", "amount": 20, "client_id": CLIENT["id"], "client": CLIENT}, status=422))["error"]
    assert too_small["code"] == "stripe_amount_too_small"
