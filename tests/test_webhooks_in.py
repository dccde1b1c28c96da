"""Inbound provider webhooks: verified, stored once, processed once in a job, answered in the
provider's format — through the real HTTP API and real workers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from hub.api.app import BodyLimits
from hub.connections import connection_context, get_connection
from hub.db.models import Connection, Event, Job, WebhookInbox
from hub.handlers import VerifiedEvent
from hub.ids import new_id
from hub.tenants import create_tenant
from hub.testing import pause_schedules
from hub.webhooks.inbound import _row, _unparseable
from hub.webhooks.process import reprocess
from tests.conftest import ADMIN_TOKEN, new_tenant, wait_for
from tests.flows import connect
from tests.testprovider.server import API_KEY
from tests.testprovider.webhooks import keys_signature, oauth_signature

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OLD_SECRET, NEW_SECRET = "whsec-test-old", "whsec-test-new"


def payment_event(payment_id: str = "pay_1", *, event_id: str | None = "evt_1", account: str = "acct-42",
                  type: str = "payment.created", **data) -> dict:
    event = {"type": type, "account": account, "data": {"id": payment_id, "amount": "125.00", **data}}
    return event | ({"id": event_id} if event_id else {})


async def post(client, event, *, secret: str = NEW_SECRET, timestamp: int | None = None, body: bytes | None = None,
               provider: str = "testoauth"):
    body = json.dumps(event).encode() if body is None else body
    return await client.post(f"/v1/webhooks/{provider}", content=body, headers={
        "content-type": "application/json", "x-test-signature": oauth_signature(secret, body, timestamp)})


async def count(hub, model, *where) -> int:
    async with hub.session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def inbox_rows(hub) -> list[WebhookInbox]:
    async with hub.session() as session:
        return list((await session.scalars(select(WebhookInbox).order_by(WebhookInbox.received_at))).all())


async def processed(hub, n: int = 1):
    async def check():
        rows = await inbox_rows(hub)
        return rows if len(rows) >= n and all(r.status == "processed" for r in rows) else None

    return await wait_for(check)


async def test_a_redelivered_event_is_stored_once_processed_once_and_answered_2xx_each_time(client, hub, tenant,
                                                                                             jobs):
    await connect(client, tenant)

    answers = [await post(client, payment_event()) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == {"received": True}
    [row] = await processed(hub)
    assert (row.provider, row.event_type, row.account_id, row.tenant_id) == (
        "testoauth", "payment.created", "acct-42", tenant.id)
    assert await count(hub, Job, Job.kind == "webhook.process") == 1
    received = (await client.get("/v1/events?type=payment.received", headers=tenant.headers)).json()
    assert [e["data"] for e in received] == [{"payment_id": "pay_1", "amount": "125.00"}]
    records = (await client.get("/v1/records/testoauth/payment", headers=tenant.headers)).json()["items"]
    assert [(r["external_id"], r["data"]["amount"]) for r in records] == [("pay_1", "125.00")]


async def test_the_first_webhook_of_a_burst_is_written_at_once_and_the_rest_during_its_commit(hub):
    """A burst must not wait for its last request before the first transaction starts (the database idle
    while the loop reads the burst, then the loop idle during one big commit): each stored once, in two."""
    intake, batches = hub.webhook_intake, []
    write = intake._write_blocking

    def counting_write(batch, rejections, dispatching):
        batches.append(len(batch))
        return write(batch, rejections, dispatching)

    intake._write_blocking = counting_write
    events = [VerifiedEvent(type="payment.created", payload={"n": n}, account_id="acct-nobody",
                            event_id=f"evt_burst_{n}") for n in range(8)]
    stored = await asyncio.gather(*(intake.store("testoauth", [_row("testoauth", e, 0, "0" * 64)], None)
                                    for e in events))

    assert [len(new) for new in stored] == [1] * 8
    assert batches == [1, 7]
    assert await count(hub, WebhookInbox, WebhookInbox.dedup_key.like("id:evt_burst_%")) == 8


def _events(*ids, account: str = "acct-42") -> list[dict]:
    return [_row("testoauth", VerifiedEvent(type="payment.created", payload={"id": i}, account_id=account,
                                            event_id=f"evt_many_{i}"), 0, "0" * 64) for i in ids]


async def test_redeliveries_in_a_batch_are_stored_once_and_only_new_events_are_queued(client, hub, tenant):
    """A batch mixing events stored earlier, an event twice, and new ones: each request learns which of
    its events were new, and the jobs name exactly the rows stored, each once."""
    await connect(client, tenant)
    intake = hub.webhook_intake

    first = [await intake.store("testoauth", _events(i), None) for i in "ab"]
    burst = await asyncio.gather(*(intake.store("testoauth", _events(i), None) for i in "accdbe"))

    assert [len(new) for new in first] == [1, 1]
    assert [len(new) for new in burst] == [0, 1, 0, 1, 0, 1]
    stored = {row.id: row.dedup_key for row in await inbox_rows(hub)}
    assert sorted(stored.values()) == [f"id:evt_many_{i}" for i in "abcde"]
    assert set().union(*first, *burst) == set(stored)
    async with hub.session() as session:
        payloads = (await session.scalars(select(Job.payload).where(Job.kind == "webhook.process"))).all()
    named = [uuid.UUID(i) for payload in payloads for i in payload["inbox_ids"]]
    assert sorted(named) == sorted(stored)


async def _named_by_jobs(hub) -> list[list[uuid.UUID]]:
    async with hub.session() as session:
        payloads = (await session.scalars(select(Job.payload).where(Job.kind == "webhook.process")
                                          .order_by(Job.created_at))).all()
    return [[uuid.UUID(i) for i in payload["inbox_ids"]] for payload in payloads]


async def test_a_webhook_with_more_events_than_a_statement_takes_is_stored_whole(client, hub, tenant):
    """Over ``MAX_BATCH_ROWS`` events in one request (SQLite binds a limited number of values a
    statement), then a redelivery of half of them with as many new."""
    await connect(client, tenant)
    warm = await hub.webhook_intake.store("testoauth", _events("warm"), None)  # the writer has its connection
    if hub.engine.dialect.name == "sqlite":  # bind as few values as SQLite before 3.32 (later: 32,766 or more)
        writer = hub.webhook_intake._connection.connection.driver_connection
        writer.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    first = await hub.webhook_intake.store("testoauth", _events(*range(1200)), None)
    again = await hub.webhook_intake.store("testoauth", _events(*range(600, 1800)), None)

    assert (len(first), len(again)) == (1200, 600)
    stored = {row.id for row in await inbox_rows(hub)}
    assert len(stored) == 1801 and warm | first | again == stored
    named = [i for job in await _named_by_jobs(hub) for i in job]
    assert sorted(named) == sorted(stored)


async def test_a_job_names_its_events_in_the_order_they_arrived(client, hub, tenant):
    """Not in the order of their ids (a clock set back makes later ids smaller)."""
    await connect(client, tenant)
    rows = _events("x", "y", "z")
    for row, descending in zip(rows, sorted((new_id() for _ in rows), reverse=True), strict=True):
        row["id"] = descending

    await hub.webhook_intake.store("testoauth", rows, None)

    assert await _named_by_jobs(hub) == [[row["id"] for row in rows]]


async def test_rejected_webhooks_are_counted_once_when_their_batch_fails(client, hub, tenant):
    """The batch is written again request by request: the rejections it carried must not count twice."""
    await connect(client, tenant)
    for _ in range(2):
        hub.webhook_intake.count_rejection("testoauth")
    refused = _events("nul", account="acct-\x00")  # PostgreSQL refuses a NUL: the batch fails there

    await hub.webhook_intake.store("testoauth", refused, None,
                                   lambda reason: _unparseable("testoauth", b"{}", "1" * 64, reason))

    counts = (await client.get("/v1/admin/webhook-rejections", headers=ADMIN)).json()
    assert counts == {"testoauth": 2}


async def test_a_lone_surrogate_in_an_authentic_events_account_is_kept_as_failed_not_a_500(client, hub, tenant):
    body = rb'{"id": "evt_s2", "type": "payment.created", "account": "acct-\ud800", "data": {}}'
    response = await post(client, None, body=body)

    assert response.status_code == 200, response.text
    [row] = await inbox_rows(hub)
    assert row.status == "failed" and "database refused" in row.last_error


async def test_an_account_connected_by_several_tenants_routes_to_the_latest_connected(client, hub):
    """Never to one still onboarding (no connected_at): both databases, whose NULLs sort differently."""
    moments = {"early": hub.clock() - timedelta(days=2), "late": hub.clock() - timedelta(days=1), "pending": None}
    owners = {}
    async with hub.session() as session:
        for name, connected_at in moments.items():
            tenant = await create_tenant(session, f"{name} Co", None)
            session.add(Connection(id=new_id(), tenant_id=tenant.id, provider="testoauth",
                                   status="pending" if connected_at is None else "connected",
                                   external_account_id="acct-shared", connected_at=connected_at,
                                   metadata_={}, settings={}, sync_schedules={}, sync_enabled=True))
            owners[tenant.id] = name
    event = VerifiedEvent(type="payment.created", payload={}, account_id="acct-shared", event_id="evt_shared")

    await hub.webhook_intake.store("testoauth", [_row("testoauth", event, 0, "0" * 64)], None)

    [row] = await inbox_rows(hub)
    assert owners[row.tenant_id] == "late"
    async with hub.session() as session:
        await session.execute(update(WebhookInbox).values(status="failed", connection_id=None, tenant_id=None))
    async with hub.session() as session:
        assert owners[(await reprocess(session, row.id, None)).tenant_id] == "late"


async def test_events_without_an_id_are_deduplicated_by_body_and_position(client, hub, tenant, jobs):
    await connect(client, tenant)
    batch = [payment_event("pay_1", event_id=None), payment_event("pay_2", event_id=None)]

    for _ in range(2):
        assert (await post(client, batch)).status_code == 200

    rows = await processed(hub, 2)
    assert len(rows) == 2
    received = (await client.get("/v1/events?type=payment.received", headers=tenant.headers)).json()
    assert sorted(e["data"]["payment_id"] for e in received) == ["pay_1", "pay_2"]


async def test_bad_signatures_are_refused_with_nothing_stored_but_a_count(client, hub, tenant):
    await connect(client, tenant)
    body = json.dumps(payment_event()).encode()
    tampered = body.replace(b"125.00", b"999.00")
    now = int(time.time())

    attempts = [
        await post(client, None, secret="not-the-secret", body=body),
        await client.post("/v1/webhooks/testoauth", content=tampered,
                          headers={"x-test-signature": oauth_signature(NEW_SECRET, body, now)}),
        await post(client, None, body=body, timestamp=now - 301),  # replayed from long ago
        await post(client, None, body=body, timestamp=now + 330),  # from the future, however slow this request
        await client.post("/v1/webhooks/testoauth", content=body),
    ]

    assert [a.status_code for a in attempts] == [401] * 5
    assert {a.json()["error"]["code"] for a in attempts} == {"invalid_signature"}
    assert all(NEW_SECRET not in a.text and OLD_SECRET not in a.text for a in attempts)
    assert await count(hub, WebhookInbox) == 0 and await count(hub, Job) == 0

    async def counted():  # counted with the intake's next write, not in the request's own transaction
        counts = (await client.get("/v1/admin/webhook-rejections", headers=ADMIN)).json()
        return counts if counts.get("testoauth") == 5 else None

    assert await wait_for(counted) == {"testoauth": 5}


async def test_every_active_secret_verifies_during_a_rotation(client, hub, tenant):
    await connect(client, tenant)

    old = await post(client, payment_event("pay_1", event_id="evt_1"), secret=OLD_SECRET)
    new = await post(client, payment_event("pay_2", event_id="evt_2"), secret=NEW_SECRET)

    assert (old.status_code, new.status_code) == (200, 200)
    assert await count(hub, WebhookInbox) == 2


async def test_unknown_provider_is_404_and_an_oversized_body_is_413(client, hub):
    unknown = await client.post("/v1/webhooks/nosuch", content=b"{}")
    too_big = await post(client, None, body=b"x" * 65_537)  # over testoauth's declared 64 KiB

    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "provider_not_found")
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "body_too_large")
    assert await count(hub, WebhookInbox) == 0


async def streamed_post(app, path: str, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, dict, int]:
    """POST a body in several ASGI messages without a content-length (as a chunked upload arrives); the
    answer's status and body, and how many messages the app left unread."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:])), len(messages)


async def test_the_receivers_paths_methods_and_streamed_bodies_get_the_one_error_shape(client, hub, tenant):
    valid = json.dumps(payment_event()).encode()
    headers = {"content-type": "application/json", "x-test-signature": oauth_signature(NEW_SECRET, valid)}

    answers = {
        "get": await client.get("/v1/webhooks/testoauth"),
        "no provider": await client.post("/v1/webhooks", content=valid, headers=headers),
        "no provider, slash": await client.post("/v1/webhooks/", content=valid, headers=headers),
        "glued": await client.post("/v1/webhookstestoauth", content=valid, headers=headers),
        "not a uuid": await client.post("/v1/webhooks/testoauth/not-a-uuid", content=valid, headers=headers),
        "too deep": await client.post(f"/v1/webhooks/testoauth/{uuid.uuid4()}/x", content=valid, headers=headers),
    }
    limit = BodyLimits.of(hub).webhooks
    too_big = await streamed_post(client.app, "/v1/webhooks/testoauth", [b"x" * 65_536] * (limit // 65_536 + 4),
                                  headers)
    streamed_ok = await streamed_post(client.app, "/v1/webhooks/testoauth/", [valid[:10], valid[10:]], headers)

    got = {name: (r.status_code, r.json()["error"]["code"]) for name, r in answers.items()}
    assert got == {"get": (405, "method_not_allowed"), "no provider": (404, "not_found"),
                   "no provider, slash": (404, "not_found"), "glued": (404, "not_found"),
                   "not a uuid": (404, "not_found"), "too deep": (404, "not_found")}
    assert answers["get"].headers["allow"] == "POST"
    assert all(r.headers["x-request-id"] for r in answers.values())
    assert (too_big[0], too_big[1]["error"]["code"]) == (413, "body_too_large")
    assert too_big[2] >= 2  # refused while reading, not after taking it all in
    assert streamed_ok == (200, {"received": True}, 0)  # a trailing slash and a body in pieces are fine
    assert await count(hub, WebhookInbox) == 1


async def test_a_lone_surrogate_in_an_authentic_body_is_stored_not_a_500(client, hub, tenant):
    body = rb'{"id": "evt_s", "type": "payment.created", "account": "acct-42", "data": {"note": "\ud800"}}'
    response = await post(client, None, body=body)  # json.loads makes a lone surrogate of it; msgspec refuses those

    assert response.status_code == 200, response.text
    [row] = await inbox_rows(hub)  # stored (PostgreSQL's jsonb refuses it: kept as failed, with the reason)
    assert row.status == "unrouted" or (row.status == "failed" and "database refused" in row.last_error)


async def test_an_authentic_body_that_does_not_parse_is_kept_as_failed_with_the_reason(client, hub, tenant):
    answer = await post(client, None, body=b"this is not json")

    assert answer.status_code == 200
    [row] = await inbox_rows(hub)
    assert row.status == "failed" and row.body == "this is not json"
    assert row.last_error.startswith("unparseable body: JSONDecodeError")
    failed = (await client.get("/v1/admin/webhook-inbox?status=failed", headers=ADMIN)).json()
    assert [r["id"] for r in failed] == [str(row.id)]
    again = await client.post(f"/v1/admin/webhook-inbox/{row.id}/reprocess", headers=ADMIN)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "webhook_unparseable")


async def test_an_event_for_no_connection_is_kept_unrouted_and_processed_once_its_tenant_connects(
        client, hub, tenant, jobs):
    assert (await post(client, payment_event())).status_code == 200
    [row] = await inbox_rows(hub)
    assert (row.status, row.tenant_id) == ("unrouted", None)
    unrouted = (await client.get("/v1/admin/webhook-inbox?status=unrouted", headers=ADMIN)).json()
    assert [r["id"] for r in unrouted] == [str(row.id)]
    assert (await client.get("/v1/webhook-inbox", headers=tenant.headers)).json() == []
    early = await client.post(f"/v1/admin/webhook-inbox/{row.id}/reprocess", headers=ADMIN)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "webhook_unrouted")

    await connect(client, tenant)
    answer = await client.post(f"/v1/admin/webhook-inbox/{row.id}/reprocess", headers=ADMIN)

    assert answer.status_code == 202
    [row] = await processed(hub)
    assert row.tenant_id == tenant.id
    assert len((await client.get("/v1/events?type=payment.received", headers=tenant.headers)).json()) == 1


async def test_a_failing_handler_is_retried_and_its_row_shows_attempts_and_the_error(client, hub, tenant, jobs,
                                                                                     monkeypatch):
    import hub.webhooks.intake as intake

    monkeypatch.setattr(intake, "MAX_ATTEMPTS", 2)
    await connect(client, tenant)
    flaky = {"id": "evt_flaky", "type": "flaky", "account": "acct-42", "data": {"note": "maintenance"}}

    assert (await post(client, flaky)).status_code == 200

    async def retrying():
        [row] = await inbox_rows(hub)
        return row if row.attempts == 1 else None

    row = await wait_for(retrying)
    assert row.status == "pending" and "bad day (maintenance)" in row.last_error
    mine = (await client.get("/v1/webhook-inbox?status=pending", headers=tenant.headers)).json()
    assert [(r["id"], r["attempts"]) for r in mine] == [(str(row.id), 1)]
    async with hub.session() as session:  # its next attempt waits in the job's row, with a backoff
        job = await session.get(Job, row.job_id)
        job.run_at = job.run_at.replace(year=2000)  # due now

    async def gave_up():
        [row] = await inbox_rows(hub)
        return row if row.status == "failed" else None

    row = await wait_for(gave_up)
    assert row.attempts == 2 and "bad day" in row.last_error

    again = await client.post(f"/v1/webhook-inbox/{row.id}/reprocess", headers=tenant.headers)
    assert again.status_code == 202 and again.json()["status"] == "pending"
    other = await new_tenant(client, "Other Co")
    assert (await client.post(f"/v1/webhook-inbox/{row.id}/reprocess", headers=other.headers)).status_code == 404
    assert (await client.get(f"/v1/webhook-inbox/{row.id}", headers=other.headers)).status_code == 404


async def test_a_change_notification_starts_an_incremental_read(client, hub, tenant, provider, jobs):
    await connect(client, tenant)
    await pause_schedules(client, tenant, "testoauth")  # the scheduler's first read would be a second run
    provider.state.put_payment("pay_9", "10.00")

    assert (await post(client, {"id": "evt_c", "type": "payments.changed", "account": "acct-42",
                                "data": {}})).status_code == 200

    async def stored():
        items = (await client.get("/v1/records/testoauth/payment", headers=tenant.headers)).json()["items"]
        return items or None

    assert [r["external_id"] for r in await wait_for(stored)] == ["pay_9"]
    runs = (await client.get("/v1/syncs?entity=payment", headers=tenant.headers)).json()
    assert [r["type"] for r in runs] == ["incremental"]



async def test_a_change_announced_while_a_read_is_past_its_provider_call_is_read_again(client, hub, tenant,
                                                                                       provider, jobs):
    provider.state.put_payment("pay_1", "10.00")
    provider.state.stall_read = 1  # the first payments read gets its answer, then waits
    await connect(client, tenant)
    started = await client.post("/v1/connections/testoauth/syncs", json={"entity": "payment"},
                                headers=tenant.headers)
    assert started.status_code in (202, 409), started.text  # 409: the scheduler's first read came first
    assert await asyncio.to_thread(provider.state.stalled.wait, 20)
    provider.state.put_payment("pay_2", "20.00")  # after that read's provider call

    assert (await post(client, {"id": "evt_late", "type": "payments.changed", "account": "acct-42",
                                "data": {}})).status_code == 200
    await processed(hub)  # while the read still runs: no second read may start now
    runs = (await client.get("/v1/syncs?entity=payment", headers=tenant.headers)).json()
    assert [(r["status"], r["rerun_requested"]) for r in runs] == [("running", True)]
    provider.state.release.set()

    async def stored():
        items = (await client.get("/v1/records/testoauth/payment", headers=tenant.headers)).json()["items"]
        return items if len(items) == 2 else None

    assert sorted(r["external_id"] for r in await wait_for(stored)) == ["pay_1", "pay_2"]
    runs = (await client.get("/v1/syncs?entity=payment", headers=tenant.headers)).json()
    assert sorted((r["type"], r["created"]) for r in runs) == [("incremental", 1), ("incremental", 1)]


async def test_per_connection_webhooks_verify_against_the_public_url_and_answer_in_the_providers_format(
        client, hub, tenant, settings, jobs):
    connected = await client.put("/v1/connections/testkeys", json={"credentials": {"api_key": API_KEY}},
                                 headers=tenant.headers)
    connection_id = connected.json()["id"]
    path = f"/v1/webhooks/testkeys/{connection_id}"
    body = b"MessageSid=SM1&From=%2B15551234567&Body=STOP"
    public = settings.public_url + path
    async with hub.session(tenant.id) as session:  # what the plugin hands the provider as its callback URL
        ctx = await connection_context(hub, session, await get_connection(session, tenant.id, "testkeys"))
    assert ctx.webhook_url == public
    signed = {"content-type": "application/x-www-form-urlencoded",
              "x-testkeys-signature": keys_signature(API_KEY, public, body)}

    # The Host header says something else; the signature is over the URL the provider was given.
    answer = await client.post(path, content=body, headers=signed | {"host": "attacker.example"})

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert answer.text.endswith("<Response></Response>")
    await processed(hub)
    sms = (await client.get("/v1/events?type=sms.received", headers=tenant.headers)).json()
    assert [e["data"]["from"] for e in sms] == ["%2B15551234567"]

    as_host = {"x-testkeys-signature": keys_signature(API_KEY, f"http://attacker.example{path}", body)}
    assert (await client.post(path, content=body.replace(b"SM1", b"SM2"), headers=as_host)).status_code == 401
    assert (await client.post("/v1/webhooks/testkeys", content=body, headers=signed)).status_code == 404
    assert (await client.post(f"/v1/webhooks/testkeys/{uuid.uuid4()}", content=body,
                              headers=signed)).status_code == 404
    assert await count(hub, Event, Event.type == "sms.received") == 1


async def test_a_handlers_new_records_record_their_new_events_once_as_the_providers(client, hub, tenant):
    from hub.handlers import InboundRecord, NewEvent, WebhookOutcome
    from hub.webhooks.process import apply_outcome

    await connect(client, tenant)
    record = InboundRecord(external_id="pay_9", data={"id": "pay_9", "amount": "9.00", "payment_date": "2026-11-01"},
                           new_events=[NewEvent(type="payment.received", data={"payment_id": "pay_9"})])
    for amount in ("9.00", "9.50"):  # the second is a later version of the same payment: not new
        record.data["amount"] = amount
        async with hub.session(tenant.id) as session:
            conn = (await session.scalars(select(Connection).where(Connection.provider == "testoauth"))).one()
            await apply_outcome(hub, session, conn, WebhookOutcome(records={"payment": [record]}))

    received = (await client.get("/v1/events?type=payment.received", headers=tenant.headers)).json()
    assert [(e["data"], e["provider"]) for e in received] == [({"payment_id": "pay_9"}, "testoauth")]


async def test_a_records_change_events_are_recorded_once_per_changed_version_never_on_first_sight(
        client, hub, tenant):
    from hub.handlers import InboundRecord, NewEvent, WebhookOutcome
    from hub.webhooks.process import apply_outcome

    await connect(client, tenant)
    for amount in ("9.00", "9.00", "9.50", "9.50", "9.75"):  # first sight, same, changed, same, changed
        data = {"id": "pay_9", "amount": amount, "payment_date": "2026-11-01"}
        changed = NewEvent(type="payment.changed", data={"amount": amount})
        record = InboundRecord(external_id="pay_9", data=data, change_events=[changed])
        async with hub.session(tenant.id) as session:
            conn = (await session.scalars(select(Connection).where(Connection.provider == "testoauth"))).one()
            await apply_outcome(hub, session, conn, WebhookOutcome(records={"payment": [record, record]}))

    changed = (await client.get("/v1/events?type=payment.changed", headers=tenant.headers)).json()
    assert sorted(e["data"]["amount"] for e in changed) == ["9.50", "9.75"]


async def test_an_event_the_database_cannot_hold_is_kept_as_failed_not_a_500(client, hub, tenant, database_url):
    await connect(client, tenant)
    # Valid JSON, but PostgreSQL's jsonb takes no \u0000; SQLite stores it as it is.
    body = b'{"id": "evt_nul", "type": "payment.created", "account": "acct-42", ' \
           b'"data": {"id": "pay_nul", "amount": "1.00", "note": "a\\u0000b"}}'

    answer = await post(client, None, body=body)

    assert answer.status_code == 200
    [row] = await inbox_rows(hub)
    if database_url.startswith("postgresql"):
        assert row.status == "failed" and row.payload is None and "\\u0000" in row.body
        assert row.last_error.startswith("the database refused the event: DataError")
    else:
        assert row.payload["note"] == "a\x00b"


def test_a_repeated_query_parameter_gives_the_plugin_its_first_value():
    from hub.api.webhooks_in import _first_values

    assert _first_values("a=1&b=&a=2&c=x%20y") == {"a": "1", "b": "", "c": "x y"}
