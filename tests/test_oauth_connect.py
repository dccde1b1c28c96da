"""The OAuth2 connect flow end to end against a local OAuth server over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select, update

from hub.db.models import Connection, OAuthState
from tests.flows import authorize, callback, connect, consent


async def connection_count(hub) -> int:
    async with hub.session() as session:
        return await session.scalar(select(func.count()).select_from(Connection))


async def test_connect_stores_encrypted_tokens_and_account(client, hub, tenant, provider):
    url = await authorize(client, tenant)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/v1/oauth/callback"]

    outcome = await callback(client, consent(url))

    assert outcome["status"] == ["connected"] and outcome["provider"] == ["testoauth"]
    assert outcome["tab"] == ["connections"]  # the return URL's own query survives
    response = await client.get("/v1/connections/testoauth", headers=tenant.headers)
    body = response.json()
    assert body["status"] == "connected"
    assert body["external_account_id"] == "acct-42"
    assert body["external_account_name"] == "Test Account Ltd"
    assert body["metadata"] == {"via": "acct-42"}  # extra callback parameters reached the plugin
    async with hub.session() as session:
        conn = (await session.scalars(select(Connection))).one()
    issued = next(iter(provider.state.access_tokens))
    assert conn.access_token_enc and issued not in conn.access_token_enc
    assert hub.vault.decrypt(conn.access_token_enc, conn.tenant_id, conn.id, "access_token") == issued


async def test_denied_consent_stores_nothing(client, hub, tenant):
    outcome = await callback(client, consent(await authorize(client, tenant), decision="deny"))
    assert outcome["status"] == ["error"] and outcome["error"] == ["access_denied"]
    assert await connection_count(hub) == 0


async def test_replayed_state_is_refused(client, hub, tenant, provider):
    location = consent(await authorize(client, tenant))
    assert (await callback(client, location))["status"] == ["connected"]
    calls = provider.state.token_calls

    replay = await callback(client, location)

    assert replay["status"] == ["error"] and replay["error"] == ["state_used"]
    assert provider.state.token_calls == calls  # the replay never reached the provider


async def test_expired_state_is_refused(client, hub, tenant, provider):
    location = consent(await authorize(client, tenant))
    async with hub.session() as session:
        await session.execute(update(OAuthState).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    outcome = await callback(client, location)

    assert outcome["error"] == ["state_expired"]
    assert provider.state.token_calls == 0
    assert await connection_count(hub) == 0


async def test_provider_500_on_exchange_stores_nothing(client, hub, tenant, provider):
    location = consent(await authorize(client, tenant))
    provider.state.fail_token_with = 500

    outcome = await callback(client, location)

    assert outcome["status"] == ["error"] and outcome["error"] == ["provider_error"]
    assert await connection_count(hub) == 0


async def test_callback_naming_another_provider_is_refused(client, hub, tenant):
    location = consent(await authorize(client, tenant))
    outcome = await callback(client, location + "&provider=testkeys")
    assert outcome["error"] == ["wrong_provider"]
    assert await connection_count(hub) == 0


async def test_unknown_state_is_a_clear_400(client):
    response = await client.get("/v1/oauth/callback?state=nonsense&code=x")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_state"


async def test_authorize_refuses_api_key_provider_and_bad_return_url(client, tenant):
    response = await client.post("/v1/connections/testkeys/authorize", json={"return_url": "https://x.test/"},
                                 headers=tenant.headers)
    assert response.status_code == 409 and response.json()["error"]["code"] == "wrong_auth_kind"
    response = await client.post("/v1/connections/testoauth/authorize", json={"return_url": "javascript:alert(1)"},
                                 headers=tenant.headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_return_url"


async def test_reconnect_keeps_the_same_connection_row(client, hub, tenant):
    await connect(client, tenant)
    first = (await client.get("/v1/connections/testoauth", headers=tenant.headers)).json()["id"]
    await client.delete("/v1/connections/testoauth", headers=tenant.headers)
    await connect(client, tenant)
    again = (await client.get("/v1/connections/testoauth", headers=tenant.headers)).json()
    assert again["id"] == first and again["status"] == "connected"
