"""Data types of the plugin contract (msgspec structs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec

AuthKind = Literal["oauth2", "api_key"]


class RateLimit(msgspec.Struct, frozen=True):
    """``requests`` per ``per_seconds`` for one connection, and at most ``concurrency`` in flight.

    ``scope``: None applies to every request of the connection; a name applies only to the requests a plugin
    makes with that scope (``ctx.http.request(..., scope="batch")``), which also count against every
    unscoped limit (QuickBooks: 500 requests a minute, of which at most 40 batch requests)."""

    requests: int
    per_seconds: float
    concurrency: int | None = None
    scope: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProviderInfo:
    """What a provider is and what it can do. ``slug`` is its identity in URLs, the database and events.

    ``settings`` is a msgspec Struct type: the connection settings a tenant may PATCH. Its JSON schema is
    published in ``GET /v1/providers`` and every PATCH is validated against it.
    """

    slug: str
    title: str
    category: str
    auth_kind: AuthKind
    description: str = ""
    scopes: tuple[str, ...] = ()
    settings: type[msgspec.Struct] | None = None
    webhooks: bool = False
    rate_limits: tuple[RateLimit, ...] = ()
    docs_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class TokenSet(msgspec.Struct, kw_only=True):
    """Tokens from an OAuth2 exchange or refresh. A refresh that returns no refresh token keeps the old one."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    token_type: str = "Bearer"
    scope: str | None = None

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        return f"TokenSet(expires_at={self.expires_at!r}, scope={self.scope!r})"


class AccountInfo(msgspec.Struct, kw_only=True):
    """The provider account a connection reaches: its id (QuickBooks realmId, Stripe account ...) and name."""

    id: str
    name: str | None = None
    metadata: dict[str, Any] = {}
    pending: bool = False
    """The account exists but cannot be used yet (a Stripe connected account still onboarding): the
    connection is saved as ``pending``; webhooks still route to it, and a handler's
    ``WebhookOutcome(account=...)`` with ``pending=False`` makes it ``connected``."""


class HubEvent(msgspec.Struct, kw_only=True):
    """A normalized event for one tenant (``payment.succeeded``, ``esign.envelope.completed`` ...)."""

    id: str
    type: str
    tenant_id: uuid.UUID
    provider: str | None
    data: dict[str, Any]
    occurred_at: datetime
