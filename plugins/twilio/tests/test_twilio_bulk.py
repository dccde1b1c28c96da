"""Bulk sends: one result per recipient, successes never hidden by failures, nobody texted twice however
often the bulk is sent again, and the senders' rate held (the simulator answers 429 / 20429 past it)."""

from __future__ import annotations

import pytest
from twilio_flows import act, connect, deliver, webhook_url

from hub.testing import run_jobs
from hub_twilio.simulator import MESSAGING_SERVICE_SID, SERVICE_NUMBERS, TwilioSimulator

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")

RATE = 25
"""Messages per second per sender. Twilio's long codes send 1; the test runs at 25 so 500 messages take
seconds, not minutes (bench/twilio_bulk.py runs the 1 per second case)."""


@pytest.fixture
def simulator():
    with TwilioSimulator(messages_per_second=RATE) as sim:
        yield sim


async def test_500_through_a_messaging_service_of_three_senders_all_sent_none_twice_no_429(client, tenant,
                                                                                           simulator):
    await connect(client, tenant, sender=MESSAGING_SERVICE_SID, senders=3, messages_per_second=RATE)
    numbers = [f"+1415556{n:04d}" for n in range(500)]
    bulk = {"bulk_id": "weather-delay-2026-12-01",
            "messages": [{"to": n, "body": "Rain delay: no work on site today."} for n in numbers]}

    first = await act(client, tenant, "send_bulk_sms", **bulk)

    assert first.status_code == 200, first.text
    out = first.json()
    assert (out["sent"], out["already_sent"], out["failed"]) == (500, 0, 0)
    assert [r["to"] for r in out["results"]] == numbers
    assert len({r["sid"] for r in out["results"]}) == 500
    at_twilio = simulator.sent()
    assert sorted(m["to"] for m in at_twilio) == sorted(numbers), "someone was texted twice, or not at all"
    assert {m["sender"] for m in at_twilio} == set(SERVICE_NUMBERS)
    assert simulator.rate_limited == 0
    assert all(e.status != 429 for e in simulator.logged())

    again = await act(client, tenant, "send_bulk_sms", **bulk)

    assert (again.json()["sent"], again.json()["already_sent"]) == (0, 500)
    assert [r["sid"] for r in again.json()["results"]] == [r["sid"] for r in out["results"]]
    assert len(simulator.sent()) == 500


async def test_partial_failure_reports_each_recipient_and_a_retry_texts_only_who_was_not_texted(
        client, hub, tenant, simulator):
    connection = await connect(client, tenant, messages_per_second=RATE)
    await deliver(client, simulator.inbound_message(webhook_url(connection), from_="+14155550303", body="STOP"))
    await run_jobs(hub)
    bulk = {"bulk_id": "selections-due", "messages": [
        {"to": "+14155550301", "body": "A"},   # Twilio answers 503: not sent
        {"to": "+14155550302", "body": "B"},   # sent, but the answer is lost: found at Twilio, not sent again
        {"to": "+14155550303", "body": "C"},   # replied STOP
        {"to": "+15005550001", "body": "D"},   # Twilio: 21211 invalid number
        {"to": "+14155550305", "body": "E"},
    ]}
    simulator.fail_next(503, path="/2010-04-01/Accounts/")
    simulator.lose_next_answer()

    first = (await act(client, tenant, "send_bulk_sms", **bulk)).json()

    outcomes = [(r["to"], r["outcome"], r["error"] and r["error"]["code"]) for r in first["results"]]
    assert outcomes == [
        ("+14155550301", "failed", "twilio_error"),
        ("+14155550302", "sent", None),
        ("+14155550303", "failed", "recipient_opted_out"),
        ("+15005550001", "failed", "invalid_recipient"),
        ("+14155550305", "sent", None),
    ]
    assert (first["sent"], first["failed"]) == (2, 3)
    assert sorted(m["to"] for m in simulator.sent()) == ["+14155550302", "+14155550305"]

    retried = (await act(client, tenant, "send_bulk_sms", **bulk)).json()

    assert [r["outcome"] for r in retried["results"]] == ["sent", "already_sent", "failed", "failed", "already_sent"]
    assert sorted(m["to"] for m in simulator.sent()) == ["+14155550301", "+14155550302", "+14155550305"]


async def test_a_bulk_naming_a_number_twice_or_a_bad_number_is_refused_whole(client, tenant, simulator):
    await connect(client, tenant)
    twice = await act(client, tenant, "send_bulk_sms", bulk_id="b",
                      messages=[{"to": "+14155550100", "body": "x"}, {"to": "+14155550100", "body": "y"}])
    bad = await act(client, tenant, "send_bulk_sms", bulk_id="b",
                    messages=[{"to": "+14155550100", "body": "x"}, {"to": "415-555-0101", "body": "y"}])
    assert (twice.status_code, bad.status_code) == (422, 422)
    assert "twice" in twice.json()["error"]["message"] and "E.164" in bad.json()["error"]["message"]
    assert simulator.message_creations() == 0


async def test_a_429_is_retried_by_the_hub_and_the_message_sent_once(client, tenant, simulator):
    await connect(client, tenant)
    simulator.throttle_next(retry_after=0, path="/2010-04-01/Accounts/")

    sent = await act(client, tenant, "send_sms", to="+14155550100", body="Concrete pour moved to 9 am")

    assert sent.status_code == 200, sent.text
    assert [e.status for e in simulator.logged(lambda r: r.method == "POST")] == [429, 201]
    assert len(simulator.sent()) == 1
