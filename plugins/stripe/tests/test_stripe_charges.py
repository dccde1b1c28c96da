"""Charges happen exactly once: every write to Stripe carries an ``Idempotency-Key`` derived from the
hub's job or request, so a job that dies after Stripe charged, or an answer lost on the way back, is
repeated with the same key and Stripe answers with the first result. The SDK's HTTP goes through the
hub's client (which retries), with the SDK's own retries off."""

from __future__ import annotations

import logging

import httpx
import pytest
from stripe_flows import CLIENT, action, connect_own_key

from hub.sync import engine as sync_engine
from hub.testing import run_jobs
from hub_stripe.simulator import API_KEY

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")

CHARGE = {"id": "charge-1", "invoice_id": "inv-77", "client_id": CLIENT["id"], "client": CLIENT,
          "payment_method_id": "pm_card_visa", "amount": 31500}


def intent_posts(simulator) -> list:
    return simulator.logged(lambda r: r.method == "POST" and r.path == "/v1/payment_intents")


async def start_charge_sync(client, tenant, records: list[dict]) -> dict:
    response = await client.post("/v1/connections/stripe/syncs", json={"entity": "charge", "records": records},
                                 headers=tenant.headers)
    assert response.status_code == 202, response.text
    return response.json()


async def sync_run(client, tenant, run: dict) -> dict:
    return (await client.get(f"/v1/syncs/{run['id']}", headers=tenant.headers)).json()


async def test_a_charge_job_killed_after_stripe_charged_runs_again_and_charges_once(
        client, hub, tenant, simulator, clock, monkeypatch):
    await connect_own_key(client, tenant)
    run = await start_charge_sync(client, tenant, [CHARGE])

    real_apply, kills = sync_engine._apply, []

    async def dies_before_saving(*args, **kwargs):  # the worker dies between Stripe's answer and the save
        if not kills and kwargs.get("touch_mappings", True):
            kills.append(1)
            raise RuntimeError("worker killed")
        return await real_apply(*args, **kwargs)

    monkeypatch.setattr(sync_engine, "_apply", dies_before_saving)
    await run_jobs(hub, raise_errors=False)
    assert kills and len(intent_posts(simulator)) == 1
    assert (await sync_run(client, tenant, run))["status"] == "running"

    clock.advance(3600)  # the job's retry falls due
    await run_jobs(hub)
    finished = await sync_run(client, tenant, run)
    assert (finished["status"], finished["created"], finished["failed"]) == ("completed", 1, 0)

    first, again = intent_posts(simulator)
    assert first.request.headers["idempotency-key"] == again.request.headers["idempotency-key"]
    (intent,) = simulator.objects("payment_intent")  # one charge at Stripe
    assert intent["status"] == "succeeded" and intent["amount_received"] == 31500
    mappings = (await client.get("/v1/connections/stripe/mappings?entity=charge", headers=tenant.headers)).json()
    assert [m["external_id"] for m in mappings["items"]] == [intent["id"]]


async def test_answers_lost_on_the_way_back_are_retried_with_the_same_key_and_charge_once(
        client, hub, tenant, simulator, clock):
    await connect_own_key(client, tenant)
    simulator.lose_next_responses(times=4, path="/v1/payment_intents")  # every attempt of the first job run
    run = await start_charge_sync(client, tenant, [CHARGE])
    await run_jobs(hub, raise_errors=False)
    assert len(intent_posts(simulator)) == 4 and (await sync_run(client, tenant, run))["status"] == "running"

    clock.advance(3600)
    await run_jobs(hub)
    assert (await sync_run(client, tenant, run))["created"] == 1
    posts = intent_posts(simulator)
    assert len(posts) == 5 and len({p.request.headers["idempotency-key"] for p in posts}) == 1
    assert len(simulator.objects("payment_intent")) == 1


async def test_charging_the_same_charge_again_asks_stripe_nothing_new(client, hub, tenant, simulator):
    await connect_own_key(client, tenant)
    body = {k: v for k, v in CHARGE.items() if k != "id"} | {"charge_id": "charge-9"}
    first = await action(client, tenant, "charge_payment_method", body)
    assert first["status"] == "succeeded"
    again = await action(client, tenant, "charge_payment_method", body)
    assert again == first
    assert len(intent_posts(simulator)) == 1 and len(simulator.objects("payment_intent")) == 1
    (posted,) = intent_posts(simulator)
    form = posted.request.form()
    assert (form["off_session"], form["confirm"], form["metadata[invoice_id]"]) == ("true", "true", "inv-77")


async def test_a_declined_card_is_a_402_with_stripes_reason_and_is_not_mapped(client, hub, tenant, simulator):
    await connect_own_key(client, tenant)
    body = {k: v for k, v in CHARGE.items() if k != "id"} | {"payment_method_id": "pm_card_chargeDeclined"}
    error = (await action(client, tenant, "charge_payment_method", body, status=402))["error"]
    assert (error["code"], error["message"]) == ("card_declined", "Your card was declined.")
    mappings = (await client.get("/v1/connections/stripe/mappings?entity=charge", headers=tenant.headers)).json()
    assert mappings["items"] == []


async def test_a_reused_idempotency_key_with_other_parameters_is_stripes_idempotency_error(
        client, hub, tenant, simulator):
    await connect_own_key(client, tenant)
    body = {"invoice_id": "inv-1", "amount": 2000, "client_id": CLIENT["id"], "client": CLIENT,
            "idempotency_key": "checkout-123"}
    first = await action(client, tenant, "create_payment_intent", body)
    assert await action(client, tenant, "create_payment_intent", body) == first  # replayed: the same intent
    error = (await action(client, tenant, "create_payment_intent", body | {"amount": 2500}, status=409))["error"]
    assert error["code"] == "idempotency_error"
    assert len(simulator.objects("payment_intent")) == 1


def test_the_simulator_replays_a_key_and_refuses_it_with_other_parameters(simulator):
    def post(data: dict, key: str) -> httpx.Response:
        return httpx.post(f"{simulator.url}/v1/customers", data=data, headers={
            "Authorization": f"Bearer {API_KEY}", "Idempotency-Key": key})

    first, replay = post({"name": "Ada"}, "k-1"), post({"name": "Ada"}, "k-1")
    assert first.status_code == replay.status_code == 200 and first.json() == replay.json()
    assert replay.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    other = post({"name": "Grace"}, "k-1")
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert len(simulator.objects("customer")) == 1
    assert post({"name": "Ada"}, "k" * 256).status_code == 400


async def test_the_sdk_talks_through_the_hubs_client_which_retries_with_the_same_key(
        client, hub, tenant, simulator, caplog):
    await connect_own_key(client, tenant)
    simulator.fail_next(503, path="/v1/customers")
    with caplog.at_level(logging.INFO, logger="hub.http"):
        created = await action(client, tenant, "create_customer", CLIENT)
    posts = simulator.logged(lambda r: r.method == "POST" and r.path == "/v1/customers")
    assert [p.status for p in posts] == [503, 200]
    assert posts[0].request.headers["idempotency-key"] == posts[1].request.headers["idempotency-key"]
    assert any("retrying POST 127.0.0.1/v1/customers after 503" in r.getMessage() for r in caplog.records)
    assert created["created"] is True
    again = await action(client, tenant, "create_customer", CLIENT)  # one customer per client
    assert again == created | {"created": False} and len(simulator.objects("customer")) == 1


async def test_no_key_or_client_secret_reaches_the_logs(client, hub, tenant, simulator, caplog):
    with caplog.at_level(logging.DEBUG):
        await connect_own_key(client, tenant)
        intent = await action(client, tenant, "create_payment_intent", {
            "invoice_id": "inv-5", "amount": 5000, "client_id": CLIENT["id"], "client": CLIENT})
        setup = await action(client, tenant, "create_setup_intent", {"client_id": CLIENT["id"]})
        await action(client, tenant, "charge_payment_method", {k: v for k, v in CHARGE.items() if k != "id"} | {
            "payment_method_id": "pm_card_chargeDeclined"}, status=402)
    text = caplog.text
    assert "POST 127.0.0.1/v1/payment_intents 200" in text  # the hub logged the requests
    for secret in (API_KEY, intent["client_secret"], setup["client_secret"]):
        assert secret not in text


async def test_a_charge_id_once_charged_is_never_charged_again(client, hub, tenant, simulator):
    await connect_own_key(client, tenant)
    body = {k: v for k, v in CHARGE.items() if k != "id"} | {"charge_id": "charge-3"}
    await action(client, tenant, "charge_payment_method", body)
    error = (await action(client, tenant, "charge_payment_method", body | {"amount": 40000}, status=409))["error"]
    assert error["code"] == "charge_exists"
    assert len(simulator.objects("payment_intent")) == 1
