"""``GET /v1/providers``: what is installed and what each provider can do."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get
from litestar.params import FromPath

from hub.api.deps import HubDep
from hub.auth import ApiKeyAuth, OAuth2
from hub.connections import require_provider
from hub.types import ProviderInfo, RateLimit


class ActionOut(msgspec.Struct):
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class SyncOut(msgspec.Struct):
    entity: str
    direction: str


class PluginOut(msgspec.Struct):
    """The plugin that adds a provider: its entry-point name, distribution and version (None when it was
    loaded from no installed distribution), and the hooks it implements."""

    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]


class ProviderOut(msgspec.Struct, kw_only=True):
    slug: str
    title: str
    category: str
    description: str
    auth_kind: str
    oauth_configured: bool | None
    scopes: list[str]
    credential_fields_schema: dict[str, Any] | None
    settings_schema: dict[str, Any] | None
    webhooks: bool
    rate_limits: list[RateLimit]
    syncs: list[SyncOut]
    actions: list[ActionOut]
    docs_url: str | None
    plugin: PluginOut | None


def _schema(t: type | None) -> dict[str, Any] | None:
    return None if t is None else msgspec.json.schema(t)


def provider_out(hub: HubDep, info: ProviderInfo) -> ProviderOut:
    auth = hub.registry.auth.get(info.slug)
    return ProviderOut(
        slug=info.slug, title=info.title, category=info.category, description=info.description,
        auth_kind=info.auth_kind,
        oauth_configured=auth.configured if isinstance(auth, OAuth2) else None,
        scopes=list(auth.scopes if isinstance(auth, OAuth2) and auth.scopes else info.scopes),
        credential_fields_schema=_schema(auth.fields) if isinstance(auth, ApiKeyAuth) else None,
        settings_schema=_schema(info.settings), webhooks=info.webhooks, rate_limits=list(info.rate_limits),
        syncs=[SyncOut(s.entity, s.direction) for s in hub.registry.syncs_for(info.slug)],
        actions=[
            ActionOut(a.name, a.description, msgspec.json.schema(a.input), msgspec.json.schema(a.output))
            for a in hub.registry.actions_for(info.slug)
        ],
        docs_url=info.docs_url,
        plugin=next((PluginOut(p.name, p.distribution, p.version, list(p.hooks))
                     for p in hub.registry.plugins.values() if info.slug in p.providers), None),
    )


@get("/v1/providers", tags=["providers"], summary="Installed providers")
async def list_providers(hub: HubDep) -> list[ProviderOut]:
    return [provider_out(hub, info) for info in sorted(hub.registry.providers.values(), key=lambda i: i.slug)]


@get("/v1/providers/{provider:str}", tags=["providers"], summary="One installed provider")
async def get_provider(hub: HubDep, provider: FromPath[str]) -> ProviderOut:
    return provider_out(hub, require_provider(hub, provider))
