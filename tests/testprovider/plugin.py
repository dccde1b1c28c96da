"""The test provider plugin: uses only the public contract from ``hub``, like a third party would.

Two providers: ``testoauth`` (OAuth2 with PKCE, account info from the API, an action) and ``testkeys``
(API-key credentials checked against the provider). Both point at ``TESTPROVIDER_URL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import msgspec

from hub import (
    AccountInfo,
    Action,
    ApiKeyAuth,
    CredentialsRejected,
    EntityMapper,
    InboundRecord,
    InboundSync,
    NewEvent,
    OAuth2,
    OutboundSync,
    Page,
    ProviderError,
    ProviderInfo,
    PushResult,
    RateLimit,
    hookimpl,
)
from tests.testprovider.webhooks import keys_verifier, oauth_verifier

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-client-secret-do-not-log"


class OAuthSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    send_updates: str = "all"
    poll_minutes: int = 15

    def __post_init__(self) -> None:
        if self.send_updates not in ("all", "none"):
            raise ValueError("send_updates is 'all' or 'none'")


class KeyFields(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str


class EchoIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class EchoOut(msgspec.Struct):
    echo: str
    account: str | None


class TestOAuth2(OAuth2):
    def __init__(self, base: str, client_secret: str = CLIENT_SECRET) -> None:
        super().__init__(
            "testoauth", authorize_url=f"{base}/authorize", token_url=f"{base}/token",
            revoke_url=f"{base}/revoke", client_id=CLIENT_ID, client_secret=client_secret, scopes=("read", "write"),
        )
        self.base = base

    async def account_info(self, http, tokens, params: Mapping[str, str]) -> AccountInfo:
        response = await http.request("GET", f"{self.base}/api/me", provider="testoauth",
                                      headers={"Authorization": f"Bearer {tokens.access_token}"})
        if response.status_code != 200:
            raise ProviderError("account lookup failed")
        body = response.json()
        return AccountInfo(id=body["account_id"], name=body["name"], metadata={"via": params.get("account")})


def _base(config) -> str:
    return config.environ.get("TESTPROVIDER_URL", "http://127.0.0.1:9")


@hookimpl
def hub_register_providers(register):
    register(ProviderInfo(
        slug="testoauth", title="Test OAuth", category="testing", auth_kind="oauth2", scopes=("read", "write"),
        settings=OAuthSettings, webhooks=True, rate_limits=(RateLimit(10, 1.0, concurrency=3),),
        record_lists={"payments": "payment"},
        description="The core's test provider: OAuth2 with PKCE, clients out, payments in.",
        docs_url="https://github.com/integration-hub/hub/tree/main/tests/testprovider",
    ))
    register(ProviderInfo(slug="testkeys", title="Test Keys", category="testing", auth_kind="api_key",
                          webhooks=True))


@hookimpl
def hub_register_auth(register, config):
    base = _base(config)
    register(TestOAuth2(base, config.environ.get("TESTOAUTH_CLIENT_SECRET", CLIENT_SECRET)))

    async def check(http, fields: KeyFields) -> AccountInfo:
        response = await http.request("GET", f"{base}/api/check-key", provider="testkeys",
                                      headers={"X-Api-Key": fields.api_key})
        if response.status_code == 401:
            raise CredentialsRejected("the API key was not accepted")
        if response.status_code != 200:
            raise ProviderError(f"credential check failed (HTTP {response.status_code})")
        body = response.json()
        return AccountInfo(id=body["account_id"], name=body["name"])

    register(ApiKeyAuth("testkeys", fields=KeyFields, check=check))


@hookimpl
def hub_register_actions(register, config):
    base = _base(config)

    async def echo(ctx, data: EchoIn) -> EchoOut:
        token = await ctx.access_token()
        response = await ctx.http.request("GET", f"{base}/api/echo", params={"text": data.text},
                                          headers={"Authorization": f"Bearer {token}"}, provider="testoauth")
        if response.status_code != 200:
            raise ProviderError(f"echo failed (HTTP {response.status_code})")
        return EchoOut(echo=response.json()["echo"], account=ctx.account_id)

    register(Action(provider="testoauth", name="echo", input=EchoIn, output=EchoOut, handler=echo,
                    description="Echo text back through the provider's API."))


@hookimpl
def hub_register_entity_mappers(register):
    register(EntityMapper(provider="testoauth", entity="client", to_provider=customer_payload,
                          from_provider=lambda payload, ctx: {"company_name": payload["DisplayName"]}))


def customer_payload(client, ctx) -> dict:
    payload = {"DisplayName": client.display_name}
    if client.email:
        payload["PrimaryEmailAddr"] = {"Address": client.email}
    return payload


@hookimpl
def hub_register_syncs(register, config):
    base = _base(config)

    async def push(ctx, items):
        """One batch request for up to 30 clients; the idempotency key goes as each item's requestid."""
        token = await ctx.access_token()
        body = {"BatchItemRequest": [
            {"bId": str(n), "requestid": item.idempotency_key,
             "operation": "update" if item.external_id else "create", "id": item.external_id,
             "customer": ctx.to_provider("client", item.record)
             | ({"SyncToken": item.metadata.get("SyncToken")} if item.external_id else {})}
            for n, item in enumerate(items)
        ]}
        response = await ctx.http.request("POST", f"{base}/api/customers/batch", json=body, idempotent=True,
                                          headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            raise ProviderError(f"batch failed (HTTP {response.status_code})")
        results = {r["bId"]: r for r in response.json()["BatchItemResponse"]}
        out = []
        for n, item in enumerate(items):
            result = results.get(str(n), {})
            if "Customer" in result:
                out.append(PushResult(internal_id=item.internal_id, external_id=result["Customer"]["Id"],
                                      outcome="updated" if item.external_id else "created",
                                      metadata={"SyncToken": result["Customer"]["SyncToken"]}))
            else:
                error = result.get("Fault", {}).get("Error", [{}])[0].get("Message", "no answer")
                out.append(PushResult(internal_id=item.internal_id, outcome="failed", error=error))
        return out

    async def pull(ctx, cursor):
        token = await ctx.access_token()
        response = await ctx.http.request("GET", f"{base}/api/payments", params={"after": cursor or "0", "limit": 100},
                                          headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            raise ProviderError(f"payments read failed (HTTP {response.status_code})")
        body = response.json()
        records = [
            InboundRecord(external_id=p["id"], data={"id": p["id"], "amount": p["amount"], "currency": "USD",
                                                    "payment_date": p.get("date", "2026-11-01"),
                                                    "invoice_id": p.get("invoice_id")},
                          new_events=[NewEvent(type="payment.received", data={"payment_id": p["id"],
                                                                                "amount": p["amount"]})])
            for p in body["data"]
        ]
        return Page(records=records, cursor=body["next"], deleted=body["deleted"], has_more=body["has_more"])

    register(OutboundSync(provider="testoauth", entity="client", push=push, batch_size=30))
    register(InboundSync(provider="testoauth", entity="payment", pull=pull, every=timedelta(minutes=15)))


@hookimpl
def hub_register_webhook_verifiers(register, config):
    register(oauth_verifier(config))
    register(keys_verifier(KeyFields))
