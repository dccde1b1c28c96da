"""A connection whose provider account exists but cannot be used yet (a Stripe connected account still
onboarding): saved ``pending`` by a credential check that sees the tenant, reachable only by the actions
that finish the onboarding, routed its webhooks, and made ``connected`` by a webhook's ``account``."""

from __future__ import annotations

import json
import sys
import types

import msgspec
import pytest

from hub import (
    AccountInfo,
    Action,
    ApiKeyAuth,
    ProviderInfo,
    Unauthorized,
    VerifiedEvent,
    WebhookOutcome,
    WebhookVerifier,
    hookimpl,
)
from hub.testing import run_jobs


class Fields(msgspec.Struct, forbid_unknown_fields=True):
    email: str


class Nothing(msgspec.Struct):
    pass


class Done(msgspec.Struct):
    ok: bool


checked_for: list = []


async def check(http, fields, tenant_id):
    checked_for.append(tenant_id)
    return AccountInfo(id=f"acct-{tenant_id}", name="Onboarding Co", pending=True)


def verify(request, connection):
    if request.headers.get("x-secret") != "s3cret-value":
        raise Unauthorized("bad signature")


def parse(request):
    event = json.loads(request.body)
    return [VerifiedEvent(type=event["type"], payload=event, account_id=event["account"], event_id=event["id"])]


async def handle(ctx, event):
    enabled = event.payload["charges_enabled"]
    return WebhookOutcome(account=AccountInfo(id=event.account_id, name="Onboarded Co", pending=not enabled,
                                              metadata={"charges_enabled": enabled}))


async def done(ctx, data):
    return Done(ok=True)


def _plugin() -> types.ModuleType:
    module = types.ModuleType("pending_plugin")

    @hookimpl
    def hub_register_providers(register):
        register(ProviderInfo(slug="onboard", title="Onboard", category="payments", auth_kind="api_key",
                              webhooks=True))

    @hookimpl
    def hub_register_auth(register):
        register(ApiKeyAuth("onboard", fields=Fields, check=check))

    @hookimpl
    def hub_register_webhook_verifiers(register):
        register(WebhookVerifier(provider="onboard", verify=verify, parse=parse, handle=handle))

    @hookimpl
    def hub_register_actions(register):
        register(Action(provider="onboard", name="link", input=Nothing, output=Done, handler=done, pending_ok=True))
        register(Action(provider="onboard", name="charge", input=Nothing, output=Done, handler=done))

    for fn in (hub_register_providers, hub_register_auth, hub_register_webhook_verifiers, hub_register_actions):
        setattr(module, fn.__name__, fn)
    sys.modules.setdefault(module.__name__, module)
    return module


@pytest.fixture
def hub_plugins():
    return [("pending_plugin", _plugin())]


@pytest.fixture
def hub_environ():
    return {}


async def webhook(client, tenant, *, event_id: str, charges_enabled: bool):
    body = json.dumps({"id": event_id, "type": "account.updated", "account": f"acct-{tenant.id}",
                       "charges_enabled": charges_enabled}).encode()
    return await client.post("/v1/webhooks/onboard", content=body, headers={"x-secret": "s3cret-value"})


async def test_a_pending_account_connects_when_the_provider_says_it_can_be_used(client, hub, tenant):
    put = await client.put("/v1/connections/onboard", json={"credentials": {"email": "a@b.co"}}, headers=tenant.headers)
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "pending" and put.json()["connected_at"] is None
    assert str(checked_for[-1]) == str(tenant.id)  # the check saw the connecting tenant

    refused = await client.post("/v1/connections/onboard/actions/charge", json={}, headers=tenant.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_connected"
    allowed = await client.post("/v1/connections/onboard/actions/link", json={}, headers=tenant.headers)
    assert allowed.status_code == 200, allowed.text

    assert (await webhook(client, tenant, event_id="evt_1", charges_enabled=False)).status_code == 200
    await run_jobs(hub)
    still = (await client.get("/v1/connections/onboard", headers=tenant.headers)).json()
    assert still["status"] == "pending"

    assert (await webhook(client, tenant, event_id="evt_2", charges_enabled=True)).status_code == 200
    await run_jobs(hub)
    now = (await client.get("/v1/connections/onboard", headers=tenant.headers)).json()
    assert now["status"] == "connected" and now["connected_at"] is not None
    assert now["external_account_name"] == "Onboarded Co" and now["metadata"]["charges_enabled"] is True
    ok = await client.post("/v1/connections/onboard/actions/charge", json={}, headers=tenant.headers)
    assert ok.status_code == 200, ok.text


async def test_a_disconnected_connection_is_not_revived_by_a_late_webhook(client, hub, tenant):
    await client.put("/v1/connections/onboard", json={"credentials": {"email": "a@b.co"}}, headers=tenant.headers)
    assert (await client.delete("/v1/connections/onboard", headers=tenant.headers)).status_code == 200
    await webhook(client, tenant, event_id="evt_late", charges_enabled=True)
    await run_jobs(hub)
    assert (await client.get("/v1/connections/onboard", headers=tenant.headers)).json()["status"] == "disconnected"
