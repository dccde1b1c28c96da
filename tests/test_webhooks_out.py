"""Outgoing webhooks through the API: endpoints, secrets, fan-out, signing, the delivery log."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import standardwebhooks
from sqlalchemy import func, select

from hub.db.models import WebhookDelivery, WebhookEndpoint
from hub.events import record_event
from hub.testing.clock import Clock
from hub.testing.receiver import Answer, Receiver
from hub.webhooks.delivery import USER_AGENT, deliver_due
from tests.conftest import new_tenant


@pytest.fixture
def settings(settings):
    """Real deliveries in these tests go to receivers on 127.0.0.1, so the operator's switch is on."""
    return msgspec.structs.replace(settings, allow_private_webhook_urls=True)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


async def create(client, tenant, url: str, **body) -> dict:
    response = await client.post("/v1/webhook-endpoints", json={"url": url, **body}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def publish(client, tenant, type: str, data: dict | None = None) -> dict:
    response = await client.post("/v1/events", json={"type": type, "data": data or {}}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(client, tenant, endpoint_id: str, **params) -> list[dict]:
    response = await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params,
                                headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_secret_is_shown_once_on_create_and_stored_encrypted(client, hub, tenant, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    created = await create(client, tenant, receiver.url, event_types=["invoice.*"], description="Accounting")

    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert created["event_types"] == ["invoice.*"] and created["enabled"] is True
    listed = await client.get("/v1/webhook-endpoints", headers=tenant.headers)
    one = await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=tenant.headers)
    assert [e["id"] for e in listed.json()] == [created["id"]] and one.json()["url"] == receiver.url
    async with hub.session() as session:
        row = await session.get(WebhookEndpoint, uuid.UUID(created["id"]))
    assert secret not in row.secret_enc
    assert hub.vault.decrypt(row.secret_enc, tenant.id, row.id, "secret") == secret

    await publish(client, tenant, "invoice.paid", {"invoice": "INV-1"})
    await deliver_due(hub)
    rotated = await client.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret", headers=tenant.headers)
    later = [listed.text, one.text, (await client.get("/v1/webhook-endpoints", headers=tenant.headers)).text,
             json.dumps(await deliveries(client, tenant, created["id"]))]
    for text in later + [caplog.text]:
        assert secret not in text and rotated.json()["secret"] not in text
    assert receiver.count == 1


async def test_each_event_goes_to_every_enabled_endpoint_whose_patterns_match(client, hub, tenant, receiver):
    payments = await create(client, tenant, receiver.url + "/payments", event_types=["payment.*"])
    invoices = await create(client, tenant, receiver.url + "/invoices", event_types=["invoice.paid", "job.created"])
    everything = await create(client, tenant, receiver.url + "/all")
    await create(client, tenant, receiver.url + "/off", enabled=False)
    other = await new_tenant(client, "Other Co")
    await create(client, other, receiver.url + "/other")

    for type in ("payment.succeeded", "invoice.paid", "invoice.created", "job.created", "payments.x"):
        await publish(client, tenant, type)
    async with hub.session() as session:  # a provider or hub event takes the same path as a published one
        await record_event(session, tenant.id, "payment.refund.created", {"amount": 5}, provider="stripe")

    report = await deliver_due(hub)

    assert report.count("succeeded") == report.sent == len(receiver.received) == 10
    by_path: dict[str, list[str]] = {}
    for request in receiver.received:
        by_path.setdefault(request.path.removeprefix("/hooks"), []).append(json.loads(request.body)["type"])
    assert sorted(by_path["/payments"]) == ["payment.refund.created", "payment.succeeded"]
    assert sorted(by_path["/invoices"]) == ["invoice.paid", "job.created"]
    assert sorted(by_path["/all"]) == sorted(["payment.succeeded", "invoice.paid", "invoice.created", "job.created",
                                              "payments.x", "payment.refund.created"])
    assert "/off" not in by_path and "/other" not in by_path
    assert [d["event_type"] for d in await deliveries(client, tenant, payments["id"])] == [
        "payment.refund.created", "payment.succeeded"]
    assert len(await deliveries(client, tenant, invoices["id"])) == 2
    assert len(await deliveries(client, tenant, everything["id"])) == 6


async def test_deliveries_verify_with_the_standard_webhooks_library(client, hub, tenant):
    with Receiver(script=[503], then=Answer(200, b'{"received": true}')) as receiver:
        created = await create(client, tenant, receiver.url)
        event = await publish(client, tenant, "change_order.approved", {"id": "co-7", "amount": "1200.00"})
        await deliver_due(hub)
        hub.clock = Clock(hub.clock() + timedelta(seconds=10))  # the retry is due after about 5 s
        await deliver_due(hub)

    assert len(receiver.received) == 2
    verifier = standardwebhooks.Webhook(created["secret"])
    for request in receiver.received:
        verifier.verify(request.body, request.headers)  # raises unless a signature matches
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == USER_AGENT
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # stable across retries
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert json.loads(first.body) == {"id": event["id"], "type": "change_order.approved",
                                      "timestamp": event["occurred_at"], "provider": None,
                                      "data": {"id": "co-7", "amount": "1200.00"}}
    wrong = standardwebhooks.Webhook(base64.b64encode(b"x" * 32).decode())
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        wrong.verify(first.body, first.headers)
    [delivery] = await deliveries(client, tenant, created["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 2
    assert [(a["attempt"], a["status_code"]) for a in delivery["attempt_log"]] == [(1, 503), (2, 200)]
    assert delivery["attempt_log"][1]["response_body"] == '{"received": true}'
    assert all(a["duration_ms"] is not None and a["duration_ms"] >= 0 for a in delivery["attempt_log"])


async def test_after_rotation_both_secrets_sign_for_24_hours(client, hub, tenant, receiver):
    clock = hub.clock = Clock()
    created = await create(client, tenant, receiver.url)
    rotated = (await client.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret",
                                 headers=tenant.headers)).json()
    assert rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] == (clock() + timedelta(hours=24)).isoformat().replace("+00:00", "Z")

    await publish(client, tenant, "invoice.paid")
    await deliver_due(hub)
    during = receiver.received[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    clock.advance(timedelta(hours=24, seconds=1))
    await publish(client, tenant, "invoice.paid")
    await deliver_due(hub)
    after = receiver.received[-1]

    old, new = standardwebhooks.Webhook(created["secret"]), standardwebhooks.Webhook(rotated["secret"])
    for verifier in (old, new):
        verifier.verify(during.body, during.headers)
    # 24 h on, the timestamp is beyond the library's 5-minute tolerance of the real clock, so compare with
    # the signature the library computes for it instead of calling verify().
    assert after.headers["webhook-signature"] == signed_by(new, after)
    assert signed_by(old, after) not in after.headers["webhook-signature"]


def signed_by(verifier: standardwebhooks.Webhook, request) -> str:
    when = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    return verifier.sign(request.headers["webhook-id"], when, request.body.decode())


async def test_publish_event_validates_type_and_data(client, hub, tenant):
    for body in ({"type": "Invoice.Paid"}, {"type": "invoice"}, {"type": "invoice..paid"}, {"type": ""},
                 {"type": "invoice.paid", "data": [1]}, {"type": "a." + "b" * 200}, {"data": {}},
                 {"type": "invoice.paid", "extra": 1}):
        response = await client.post("/v1/events", json=body, headers=tenant.headers)
        assert response.status_code == 400, (body, response.text)
        assert set(response.json()["error"]) >= {"code", "message"}
    ok = await client.post("/v1/events", json={"type": "daily_log.created", "data": {"log": 1}},
                           headers=tenant.headers)
    assert ok.status_code == 201 and ok.json()["type"] == "daily_log.created" and ok.json()["provider"] is None
    listed = (await client.get("/v1/events?type=daily_log.created", headers=tenant.headers)).json()
    assert [e["id"] for e in listed] == [ok.json()["id"]]


async def test_bad_endpoint_input_is_a_4xx_in_the_one_error_shape(client, hub, tenant, receiver):
    bad = [
        {"url": "ftp://127.0.0.1/x"}, {"url": "not a url"}, {"url": "http://user:pw@127.0.0.1/"},
        {"url": receiver.url, "event_types": []}, {"url": receiver.url, "event_types": ["Invoice.Paid"]},
        {"url": receiver.url, "event_types": ["invoice.*.paid"]}, {"url": receiver.url, "event_types": "invoice.paid"},
        {"url": receiver.url, "unknown": 1}, {"url": "http://127.0.0.1/" + "a" * 3000},
    ]
    for body in bad:
        response = await client.post("/v1/webhook-endpoints", json=body, headers=tenant.headers)
        assert 400 <= response.status_code < 500, (body, response.text)
        assert {"code", "message"} <= set(response.json()["error"]), response.text
    created = await create(client, tenant, receiver.url)
    patched = await client.patch(f"/v1/webhook-endpoints/{created['id']}", json={"event_types": ["no spaces"]},
                                 headers=tenant.headers)
    assert patched.status_code == 400 and patched.json()["error"]["code"] == "invalid_event_types"
    recover = await client.post(f"/v1/webhook-endpoints/{created['id']}/recover?since=yesterday",
                                headers=tenant.headers)
    assert recover.status_code == 400
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 1


async def test_another_tenants_endpoints_and_deliveries_are_404(client, hub, tenant, receiver):
    created = await create(client, tenant, receiver.url)
    await publish(client, tenant, "job.created")
    [delivery] = await deliveries(client, tenant, created["id"])
    other = await new_tenant(client, "Other Co")
    base = f"/v1/webhook-endpoints/{created['id']}"
    for method, path in [("GET", base), ("PATCH", base), ("DELETE", base), ("POST", f"{base}/enable"),
                         ("POST", f"{base}/disable"), ("POST", f"{base}/rotate-secret"),
                         ("GET", f"{base}/deliveries"), ("GET", f"{base}/deliveries/{delivery['id']}"),
                         ("POST", f"{base}/deliveries/{delivery['id']}/redeliver"),
                         ("POST", f"{base}/recover?since=2020-01-01T00:00:00Z")]:
        response = await client.request(method, path, headers=other.headers, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "webhook_endpoint_not_found"
    assert (await client.get("/v1/webhook-endpoints", headers=other.headers)).json() == []
    second = await create(client, other, receiver.url)
    wrong_pair = await client.get(f"/v1/webhook-endpoints/{second['id']}/deliveries/{delivery['id']}",
                                  headers=other.headers)
    assert wrong_pair.status_code == 404 and wrong_pair.json()["error"]["code"] == "webhook_delivery_not_found"
    async with hub.session() as session:
        assert (await session.get(WebhookEndpoint, uuid.UUID(created["id"]))).enabled


async def test_update_disable_enable_and_delete(client, hub, tenant, receiver):
    created = await create(client, tenant, receiver.url, event_types=["job.*"])
    base = f"/v1/webhook-endpoints/{created['id']}"
    patched = (await client.patch(base, json={"event_types": ["invoice.paid"], "description": "AP"},
                                  headers=tenant.headers)).json()
    assert patched["event_types"] == ["invoice.paid"] and patched["description"] == "AP"
    await publish(client, tenant, "job.created")  # no longer subscribed
    await publish(client, tenant, "invoice.paid")
    assert [d["event_type"] for d in await deliveries(client, tenant, created["id"])] == ["invoice.paid"]

    disabled = (await client.post(f"{base}/disable", headers=tenant.headers)).json()
    assert disabled["enabled"] is False and disabled["disabled_reason"] == "disabled by the tenant"
    [pending] = await deliveries(client, tenant, created["id"])
    assert pending["status"] == "failed" and "disabled" in pending["last_error"]  # never sent
    await publish(client, tenant, "invoice.paid")
    assert len(await deliveries(client, tenant, created["id"])) == 1  # a disabled endpoint gets nothing new
    async with hub.session() as session:
        row = await session.get(WebhookEndpoint, uuid.UUID(created["id"]))
        row.consecutive_failures = 7
    enabled = (await client.post(f"{base}/enable", headers=tenant.headers)).json()
    assert enabled["enabled"] is True and enabled["consecutive_failures"] == 0 and enabled["disabled_reason"] is None

    await publish(client, tenant, "invoice.paid")
    assert (await client.delete(base, headers=tenant.headers)).status_code == 204
    assert (await client.get(base, headers=tenant.headers)).status_code == 404
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert (await deliver_due(hub)).sent == 0 and receiver.count == 0


async def test_redeliver_and_recover_send_failed_deliveries_again_with_the_same_id(client, hub, tenant):
    clock = hub.clock = Clock()
    with Receiver(then=500) as receiver:
        created = await create(client, tenant, receiver.url)
        base = f"/v1/webhook-endpoints/{created['id']}"
        for n in range(3):
            await publish(client, tenant, "selection.made", {"n": n})
            clock.advance(60)
        for _ in range(8):  # every attempt of the schedule fails
            await deliver_due(hub)
            clock.advance(timedelta(hours=11))
        listed = await deliveries(client, tenant, created["id"])
        assert [d["status"] for d in listed] == ["failed"] * 3 and all(d["attempts"] == 8 for d in listed)
        pending = (await client.post(f"{base}/deliveries/{listed[0]['id']}/redeliver", headers=tenant.headers))
        assert pending.status_code == 202 and pending.json()["status"] == "pending"
        again = await client.post(f"{base}/deliveries/{listed[0]['id']}/redeliver", headers=tenant.headers)
        assert again.status_code == 409 and again.json()["error"]["code"] == "webhook_delivery_pending"

        receiver.then = Answer(204, b"")
        await deliver_due(hub)
        oldest, middle, newest = reversed(listed)
        since = (clock() - timedelta(days=10)).isoformat()
        recovered = await client.post(f"{base}/recover", params={"since": since}, headers=tenant.headers)
        assert recovered.status_code == 202 and recovered.json() == {"recovered": 2}
        await deliver_due(hub)

    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 3 * 8 + 3 and len(set(ids)) == 3  # every retry and redelivery of an event: one id
    final = {d["id"]: d for d in await deliveries(client, tenant, created["id"])}
    assert {d["status"] for d in final.values()} == {"succeeded"}
    assert final[newest["id"]]["attempt_log"][-1]["status_code"] == 204
    assert len(final[newest["id"]]["attempt_log"]) == 9
    assert (await client.post(f"{base}/recover", params={"since": since}, headers=tenant.headers)).json() == {
        "recovered": 0}


async def test_a_nul_character_is_refused_alike_on_every_backend(client, hub, tenant, receiver):
    for path, body in [("/v1/events", {"type": "job.created", "data": {"note": "a\u0000b"}}),
                       ("/v1/events", {"type": "job.created", "data": {"k\u0000": [1, {"x": "\u0000"}]}}),
                       ("/v1/webhook-endpoints", {"url": receiver.url, "description": "x\u0000"})]:
        response = await client.post(path, json=body, headers=tenant.headers)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_character", body
    fine = await client.post("/v1/events", json={"type": "job.created", "data": {"note": "\\u0000 as text"}},
                             headers=tenant.headers)
    assert fine.status_code == 201 and fine.json()["data"] == {"note": "\\u0000 as text"}


async def test_many_events_in_one_transaction_read_the_endpoints_once(client, hub, tenant, receiver):
    from sqlalchemy import event as sa_event

    await create(client, tenant, receiver.url + "/all")
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    sa_event.listen(hub.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with hub.session() as session:  # a page of an inbound read recording its payments
            for n in range(50):
                await record_event(session, tenant.id, "payment.received", {"n": n})
            endpoint = await session.scalar(select(WebhookEndpoint))
            endpoint.enabled = False  # a change in the same transaction is seen by the next event
            await session.flush()
            await record_event(session, tenant.id, "payment.received", {"n": 50})
    finally:
        sa_event.remove(hub.engine.sync_engine, "before_cursor_execute", seen)

    reads = sum("FROM webhook_endpoints" in s and s.lstrip().upper().startswith("SELECT") for s in statements)
    assert reads == 3  # the first event's, the test's own, and the one after the change: not 51
    async with hub.session() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 50
