"""Connecting (Auth Token or API key, checked before saving), settings, and the origin's templates with the
tenant's wording and time zone."""

from __future__ import annotations

import pytest
from twilio_flows import act, connect

from hub_twilio.simulator import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    AUTH_TOKEN,
    MESSAGING_SERVICE_SID,
    PHONE_NUMBER,
)

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")


async def test_an_api_key_connects_and_is_what_the_sdk_sends_with(client, tenant, simulator):
    connection = await connect(client, tenant, credentials={
        "account_sid": ACCOUNT_SID, "api_key_sid": API_KEY_SID, "api_key_secret": API_KEY_SECRET,
        "auth_token": AUTH_TOKEN})
    assert (connection["status"], connection["external_account_id"]) == ("connected", ACCOUNT_SID)
    assert connection["external_account_name"] == "Acme Builders"
    assert API_KEY_SECRET not in str(connection) and AUTH_TOKEN not in str(connection)

    sent = await act(client, tenant, "send_sms", to="+14155550100", body="hi")

    assert sent.status_code == 200, sent.text
    [post] = simulator.logged(lambda r: r.method == "POST")
    assert post.request.headers["user-agent"].startswith("twilio-python/")
    assert post.request.headers["authorization"] == "Basic " + __import__("base64").b64encode(
        f"{API_KEY_SID}:{API_KEY_SECRET}".encode()).decode()


REFUSED = [
    ({"account_sid": ACCOUNT_SID, "api_key_sid": API_KEY_SID, "api_key_secret": "wrong"}, "credentials_rejected"),
    ({"account_sid": ACCOUNT_SID, "api_key_sid": API_KEY_SID, "api_key_secret": API_KEY_SECRET,
      "auth_token": "wrong"}, "credentials_rejected"),
    ({"account_sid": "AC123", "auth_token": AUTH_TOKEN}, "invalid_credentials"),
    ({"account_sid": ACCOUNT_SID}, "invalid_credentials"),
]


async def test_credentials_twilio_refuses_or_that_are_malformed_store_nothing(client, tenant):
    for credentials, code in REFUSED:
        response = await client.put("/v1/connections/twilio", headers=tenant.headers,
                                    json={"credentials": credentials})
        assert (response.status_code, response.json()["error"]["code"]) == (422, code), response.text
        assert "wrong" not in response.text
        assert (await client.get("/v1/connections/twilio", headers=tenant.headers)).status_code == 404


async def test_settings_are_validated_and_a_connection_without_a_sender_says_so(client, tenant, simulator):
    await connect(client, tenant, sender="")
    no_sender = await act(client, tenant, "send_sms", to="+14155550100", body="hi")
    assert (no_sender.status_code, no_sender.json()["error"]["code"]) == (422, "sender_not_set")
    for bad in ({"sender": "5551234"}, {"messages_per_second": 0}, {"templates": {"schedule_reminder": "{oops}"}},
                {"templates": {"daily_log": "{job.__class__}"}}, {"templates": {"daily_log": "{job:>99999}"}}):
        response = await client.patch("/v1/connections/twilio", json={"settings": bad}, headers=tenant.headers)
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_settings"), bad
    ok = await client.patch("/v1/connections/twilio", json={"settings": {"sender": MESSAGING_SERVICE_SID}},
                            headers=tenant.headers)
    assert ok.status_code == 200, ok.text
    assert simulator.message_creations() == 0


async def test_templates_use_the_origins_wording_and_the_tenants_time_zone(client, tenant, simulator):
    await client.patch("/v1/tenant", json={"settings": {"timezone": "America/Los_Angeles"}}, headers=tenant.headers)
    await connect(client, tenant)

    # 02:30 UTC on the 2nd is still the 1st in Los Angeles.
    reminder = await act(client, tenant, "send_schedule_reminder", to="+14155550100", job_name="Smith Residence",
                         task_name="Drywall delivery", scheduled_for="2026-12-02T02:30:00Z")
    log = await act(client, tenant, "send_daily_log_notification", to="+14155550100", job_name="Smith Residence",
                    log_date="2026-12-01", summary="Framing done.", photo_count=4)
    no_photos = await act(client, tenant, "send_daily_log_notification", to="+14155550100", job_name="Smith Residence",
                          log_date="2026-12-01", summary="Framing done.")

    assert reminder.json()["body"] == "Reminder: Drywall delivery scheduled for Tue, Dec 1 on Smith Residence. - RossOS"
    assert log.json()["body"] == ("Daily Update - Smith Residence (12/1/2026)\n\nFraming done.\n\n"
                                  "4 photos added. View in your client portal.")
    assert no_photos.json()["body"] == "Daily Update - Smith Residence (12/1/2026)\n\nFraming done."
    assert [m["body"] for m in simulator.sent()] == [reminder.json()["body"], log.json()["body"],
                                                      no_photos.json()["body"]]
    assert simulator.sent()[0]["from"] == PHONE_NUMBER


async def test_selection_days_left_count_from_today_where_the_tenant_is_and_texts_are_the_tenants(client, tenant):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    zone = "Pacific/Kiritimati"  # UTC+14: its today is often not UTC's
    await client.patch("/v1/tenant", json={"settings": {"timezone": zone}}, headers=tenant.headers)
    await connect(client, tenant, templates={"selection_reminder": "{client_name}: pick {selection} {due_in}."})
    today = datetime.now(ZoneInfo(zone)).date()

    bodies = []
    for days in (3, 1, 0):
        response = await act(client, tenant, "send_selection_reminder", to="+14155550100", client_name="Dana",
                             selection_name="Kitchen tile", due_date=(today + timedelta(days=days)).isoformat())
        assert response.status_code == 200, response.text
        bodies.append(response.json()["body"])

    assert bodies == ["Dana: pick Kitchen tile in 3 days.", "Dana: pick Kitchen tile tomorrow.",
                      "Dana: pick Kitchen tile today."]


async def test_the_default_selection_text_is_the_origins(client, tenant):
    from datetime import UTC, datetime, timedelta

    await connect(client, tenant)  # the tenant's time zone is UTC until it says otherwise
    due = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    response = await act(client, tenant, "send_selection_reminder", to="+14155550100", client_name="Dana",
                         selection_name="Kitchen tile", due_date=due)
    assert response.json()["body"] == ('Hi Dana, your selection "Kitchen tile" is due in 30 days. Please make your '
                                       "choice in the client portal. - RossOS")


async def test_get_account_names_the_inbound_webhook_url(client, tenant):
    connection = await connect(client, tenant)
    account = (await act(client, tenant, "get_account")).json()
    assert account["account_sid"] == ACCOUNT_SID
    assert account["inbound_webhook_url"].endswith(f"/v1/webhooks/twilio/{connection['id']}")


def test_credentials_never_show_their_secrets():
    from hub_twilio.config import Credentials

    credentials = Credentials(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_key_sid=API_KEY_SID,
                              api_key_secret=API_KEY_SECRET)
    assert AUTH_TOKEN not in repr(credentials) and API_KEY_SECRET not in str(credentials)
