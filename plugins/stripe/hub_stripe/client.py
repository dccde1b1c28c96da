"""The official ``stripe`` SDK, wired to the hub: its HTTP goes through the hub's client (``ctx.http``:
per-connection throttle, retries with Retry-After, a log line without query, headers or body), its own
retries are off, and its base address is the operator's (``STRIPE_BASE_URL``, the simulator in tests).

Two ways a tenant connects (``Credentials``):

- **own key**: the tenant's secret key (checked against Stripe before it is saved) and the signing secrets
  of the webhook endpoint it points at the hub (``/v1/webhooks/stripe/{connection_id}``);
- **platform**: the operator's platform key (``STRIPE_SECRET_KEY``) acts on a connected account created
  for the tenant; every request carries ``Stripe-Account``. The connection stays ``pending`` until Stripe
  reports the account can take charges (``account.updated``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import msgspec
import stripe

from hub import (
    AccountInfo,
    Conflict,
    ConnectionContext,
    CredentialsRejected,
    HubError,
    NotFound,
    ProviderError,
    ValidationFailed,
)

SLUG = "stripe"
DEFAULT_BASE_URL = "https://api.stripe.com"

SecretKey = Annotated[str, msgspec.Meta(pattern=r"^(sk|rk)_(test|live)_[A-Za-z0-9]{8,247}$")]
WebhookSecret = Annotated[str, msgspec.Meta(pattern=r"^whsec_[A-Za-z0-9+/=]{8,200}$")]


class Credentials(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Either ``secret_key`` (own key) or ``email`` and ``company_name`` (onboard through the platform)."""

    secret_key: SecretKey | None = None
    webhook_secrets: Annotated[list[WebhookSecret], msgspec.Meta(max_length=5)] = []
    """Own key: the signing secrets of the endpoint pointed at the hub; two while Stripe rotates it."""
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)] | None = None
    company_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")] = "US"

    def __post_init__(self) -> None:
        if self.secret_key is None and not (self.email and self.company_name):
            raise ValueError("give secret_key (your own Stripe account) or email and company_name (onboarding "
                             "through the platform)")
        if self.secret_key is not None and (self.email or self.company_name):
            raise ValueError("secret_key connects your own Stripe account: leave email and company_name out")

    @property
    def platform(self) -> bool:
        return self.secret_key is None


@dataclass(frozen=True)
class StripeConfig:
    base_url: str
    platform_key: str | None
    connect_webhook_secrets: tuple[str, ...]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> StripeConfig:
        secrets = tuple(s.strip() for s in environ.get("STRIPE_WEBHOOK_SECRET", "").split(",") if s.strip())
        return cls(base_url=(environ.get("STRIPE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
                   platform_key=environ.get("STRIPE_SECRET_KEY") or None, connect_webhook_secrets=secrets)


class HubHttpClient(stripe.HTTPClient):
    """The SDK's transport, onto the hub's HTTP client. Only the async path exists: the hub never blocks
    a worker on Stripe. Transport errors come back as the SDK's ``APIConnectionError`` without retry (the
    hub's client has retried already, keeping the request's ``Idempotency-Key``)."""

    name = "hub"

    def __init__(self, http: Any) -> None:
        super().__init__()
        self._http = http

    async def request_async(self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
                            ) -> tuple[bytes, int, Mapping[str, str]]:
        content = post_data.encode() if isinstance(post_data, str) else post_data
        try:
            response = await self._http.request(method.upper(), url, provider=SLUG, headers=dict(headers),
                                                content=content)
        except httpx.HTTPError as exc:
            raise stripe.APIConnectionError(f"Stripe could not be reached ({type(exc).__name__})",
                                            should_retry=False) from None
        return response.content, response.status_code, response.headers

    def request(self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None):
        raise NotImplementedError("the hub calls Stripe asynchronously only")

    async def request_stream_async(self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None):
        raise NotImplementedError("the hub reads no streams from Stripe")

    async def close_async(self) -> None:  # the hub owns the connection pool
        return None

    def close(self) -> None:
        return None


def sdk(config: StripeConfig, http: Any, api_key: str, account: str | None = None) -> stripe.StripeClient:
    base = config.base_url
    return stripe.StripeClient(
        api_key, stripe_account=account, http_client=HubHttpClient(http), max_network_retries=0,
        base_addresses={"api": base, "connect": base, "files": base, "meter_events": base},
    )


def connection_sdk(config: StripeConfig, ctx: ConnectionContext) -> stripe.StripeClient:
    """The SDK for one tenant's connection: its own key, or the platform key on its connected account."""
    credentials = ctx.credentials(Credentials)
    if credentials.platform:
        if not config.platform_key:
            raise Conflict("the operator has not configured the Stripe platform key (STRIPE_SECRET_KEY)",
                           code="provider_not_configured")
        return sdk(config, ctx.http, config.platform_key, ctx.account_id)
    return sdk(config, ctx.http, credentials.secret_key or "")


def idempotency_key(ctx: ConnectionContext, operation: str, params: Mapping[str, Any]) -> str:
    """A key derived from the hub request's identity: the connection, the operation and its exact
    parameters. The same request repeated (a retried job, a client retrying its call) sends the same key,
    so Stripe answers with the first result instead of doing it twice."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(f"{ctx.connection_id}:{operation}:{canonical}".encode()).hexdigest()[:40]
    return f"hub-{operation}-{digest}"


def translate(exc: stripe.StripeError) -> HubError:
    """Stripe's error as the hub's, with Stripe's own message (which never holds a secret key except
    masked in authentication errors, which are not passed on)."""
    status = exc.http_status or 502
    code = exc.code or None
    message = _clean(exc.user_message or str(exc))
    if isinstance(exc, stripe.CardError):
        return HubError(message, code=code or "card_declined", status=402,
                        details={"decline_code": getattr(exc.error, "decline_code", None) if exc.error else None})
    if isinstance(exc, stripe.AuthenticationError):
        return CredentialsRejected("Stripe did not accept the connection's API key")
    if isinstance(exc, stripe.PermissionError):
        return CredentialsRejected("the API key may not do this on the Stripe account", code="stripe_permission")
    if isinstance(exc, stripe.IdempotencyError):
        return Conflict(message, code="idempotency_error")
    if isinstance(exc, stripe.InvalidRequestError):
        if status == 404:
            return NotFound(message, code=code or "resource_missing")
        return ValidationFailed(message, code=f"stripe_{code}" if code else "stripe_invalid_request",
                                details={"param": exc.param} if getattr(exc, "param", None) else None)
    if isinstance(exc, stripe.RateLimitError):
        return ProviderError("Stripe is rate limiting this account; try again shortly", code="rate_limited",
                             status=503)
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderError("Stripe could not be reached")
    return ProviderError(f"Stripe failed (HTTP {status})")


def _clean(message: str) -> str:
    return re.sub(r"\b(sk|rk|pk)_(test|live)_[A-Za-z0-9*]+", "[key]", message)


async def check_own_key(config: StripeConfig, http: Any, credentials: Credentials) -> AccountInfo:
    try:
        account = await sdk(config, http, credentials.secret_key or "").v1.accounts.retrieve_current_async()
    except stripe.AuthenticationError:
        raise CredentialsRejected("Stripe did not accept the secret key") from None
    except stripe.StripeError as exc:
        raise translate(exc) from None
    return AccountInfo(id=account.id, name=_account_name(account), metadata={"mode": "own_key"})


async def create_connected_account(config: StripeConfig, http: Any, credentials: Credentials, tenant_id: Any
                                   ) -> AccountInfo:
    """Platform mode: a Standard connected account for the tenant, created once per tenant (the request's
    idempotency key is the tenant's). The connection waits, ``pending``, for Stripe to enable charges."""
    if not config.platform_key:
        raise Conflict("the operator has not configured the Stripe platform key (STRIPE_SECRET_KEY)",
                       code="provider_not_configured")
    params = {"type": "standard", "email": credentials.email, "country": credentials.country,
              "business_profile": {"name": credentials.company_name}, "metadata": {"tenant_id": str(tenant_id)}}
    key = "hub-connect-" + hashlib.sha256(
        json.dumps([str(tenant_id), params], sort_keys=True).encode()).hexdigest()[:40]
    try:
        account = await sdk(config, http, config.platform_key).v1.accounts.create_async(
            params=params, options={"idempotency_key": key})
    except stripe.AuthenticationError:
        raise ProviderError("Stripe did not accept the platform key") from None
    except stripe.StripeError as exc:
        raise translate(exc) from None
    return account_info(account)


def plain(obj: Any) -> dict[str, Any]:
    """A Stripe object (or an event's JSON) as plain dicts and lists."""
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


def account_info(account: Any) -> AccountInfo:
    """A connected account as the connection sees it: pending until Stripe enables charges."""
    account = plain(account)
    enabled = bool(account.get("charges_enabled"))
    return AccountInfo(id=account["id"], name=_account_name(account), pending=not enabled,
                       metadata={"mode": "platform", "charges_enabled": enabled,
                                 "details_submitted": bool(account.get("details_submitted"))})


def _account_name(account: Any) -> str | None:
    account = plain(account)
    profile = account.get("business_profile") or {}
    settings = (account.get("settings") or {}).get("dashboard") or {}
    return profile.get("name") or settings.get("display_name") or account.get("email")
