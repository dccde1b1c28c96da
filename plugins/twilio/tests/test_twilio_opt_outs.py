"""Opt-outs: an inbound STOP (or any of Twilio's opt-out words) keeps the hub from texting that number until
it replies START (YES, UNSTOP); Twilio's own 21610 is the same error. The list is the tenant's."""

from __future__ import annotations

import pytest
from twilio_flows import act, connect, deliver, webhook_url

from hub.testing import new_tenant, run_jobs
from hub_twilio.simulator import ACCOUNT_SID

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")

OPT_OUT = ("STOP", "UNSUBSCRIBE", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT", "CANCEL")


async def opt_outs(client, tenant) -> list[str]:
    response = await client.get("/v1/connections/twilio/opt-outs", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [item["external_id"] for item in response.json()["items"]]


async def test_stop_refuses_sends_before_twilio_and_start_allows_them_again(client, hub, tenant, simulator):
    connection = await connect(client, tenant)
    url = webhook_url(connection)

    await deliver(client, simulator.inbound_message(url, from_="+14155550123", body=" stop "))
    await run_jobs(hub)
    creations = simulator.message_creations()
    refused = await act(client, tenant, "send_sms", to="+14155550123", body="Your crew is on the way")

    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "recipient_opted_out"
    assert "+14155550123" in refused.json()["error"]["message"]
    assert simulator.message_creations() == creations, "an opted-out number reached Twilio"
    assert await opt_outs(client, tenant) == ["+14155550123"]

    await deliver(client, simulator.inbound_message(url, from_="+14155550123", body="Start"))
    await run_jobs(hub)
    accepted = await act(client, tenant, "send_sms", to="+14155550123", body="Your crew is on the way")

    assert accepted.status_code == 200, accepted.text
    assert simulator.sent()[-1]["to"] == "+14155550123"
    assert await opt_outs(client, tenant) == []
    types = [e["type"] for e in (await client.get("/v1/events", headers=tenant.headers)).json()]
    assert types.count("sms.received") == 2 and "sms.opted_out" in types and "sms.opted_in" in types


async def test_every_opt_out_word_adds_and_every_opt_in_word_removes(client, hub, tenant, simulator):
    connection = await connect(client, tenant)
    numbers = [f"+1415555020{n}" for n in range(len(OPT_OUT))]
    for number, word in zip(numbers, OPT_OUT, strict=True):
        await deliver(client, simulator.inbound_message(webhook_url(connection), from_=number, body=word.lower()))
    await deliver(client, simulator.inbound_message(webhook_url(connection), from_="+14155550299",
                                                    body="please stop by the site"))
    await run_jobs(hub)
    assert sorted(await opt_outs(client, tenant)) == sorted(numbers)

    for number, word in zip(numbers, ("START", "YES", "UNSTOP"), strict=False):
        await deliver(client, simulator.inbound_message(webhook_url(connection), from_=number, body=word))
    await run_jobs(hub)
    assert sorted(await opt_outs(client, tenant)) == sorted(numbers[3:])

    other = await new_tenant(client, "Other Builders")
    await connect(client, other)
    assert await opt_outs(client, other) == [], "one tenant's opt-outs showed up in another's list"


async def test_twilios_21610_is_the_same_opted_out_error_and_21211_a_clear_422(client, tenant, simulator):
    await connect(client, tenant)
    simulator.accounts[ACCOUNT_SID].opted_out.add(("+14155550177", "+15017122661"))

    opted_out = await act(client, tenant, "send_sms", to="+14155550177", body="Hello")
    invalid = await act(client, tenant, "send_sms", to="+15005550001", body="Hello")

    assert opted_out.status_code == 409, opted_out.text
    assert opted_out.json()["error"]["code"] == "recipient_opted_out"
    assert invalid.status_code == 422, invalid.text
    assert invalid.json()["error"]["code"] == "invalid_recipient" and "21211" in invalid.json()["error"]["message"]
    assert [e.status for e in simulator.logged(lambda r: r.method == "POST")] == [400, 400]
    assert await opt_outs(client, tenant) == ["+14155550177"], "Twilio's opt-out did not reach the tenant's list"
    again = await act(client, tenant, "send_sms", to="+14155550177", body="Hello")
    assert again.json()["error"]["code"] == "recipient_opted_out"
    assert simulator.message_creations() == 2, "the hub asked Twilio again after its 21610"
