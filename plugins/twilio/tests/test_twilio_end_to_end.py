"""A message's whole life on every variant of the kit's matrix (SQLite and PostgreSQL, embedded and Redis
workers): sent through the action, reported back by Twilio's status callbacks, delivered."""

from __future__ import annotations

from twilio_flows import act, connect, deliver, webhook_url

from hub.testing import wait_for
from hub_twilio.simulator import PHONE_NUMBER


async def test_send_then_status_callbacks_until_delivered(client, tenant, simulator, jobs):
    connection = await connect(client, tenant)

    sent = await act(client, tenant, "send_sms", to="+14155550100", body="Framing inspection passed",
                     media_urls=["https://example.com/photo.jpg"])

    assert sent.status_code == 200, sent.text
    message = sent.json()
    assert (message["status"], message["sender"], message["to"]) == ("queued", PHONE_NUMBER, "+14155550100")
    [at_twilio] = simulator.sent()
    assert (at_twilio["sid"], at_twilio["media"]) == (message["sid"], ["https://example.com/photo.jpg"])
    [create] = simulator.logged(lambda r: r.method == "POST")
    assert create.request.form()["StatusCallback"] == webhook_url(connection)

    async def reached(status: str, count: int):
        records = (await client.get("/v1/records/twilio/message", headers=tenant.headers)).json()["items"]
        events = (await client.get("/v1/events?type=sms.status", headers=tenant.headers)).json()
        return (len(events) == count and records and records[0]["data"]["status"] == status
                and (events, records)) or None

    # Twilio reports each status as the carrier does, seconds apart: each is handled before the next comes.
    for count, status in enumerate(("sent", "delivered"), start=1):
        await deliver(client, simulator.status_callback(message["sid"], status))
        events, [record] = await wait_for(lambda status=status, count=count: reached(status, count), timeout=60)

    assert sorted(e["data"]["status"] for e in events) == ["delivered", "sent"]
    assert (record["external_id"], record["data"]["to"], record["data"]["from"]) == (
        message["sid"], "+14155550100", PHONE_NUMBER)
