"""The connections API: API-key connect, settings, disconnect, actions, providers, request limits."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.db.models import Connection
from tests.flows import connect

GOOD_KEY = {"credentials": {"api_key": "tk_live_valid_key_123456"}}


async def count(hub) -> int:
    async with hub.session() as session:
        return await session.scalar(select(func.count()).select_from(Connection))


async def test_api_key_connect_checks_with_the_provider_before_saving(client, hub, tenant, provider):
    bad = await client.put("/v1/connections/testkeys", json={"credentials": {"api_key": "wrong"}},
                           headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "credentials_rejected"
    assert await count(hub) == 0

    malformed = await client.put("/v1/connections/testkeys", json={"credentials": {"key": 1}}, headers=tenant.headers)
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_credentials"

    good = await client.put("/v1/connections/testkeys", json=GOOD_KEY, headers=tenant.headers)
    assert good.status_code == 200, good.text
    body = good.json()
    assert body["status"] == "connected" and body["external_account_id"] == "key-account-7"
    assert provider.state.requests.count("GET /api/check-key") == 2  # the bad key and the good one


async def test_api_key_connect_to_an_unreachable_provider_is_502_and_stores_nothing(client, hub, tenant, provider):
    provider.__exit__()  # the provider goes away
    response = await client.put("/v1/connections/testkeys", json=GOOD_KEY, headers=tenant.headers)
    assert response.status_code == 502 and response.json()["error"]["code"] == "provider_error"
    assert await count(hub) == 0


async def test_put_credentials_to_an_oauth_provider_is_refused(client, tenant):
    response = await client.put("/v1/connections/testoauth", json=GOOD_KEY, headers=tenant.headers)
    assert response.status_code == 409 and response.json()["error"]["code"] == "wrong_auth_kind"


async def test_patch_validates_settings_against_the_providers_schema(client, tenant):
    await connect(client, tenant)
    ok = await client.patch("/v1/connections/testoauth", json={"settings": {"poll_minutes": 5}}, headers=tenant.headers)
    assert ok.status_code == 200 and ok.json()["settings"] == {"send_updates": "all", "poll_minutes": 5}

    for bad in ({"poll_minutes": "soon"}, {"unknown": 1}, {"send_updates": "some"}):
        response = await client.patch("/v1/connections/testoauth", json={"settings": bad}, headers=tenant.headers)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "invalid_settings"
    unchanged = (await client.get("/v1/connections/testoauth", headers=tenant.headers)).json()
    assert unchanged["settings"] == {"send_updates": "all", "poll_minutes": 5}

    off = await client.patch("/v1/connections/testoauth", json={"sync_enabled": False}, headers=tenant.headers)
    assert off.json()["sync_enabled"] is False


async def test_disconnect_revokes_wipes_secrets_and_keeps_the_row(client, hub, tenant, provider):
    await connect(client, tenant)
    issued_refresh = next(iter(provider.state.refresh_tokens))

    response = await client.delete("/v1/connections/testoauth", headers=tenant.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["revoked_at_provider"] is True and body["connection"]["status"] == "disconnected"
    assert provider.state.revoked == [issued_refresh]
    async with hub.session() as session:
        row = (await session.scalars(select(Connection))).one()
    assert row.access_token_enc is None and row.refresh_token_enc is None and row.credentials_enc is None
    action = await client.post("/v1/connections/testoauth/actions/echo", json={"text": "x"}, headers=tenant.headers)
    assert action.status_code == 409 and action.json()["error"]["code"] == "not_connected"


async def test_disconnect_still_wipes_secrets_when_revocation_fails(client, hub, tenant, provider):
    await connect(client, tenant)
    provider.__exit__()
    response = await client.delete("/v1/connections/testoauth", headers=tenant.headers)
    assert response.status_code == 200 and response.json()["revoked_at_provider"] is False
    async with hub.session() as session:
        assert (await session.scalars(select(Connection))).one().access_token_enc is None


async def test_action_runs_against_the_provider_with_a_valid_token(client, tenant):
    await connect(client, tenant)
    response = await client.post("/v1/connections/testoauth/actions/echo", json={"text": "hello"},
                                 headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"echo": "hello", "account": "acct-42"}

    invalid = await client.post("/v1/connections/testoauth/actions/echo", json={"txt": 1}, headers=tenant.headers)
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "invalid_action_input"
    missing = await client.post("/v1/connections/testoauth/actions/nope", json={}, headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "action_not_found"


async def test_providers_describe_auth_settings_actions_and_syncs(client):
    body = (await client.get("/v1/providers")).json()
    assert [p["slug"] for p in body] == ["testkeys", "testoauth"]
    keys, oauth = body
    assert keys["auth_kind"] == "api_key" and keys["credential_fields_schema"]["$ref"]
    assert oauth["oauth_configured"] is True
    assert oauth["rate_limits"] == [{"requests": 10, "per_seconds": 1.0, "concurrency": 3, "scope": None}]
    assert oauth["actions"][0]["name"] == "echo" and oauth["actions"][0]["input_schema"]
    assert {(s["entity"], s["direction"]) for s in oauth["syncs"]} == {("client", "outbound"), ("payment", "inbound")}
    assert oauth["settings_schema"]
    assert oauth["plugin"] == keys["plugin"] == {
        "name": "testprovider", "distribution": None, "version": None,  # loaded from the source tree
        "hooks": ["hub_register_providers", "hub_register_auth", "hub_register_syncs",
                  "hub_register_webhook_verifiers", "hub_register_entity_mappers", "hub_register_actions"]}
    missing = await client.get("/v1/providers/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "provider_not_found"


async def test_body_over_the_limit_is_413_in_the_error_shape(client, tenant):
    response = await client.post("/v1/connections/testoauth/actions/echo", content=b"{" + b" " * 1_100_000 + b"}",
                                 headers={**tenant.headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


async def test_malformed_json_and_wrong_types_are_400_in_the_error_shape(client, tenant):
    broken = await client.post("/v1/connections/testoauth/authorize", content=b"{nope",
                               headers={**tenant.headers, "Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_request"
    typed = await client.post("/v1/connections/testoauth/authorize", json={"return_url": 5}, headers=tenant.headers)
    assert typed.status_code == 400 and typed.json()["error"]["code"] == "invalid_request"


async def test_tenant_timezone_setting(client, tenant):
    bad = await client.patch("/v1/tenant", json={"settings": {"timezone": "Mars/Olympus"}}, headers=tenant.headers)
    assert bad.status_code == 422
    good = await client.patch("/v1/tenant", json={"settings": {"timezone": "America/Denver"}}, headers=tenant.headers)
    assert good.json()["settings"] == {"timezone": "America/Denver"}


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_a_plugin_keeps_what_it_set_up_in_the_connections_metadata(client, hub, tenant):
    from hub.connections import connection_context, get_connection

    await connect(client, tenant)
    async with hub.session(tenant.id) as session:
        ctx = await connection_context(hub, session, await get_connection(session, tenant.id, "testoauth"))
    before = dict(ctx.metadata)

    kept = await ctx.save_metadata({"channel": {"id": "ch-1", "expires_at": "2026-12-08T00:00:00+00:00"}})
    assert kept == before | {"channel": {"id": "ch-1", "expires_at": "2026-12-08T00:00:00+00:00"}} == ctx.metadata
    shown = (await client.get("/v1/connections/testoauth", headers=tenant.headers)).json()["metadata"]
    assert shown == kept

    assert await ctx.save_metadata({"channel": None}) == before
    assert (await client.get("/v1/connections/testoauth", headers=tenant.headers)).json()["metadata"] == before


async def test_disconnect_lets_the_plugin_clean_up_at_the_provider_before_the_grant_is_revoked(
        client, hub, tenant, provider, monkeypatch):
    await connect(client, tenant)
    strategy = hub.registry.auth["testoauth"]
    seen = []

    async def on_disconnect(ctx):
        seen.append((ctx.connection_id, bool(await ctx.access_token()), list(provider.state.revoked)))
        raise RuntimeError("the provider had already dropped the channel")

    monkeypatch.setattr(strategy, "on_disconnect", on_disconnect)
    response = await client.delete("/v1/connections/testoauth", headers=tenant.headers)

    assert response.status_code == 200 and response.json()["revoked_at_provider"] is True  # a failure goes on
    [(connection_id, had_token, revoked_then)] = seen
    assert str(connection_id) == response.json()["connection"]["id"] and had_token and revoked_then == []
    assert len(provider.state.revoked) == 1
    assert (await client.delete("/v1/connections/testoauth", headers=tenant.headers)).status_code == 200
    assert len(seen) == 1  # not again for a connection that is no longer connected
