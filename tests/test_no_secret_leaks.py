"""No token or secret appears in any API response or captured log line, on success or failure paths."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from hub.db.models import Connection
from hub.logs import QUIET_LOGGERS, quiet_third_party_loggers
from tests.conftest import ADMIN_TOKEN, ENCRYPTION_KEY
from tests.flows import authorize, callback, connect, consent
from tests.testprovider.server import API_KEY, CLIENT_SECRET


async def test_no_secret_in_responses_or_logs(client, hub, tenant, provider, caplog):
    responses: list[str] = []

    async def call(method: str, url: str, **kwargs) -> None:
        response = await client.request(method, url, headers=tenant.headers, **kwargs)
        responses.append(f"{response.status_code} {response.headers} {response.text}")

    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    quiet_third_party_loggers()  # the hub's own logging configuration, everything else at DEBUG
    caplog.set_level(logging.DEBUG)
    try:
        await _exercise(client, hub, tenant, provider, call)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    secrets = {
        *provider.state.issued, CLIENT_SECRET, API_KEY, ADMIN_TOKEN, ENCRYPTION_KEY, tenant.key,
    }
    assert len(provider.state.issued) == 6  # 2 codes; access + refresh tokens from the connect and one refresh
    haystacks = responses + [f"{r.getMessage()} {r.__dict__}" for r in caplog.records] + [caplog.text]
    for secret in secrets:
        for text in haystacks:
            assert secret not in text, f"a secret leaked into: {text[:200]}"
    assert responses and caplog.records


async def _exercise(client, hub, tenant, provider, call) -> None:
    await connect(client, tenant)
    await call("GET", "/v1/connections")
    await call("GET", "/v1/connections/testoauth")
    await call("POST", "/v1/connections/testoauth/actions/echo", json={"text": "hi"})
    async with hub.session() as session:  # force a refresh, then use the new token
        await session.execute(update(Connection).values(token_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    await call("POST", "/v1/connections/testoauth/actions/echo", json={"text": "again"})
    await call("PUT", "/v1/connections/testkeys", json={"credentials": {"api_key": API_KEY}})
    await call("PUT", "/v1/connections/testkeys", json={"credentials": {"api_key": API_KEY + "-wrong"}})
    await call("GET", "/v1/connections/testkeys")
    await call("PATCH", "/v1/connections/testoauth", json={"settings": {"poll_minutes": 3}})
    provider.state.fail_token_with = 500  # a failing exchange must not echo the code or verifier either
    location = consent(await authorize(client, tenant))
    await callback(client, location)
    provider.state.fail_token_with = None
    provider.state.refresh_tokens.clear()  # invalid_grant on the next refresh
    async with hub.session() as session:
        await session.execute(update(Connection).values(token_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    await call("POST", "/v1/connections/testoauth/actions/echo", json={"text": "fails"})
    await call("DELETE", "/v1/connections/testkeys")
    await call("DELETE", "/v1/connections/testoauth")
    await call("GET", "/v1/admin/tenants")  # a tenant key on an admin route


def test_access_log_lines_carry_no_query_string(live_hub, caplog):
    """The OAuth callback's query holds the authorization code: the access log keeps only the path."""
    import httpx

    quiet_third_party_loggers()
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        httpx.get(f"{live_hub.url}/v1/oauth/callback?state=state-secret-1&code=code-secret-2")
        httpx.get(f"{live_hub.url}/healthz?token=query-secret-3")
        httpx.post(f"{live_hub.url}/v1/webhooks/nosuch?token=query-secret-4", content=b"{}")
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/v1/oauth/callback" in line for line in lines) and any("/healthz" in line for line in lines)
    assert any('"POST /v1/webhooks/nosuch HTTP' in line for line in lines), lines  # the whole path, as requested
    assert not any("secret" in line for line in lines), lines
