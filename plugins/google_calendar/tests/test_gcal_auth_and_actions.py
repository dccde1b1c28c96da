"""Google's OAuth (offline access, consent, PKCE, the calendar scope or a narrower one, the account's email),
the actions, and Google's rate-limit answers retried through the hub's client (the SDK never sends)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from gcal_flows import connect, items

from hub.testing import authorize
from hub_google_calendar.client import service
from hub_google_calendar.simulator import USER_EMAIL, USER_SUB
from hub_google_calendar.testing import GoogleCalendarAdapter

pytestmark = pytest.mark.only_on(database="sqlite", jobs="embedded")
ACTIONS = "/v1/connections/google_calendar/actions"


async def test_consent_asks_for_offline_access_with_pkce_and_names_the_account_by_its_email(
        client, tenant, simulator):
    url = urlsplit(await authorize(client, tenant, "google_calendar"))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/o/oauth2/v2/auth"
    assert (query["access_type"], query["prompt"], query["code_challenge_method"]) == ("offline", "consent", "S256")
    assert query["scope"].split() == ["openid", "email", "https://www.googleapis.com/auth/calendar"]

    connection = await connect(client, tenant)

    assert (connection["external_account_id"], connection["external_account_name"]) == (USER_SUB, USER_EMAIL)
    [grant] = simulator.grants.values()
    assert grant["refresh_token"] is not None  # offline access with consent: Google issued one
    token_request = next(e.request for e in simulator.requests if e.request.path == "/token")
    assert b"code_verifier=" in token_request.body and b"client_secret=" in token_request.body


class TestANarrowerScope:
    @pytest.fixture
    def hub_environ(self, simulator):
        return GoogleCalendarAdapter().environ(simulator) | {"GOOGLE_CALENDAR_SCOPES": "calendar.events"}

    async def test_the_operator_narrows_the_scope_and_what_it_does_not_cover_fails_cleanly(
            self, client, hub, tenant, simulator):
        query = parse_qs(urlsplit(await authorize(client, tenant, "google_calendar")).query)
        assert query["scope"][0].split()[-1] == "https://www.googleapis.com/auth/calendar.events"
        await connect(client, tenant)
        created = await client.post(f"{ACTIONS}/create_event", json=items(1)[0], headers=tenant.headers)
        assert created.status_code == 200, created.text
        listed = await client.post(f"{ACTIONS}/list_calendars", json={}, headers=tenant.headers)
        assert listed.status_code == 502 and "insufficientPermissions" in listed.json()["error"]["message"]


async def test_actions_create_update_delete_and_list(client, hub, tenant, simulator):
    await connect(client, tenant)
    item = items(1)[0]

    created = await client.post(f"{ACTIONS}/create_event", json=item, headers=tenant.headers)
    assert created.status_code == 200, created.text
    event_id = created.json()["event_id"]
    assert created.json() == {"schedule_item_id": "item-0", "event_id": event_id, "outcome": "created"}
    assert simulator.events()[event_id]["summary"] == "Task 0"
    calls = simulator.calls("/calendar/v3/")
    again = await client.post(f"{ACTIONS}/create_event", json=item, headers=tenant.headers)
    assert again.json()["outcome"] == "unchanged" and simulator.calls("/calendar/v3/") == calls

    updated = await client.post(f"{ACTIONS}/update_event", json=item | {"location": "1 Main St"},
                                headers=tenant.headers)
    assert updated.json() == {"schedule_item_id": "item-0", "event_id": event_id, "outcome": "updated"}
    assert simulator.events()[event_id]["location"] == "1 Main St"
    unknown = await client.post(f"{ACTIONS}/update_event", json=item | {"id": "item-9"}, headers=tenant.headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "event_not_found"
    invalid = await client.post(f"{ACTIONS}/create_event", json=item | {"end": "2026-11-30T00:00:00"},
                                headers=tenant.headers)
    assert invalid.status_code == 422  # ends before it starts: refused before Google is asked
    simulator.fail_next(400, path="/calendar/v3/calendars/primary/events")
    refused = await client.post(f"{ACTIONS}/create_event", json=item | {"id": "item-8"}, headers=tenant.headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "event_refused"

    deleted = await client.post(f"{ACTIONS}/delete_event", json={"schedule_item_id": "item-0"},
                                headers=tenant.headers)
    assert deleted.json() == {"schedule_item_id": "item-0", "event_id": event_id, "outcome": "deleted"}
    assert simulator.events() == {}
    gone = await client.post(f"{ACTIONS}/delete_event", json={"event_id": event_id}, headers=tenant.headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "event_not_found"
    for body in ({}, {"schedule_item_id": "item-0", "event_id": event_id}):
        refused = await client.post(f"{ACTIONS}/delete_event", json=body, headers=tenant.headers)
        assert refused.status_code == 422, body

    listed = await client.post(f"{ACTIONS}/list_calendars", json={}, headers=tenant.headers)
    assert [(c["id"], c["primary"]) for c in listed.json()["calendars"]] == [
        (USER_EMAIL, True), ("c_crew0schedule@group.calendar.google.com", False)]


async def test_googles_rate_limit_answers_are_retried_through_the_hubs_client_and_the_sdk_never_sends(
        client, tenant, simulator):
    await connect(client, tenant)
    calendars = "/calendar/v3/users/me/calendarList"
    simulator.fail_next(403, path=calendars)  # 403 rateLimitExceeded, Google's shape
    simulator.throttle_next(retry_after=1, path=calendars)  # 429 with Retry-After
    listed = await client.post(f"{ACTIONS}/list_calendars", json={}, headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    assert [e.status for e in simulator.logged(lambda r: r.path == calendars)] == [403, 429, 200]

    forbidden = json.dumps({"error": {"code": 403, "message": "Forbidden", "errors": [
        {"domain": "global", "reason": "forbidden", "message": "Forbidden"}]}}).encode()
    simulator.fail_next(403, path=calendars, body=forbidden)
    refused = await client.post(f"{ACTIONS}/list_calendars", json={}, headers=tenant.headers)
    assert refused.status_code == 502 and "forbidden" in refused.json()["error"]["message"]
    assert simulator.calls(calendars) == 4  # a plain 403 is not retried

    with pytest.raises(RuntimeError, match="hub's HTTP client"):
        service(f"{simulator.url}/calendar/v3/").calendarList().list().execute()
    assert simulator.calls(calendars) == 4
