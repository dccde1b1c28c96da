"""The hosted connect page: ``POST /v1/connect-sessions`` and the pages under ``/connect/{token}``, with the
QuickBooks (OAuth) and Twilio (API key) plugins on their simulators."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
from sqlalchemy import select

from hub.connect_forms import fields_of
from hub.db.models import ConnectSession
from hub.testing.app import PUBLIC_URL, new_tenant
from hub.testing.flows import consent
from hub_quickbooks.testing import QuickBooksAdapter
from hub_twilio.simulator import ACCOUNT_SID, AUTH_TOKEN
from hub_twilio.testing import TwilioAdapter

RETURN_URL = "https://app.example.com/settings/integrations"
ADAPTERS = (QuickBooksAdapter(), TwilioAdapter())
TWILIO_FORM = {"credentials.account_sid": ACCOUNT_SID, "credentials.auth_token": AUTH_TOKEN,
               "settings.sender": "+15017122661", "settings.messages_per_second": "5",
               "settings.senders": "1", "settings.status_callbacks": "on"}


@pytest.fixture
def simulators():
    started = [adapter.simulator() for adapter in ADAPTERS]
    for simulator in started:
        simulator.__enter__()
    yield dict(zip((a.provider for a in ADAPTERS), started, strict=True))
    for simulator in started:
        simulator.__exit__(None, None, None)


@pytest.fixture
def hub_plugins():
    return [adapter.plugin for adapter in ADAPTERS]


@pytest.fixture
def hub_environ(simulators):
    return {k: v for adapter in ADAPTERS for k, v in adapter.environ(simulators[adapter.provider]).items()}


@pytest.fixture
def secrets(simulators) -> list[str]:
    return [s for adapter in ADAPTERS for s in adapter.secrets(simulators[adapter.provider]) if len(s) >= 8]


async def new_session(client, tenant, **body) -> dict:
    response = await client.post("/v1/connect-sessions", headers=tenant.headers,
                                 json={"return_url": RETURN_URL} | body)
    assert response.status_code == 201, response.text
    return response.json()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def assert_no_secret(html: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in html


def field(html: str, element_id: str) -> str:
    """The opening tag of the element with this id."""
    match = re.search(rf'<(?:input|select)\b[^>]*\bid="{re.escape(element_id)}"[^>]*>', html, re.S)
    assert match, f"no field {element_id}"
    return match.group(0)


# -- the API -----------------------------------------------------------------------------------------------

async def test_a_session_is_a_link_whose_token_only_the_response_shows(client, hub, tenant):
    before = hub.clock()
    body = await new_session(client, tenant)

    assert set(body) == {"id", "url", "providers", "return_url", "expires_at", "revoked_at", "created_at"}
    assert body["providers"] == ["quickbooks", "twilio"]  # every installed provider by default
    assert body["return_url"] == RETURN_URL
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(seconds=899) <= expires - before <= timedelta(seconds=905)
    assert body["url"].startswith(f"{PUBLIC_URL}/connect/")
    token = body["url"].rsplit("/", 1)[1]
    assert len(token) >= 43
    async with hub.session() as session:
        row = (await session.scalars(select(ConnectSession))).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    again = (await client.get(f"/v1/connect-sessions/{body['id']}", headers=tenant.headers)).json()
    assert again["url"] is None and again["providers"] == body["providers"]


async def test_a_session_takes_a_subset_of_providers_and_a_lifetime(client, tenant):
    body = await new_session(client, tenant, providers=["twilio", "twilio"], expires_in_seconds=3600)
    assert body["providers"] == ["twilio"]
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(seconds=3600)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"return_url": RETURN_URL, "providers": ["quickbooks", "xero"]}, 422, "unknown_provider"),
    ({"return_url": "javascript:alert(1)"}, 422, "invalid_return_url"),
    ({"return_url": "/relative"}, 422, "invalid_return_url"),
    ({"return_url": RETURN_URL, "expires_in_seconds": 3601}, 400, "invalid_request"),
    ({"return_url": RETURN_URL, "expires_in_seconds": 0}, 400, "invalid_request"),
    ({"return_url": RETURN_URL, "providers": []}, 400, "invalid_request"),
    ({"providers": ["twilio"]}, 400, "invalid_request"),
    ({"return_url": RETURN_URL, "colour": "blue"}, 400, "invalid_request"),
])
async def test_bad_requests_are_clear_4xx_and_write_nothing(client, hub, tenant, body, status, code):
    response = await client.post("/v1/connect-sessions", headers=tenant.headers, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    async with hub.session() as session:
        assert (await session.scalars(select(ConnectSession))).first() is None


async def test_sessions_need_an_api_key(client):
    response = await client.post("/v1/connect-sessions", json={"return_url": RETURN_URL})
    assert response.status_code == 401


async def test_another_tenants_session_is_a_404(client, tenant):
    other = await new_tenant(client, "Other Co")
    body = await new_session(client, other)
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/v1/connect-sessions/{body['id']}", headers=tenant.headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "connect_session_not_found"
    assert (await client.get(path_of(body["url"]))).status_code == 200  # the DELETE revoked nothing


async def test_a_revoked_link_is_gone(client, tenant):
    body = await new_session(client, tenant)
    response = await client.delete(f"/v1/connect-sessions/{body['id']}", headers=tenant.headers)
    assert response.status_code == 200 and response.json()["revoked_at"]

    page = await client.get(path_of(body["url"]))

    assert page.status_code == 410 and page.headers["content-type"].startswith("text/html")
    assert "This link has expired" in page.text


async def test_a_link_expires_by_the_hubs_clock(client, tenant, clock):
    body = await new_session(client, tenant, expires_in_seconds=60)
    assert (await client.get(path_of(body["url"]))).status_code == 200
    clock.advance(61)
    page = await client.get(path_of(body["url"]))
    assert page.status_code == 410 and "<html lang=\"en\">" in page.text
    form = await client.post(path_of(body["url"]) + "/twilio/connect", data=TWILIO_FORM)
    assert form.status_code == 410


async def test_an_unknown_link_is_a_friendly_404_page(client):
    page = await client.get("/connect/" + "x" * 43)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Link not found" in page.text and "error" not in page.text.lower().split("<title>")[0]


# -- the page ----------------------------------------------------------------------------------------------

pytestmark_page = pytest.mark.only_on(database="sqlite")


@pytestmark_page
async def test_the_page_lists_the_providers_with_their_forms(client, tenant, secrets):
    body = await new_session(client, tenant)
    page = await client.get(path_of(body["url"]))

    assert page.status_code == 200
    html = page.text
    assert '<html lang="en">' in html and "<main" in html and "<header" in html and "<footer" in html
    assert "QuickBooks Online" in html and "Twilio" in html and html.count("Not connected") == 2
    token = body["url"].rsplit("/", 1)[1]
    assert f'action="/connect/{token}/quickbooks/connect"' in html  # OAuth: one button, no fields
    assert 'type="password"' in field(html, "twilio-credentials-auth-token")
    assert 'type="text"' in field(html, "twilio-credentials-account-sid")
    assert "required" in field(html, "twilio-credentials-account-sid")
    assert 'type="number"' in field(html, "twilio-settings-messages-per-second")
    assert "checked" in field(html, "twilio-settings-status-callbacks")  # the setting's default
    for element_id in re.findall(r'<(?:input|select)\b[^>]*\bid="([^"]+)"', html):
        assert f'<label for="{element_id}">' in html
    assert f'href="{RETURN_URL}"' in html and ">Done<" in html
    assert "<script" not in html and "style=" not in html
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert "'unsafe-inline'" not in csp
    assert_no_secret(html, secrets)
    css = await client.get("/connect/assets/connect.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytestmark_page
async def test_a_provider_outside_the_session_is_not_offered(client, tenant):
    body = await new_session(client, tenant, providers=["twilio"])
    html = (await client.get(path_of(body["url"]))).text
    assert "Twilio" in html and "QuickBooks" not in html
    response = await client.post(path_of(body["url"]) + "/quickbooks/connect")
    assert response.status_code == 404 and "Link not found" in response.text


@pytestmark_page
async def test_wrong_twilio_credentials_are_shown_next_to_the_field(client, tenant, simulators, secrets):
    body = await new_session(client, tenant)
    wrong = TWILIO_FORM | {"credentials.auth_token": "not-the-auth-token-0123"}

    response = await client.post(path_of(body["url"]) + "/twilio/connect", data=wrong)

    assert response.status_code == 422
    html = response.text
    token_field = field(html, "twilio-credentials-auth-token")
    assert 'aria-invalid="true"' in token_field
    assert "twilio-credentials-auth-token-error" in token_field  # aria-describedby
    assert 'id="twilio-credentials-auth-token-error"' in html and "did not accept" in html
    assert 'role="alert"' in html and "There is a problem" in html
    assert f'value="{ACCOUNT_SID}"' in field(html, "twilio-credentials-account-sid")  # typed values kept
    assert 'value="+15017122661"' in field(html, "twilio-settings-sender")
    assert "not-the-auth-token-0123" not in html  # a secret is never echoed back
    assert "value=" not in token_field
    assert_no_secret(html, secrets)
    listed = (await client.get("/v1/connections", headers=tenant.headers)).json()
    assert listed == []  # nothing saved


@pytestmark_page
async def test_form_errors_the_hub_can_tell_itself(client, tenant):
    body = await new_session(client, tenant)
    url = path_of(body["url"]) + "/twilio/connect"

    missing = await client.post(url, data={"credentials.auth_token": "x" * 32})
    malformed = await client.post(url, data=TWILIO_FORM | {"credentials.account_sid": "AC123"})
    not_a_number = await client.post(url, data=TWILIO_FORM | {"settings.messages_per_second": "fast"})

    assert missing.status_code == 422
    assert 'aria-invalid="true"' in field(missing.text, "twilio-credentials-account-sid")
    assert "Enter the account SID." in missing.text
    assert malformed.status_code == 422
    assert 'aria-invalid="true"' in field(malformed.text, "twilio-credentials-account-sid")
    assert "32 hexadecimal digits" in malformed.text and 'value="AC123"' in malformed.text
    assert not_a_number.status_code == 422
    assert 'aria-invalid="true"' in field(not_a_number.text, "twilio-settings-messages-per-second")


@pytestmark_page
async def test_twilio_connects_and_disconnects_from_the_page(client, tenant, simulators, secrets):
    body = await new_session(client, tenant)
    page_path = path_of(body["url"])

    response = await client.post(page_path + "/twilio/connect", data=TWILIO_FORM, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"{body['url']}?status=connected&provider=twilio"
    connection = (await client.get("/v1/connections/twilio", headers=tenant.headers)).json()
    assert connection["status"] == "connected"
    assert connection["settings"]["sender"] == "+15017122661" and connection["settings"]["messages_per_second"] == 5
    html = (await client.get(path_of(response.headers["location"]))).text
    assert "Twilio connected" in html and 'role="status"' in html
    assert_no_secret(html, secrets)

    confirm = await client.get(page_path + "/twilio/disconnect")
    assert confirm.status_code == 200 and "Disconnect Twilio?" in confirm.text
    assert f'action="/connect/{page_path.rsplit("/", 1)[1]}/twilio/disconnect"' in confirm.text
    done = await client.post(page_path + "/twilio/disconnect", follow_redirects=False)

    assert done.status_code == 303 and done.headers["location"].endswith("status=disconnected&provider=twilio")
    assert (await client.get("/v1/connections/twilio", headers=tenant.headers)).json()["status"] == "disconnected"
    html = (await client.get(path_of(done.headers["location"]))).text
    assert "Twilio disconnected." in html and html.count("Not connected") == 2


@pytestmark_page
async def test_a_banner_needs_the_connection_to_be_in_that_state(client, tenant):
    body = await new_session(client, tenant)
    html = (await client.get(path_of(body["url"]) + "?status=connected&provider=twilio")).text
    assert "Twilio connected" not in html


@pytestmark_page
async def test_a_cross_site_post_is_refused(client, tenant):
    body = await new_session(client, tenant)
    response = await client.post(path_of(body["url"]) + "/twilio/connect", data=TWILIO_FORM,
                                 headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403 and response.headers["content-type"].startswith("text/html")
    assert (await client.get("/v1/connections", headers=tenant.headers)).json() == []


async def test_quickbooks_oauth_round_trip_returns_to_the_page(client, hub, tenant, simulators, secrets):
    body = await new_session(client, tenant)
    page_path = path_of(body["url"])
    token = page_path.rsplit("/", 1)[1]

    start = await client.post(page_path + "/quickbooks/connect", follow_redirects=False)

    assert start.status_code == 303
    authorization_url = start.headers["location"]
    assert authorization_url.startswith(simulators["quickbooks"].url)
    cookie = start.headers["set-cookie"]
    assert f"Path=/connect/return/{body['id']}" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    async with hub.session() as session:  # the OAuth state's return URL does not hold the page's token
        from hub.db.models import OAuthState
        state = (await session.scalars(select(OAuthState))).one()
    assert token not in state.return_url and state.return_url.endswith(f"/connect/return/{body['id']}")

    back = await client.get(path_of(consent(authorization_url)), follow_redirects=False)  # the hub's callback
    assert back.status_code == 302 and path_of(back.headers["location"]).startswith(f"/connect/return/{body['id']}?")
    landing = await client.get(path_of(back.headers["location"]), follow_redirects=False)
    assert landing.status_code == 303
    target = urlsplit(landing.headers["location"])
    assert target.path == f"/connect/{token}"
    assert parse_qs(target.query) == {"status": ["connected"], "provider": ["quickbooks"]}

    html = (await client.get(path_of(landing.headers["location"]))).text
    assert "QuickBooks Online connected" in html and "Connected" in html
    assert (await client.get("/v1/connections/quickbooks", headers=tenant.headers)).json()["status"] == "connected"
    assert_no_secret(html, secrets)


@pytestmark_page
async def test_the_oauth_return_without_the_cookie_reveals_nothing(client, tenant):
    body = await new_session(client, tenant)
    client.cookies.clear()
    response = await client.get(f"/connect/return/{body['id']}?status=connected&provider=quickbooks",
                                follow_redirects=False)
    assert response.status_code == 404 and "Link not found" in response.text
    assert "location" not in response.headers


@pytestmark_page
async def test_a_denied_consent_shows_an_error_banner(client, tenant, simulators):
    body = await new_session(client, tenant)
    start = await client.post(path_of(body["url"]) + "/quickbooks/connect", follow_redirects=False)
    back = await client.get(path_of(consent(start.headers["location"], decision="deny")), follow_redirects=False)
    landing = await client.get(path_of(back.headers["location"]), follow_redirects=False)
    html = (await client.get(path_of(landing.headers["location"]))).text
    assert "You did not allow" in html and 'role="alert"' in html


@pytest.mark.postgres
async def test_connect_sessions_have_row_level_security(hub, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("row-level security is PostgreSQL's")
    from sqlalchemy import text

    from hub.db.models import TENANT_OWNED_TABLES

    assert "connect_sessions" in TENANT_OWNED_TABLES
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(text(
            "select relname from pg_class where relrowsecurity and relforcerowsecurity and relnamespace = "
            "(select oid from pg_namespace where nspname = current_schema())"))).scalars().all()
    assert set(TENANT_OWNED_TABLES) <= set(rows)



class Nested(msgspec.Struct):
    a: str = ""


class SampleFields(msgspec.Struct, kw_only=True):
    region: Literal["us", "eu"]
    client_token: str
    passcode: Annotated[str, msgspec.Meta(title="Pass code", description="From the app.",
                                          extra_json_schema={"writeOnly": True})] | None = None
    signing_secrets: list[str] = []
    retries: int = 3
    nested: Nested = msgspec.field(default_factory=Nested)


def test_form_fields_come_from_the_declared_schema():
    fields = {f.name: f for f in fields_of(SampleFields, "credentials")}

    assert list(fields) == ["region", "client_token", "passcode", "signing_secrets", "retries"]  # no nested form
    assert fields["region"].kind == "select" and set(fields["region"].choices) == {"us", "eu"}
    assert fields["region"].required
    assert fields["client_token"].kind == "password" and fields["client_token"].label == "Client token"
    assert fields["passcode"].kind == "password" and fields["passcode"].label == "Pass code"
    assert fields["passcode"].help == "From the app." and not fields["passcode"].required
    assert fields["signing_secrets"].kind == "list" and fields["signing_secrets"].secret
    assert fields["retries"].kind == "number" and fields["retries"].default == 3


def test_the_access_log_never_shows_a_pages_token():
    import logging

    from hub.logs import StripQueryStrings

    def logged(path: str) -> str:
        record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                                   ("127.0.0.1:5000", "POST", path, "1.1", 303), None)
        StripQueryStrings().filter(record)
        return record.getMessage()

    token = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
    assert token not in logged(f"/connect/{token}/twilio/connect")
    assert "/connect/[redacted]/twilio/connect" in logged(f"/connect/{token}/twilio/connect")
    assert token not in logged(f"/connect/{token}?status=connected&provider=twilio")
    assert "/connect/assets/connect.css" in logged("/connect/assets/connect.css")
    session_id = "267b23e3-4355-4909-9b4a-f4e0c574be59"
    assert f"/connect/return/{session_id} " in logged(f"/connect/return/{session_id}?status=connected")


@pytestmark_page
async def test_a_nul_character_is_a_form_error_not_a_500(client, tenant):
    body = await new_session(client, tenant)
    response = await client.post(path_of(body["url"]) + "/twilio/connect",
                                 data=TWILIO_FORM | {"settings.sender": "+1501\x007122661"})
    assert response.status_code == 422
    assert 'aria-invalid="true"' in field(response.text, "twilio-settings-sender")
