"""Auth strategies a plugin registers through ``hub_register_auth``.

``OAuth2`` is a complete RFC 6749 authorization-code client (PKCE S256, client_secret_basic or _post,
refresh, RFC 7009 revocation); most providers only configure it and override ``account_info``.
``ApiKeyAuth`` declares the credential fields and checks them against the provider before they are saved.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import httpx
import msgspec

from hub.errors import CredentialsRejected, ProviderError
from hub.http import ProviderHttp
from hub.types import AccountInfo, TokenSet

if TYPE_CHECKING:
    from hub.context import ConnectionContext


def pkce_pair() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class OAuth2:
    kind = "oauth2"

    def __init__(
        self,
        provider: str,
        *,
        authorize_url: str,
        token_url: str,
        client_id: str | None,
        client_secret: str | None,
        scopes: tuple[str, ...] = (),
        revoke_url: str | None = None,
        pkce: bool = True,
        client_auth: Literal["basic", "post"] = "basic",
        scope_separator: str = " ",
        authorize_params: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.revoke_url = revoke_url
        self.pkce = pkce
        self.client_auth = client_auth
        self.scope_separator = scope_separator
        self.authorize_params = dict(authorize_params or {})

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def authorization_url(
        self, *, state: str, redirect_uri: str, scopes: tuple[str, ...] | None, code_challenge: str | None
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id or "",
            "redirect_uri": redirect_uri,
            "scope": self.scope_separator.join(scopes or self.scopes),
            "state": state,
            **self.authorize_params,
        }
        if code_challenge:
            params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        separator = "&" if "?" in self.authorize_url else "?"
        return f"{self.authorize_url}{separator}{urlencode(params)}"

    async def exchange_code(
        self, http: ProviderHttp, *, code: str, redirect_uri: str, code_verifier: str | None, params: Mapping[str, str]
    ) -> TokenSet:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return await self._token_request(http, form, previous_refresh_token=None)

    async def refresh(self, http: ProviderHttp, refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token_request(http, form, previous_refresh_token=refresh_token)

    async def revoke(self, http: ProviderHttp, tokens: TokenSet) -> None:
        if not self.revoke_url:
            return
        token = tokens.refresh_token or tokens.access_token
        response = await http.request(
            "POST", self.revoke_url, provider=self.provider, **self._client_auth({"token": token})
        )
        if response.status_code >= 400:
            raise ProviderError(f"{self.provider} refused to revoke the token (HTTP {response.status_code})")

    async def on_disconnect(self, ctx: ConnectionContext) -> None:
        """Undo at the provider what the plugin set up for this connection (a push channel, a callback), while
        its grant still works: called when the tenant disconnects, before the grant is revoked. A failure
        is logged and the disconnect goes on."""

    async def account_info(self, http: ProviderHttp, tokens: TokenSet, params: Mapping[str, str]) -> AccountInfo:
        """Who the tokens belong to. Override: the default can only use what the callback carried."""
        account = params.get("account_id") or params.get("realmId")
        if not account:
            raise ProviderError(f"{self.provider}: the plugin does not say how to identify the account")
        return AccountInfo(id=account)

    def _client_auth(self, form: dict[str, str]) -> dict[str, Any]:
        if self.client_auth == "basic":
            return {"data": form, "auth": httpx.BasicAuth(self.client_id or "", self.client_secret or "")}
        return {"data": form | {"client_id": self.client_id or "", "client_secret": self.client_secret or ""}}

    async def _token_request(
        self, http: ProviderHttp, form: dict[str, str], *, previous_refresh_token: str | None
    ) -> TokenSet:
        try:
            response = await http.request(
                "POST", self.token_url, provider=self.provider, headers={"Accept": "application/json"},
                **self._client_auth(form),
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.provider} token endpoint unreachable ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code in (400, 401) and body.get("error") in {
            "invalid_grant", "invalid_client", "unauthorized_client", "access_denied",
        }:
            raise CredentialsRejected(
                f"{self.provider} rejected the grant: {body['error']}", code=str(body["error"])
            )
        if response.status_code >= 400 or "access_token" not in body:
            raise ProviderError(f"{self.provider} token endpoint failed (HTTP {response.status_code})")
        expires_in = body.get("expires_in")
        return TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token") or previous_refresh_token,
            expires_at=(datetime.now(UTC) + timedelta(seconds=int(expires_in))) if expires_in else None,
            token_type=str(body.get("token_type") or "Bearer"),
            scope=body.get("scope"),
        )


CredentialCheck = Callable[[ProviderHttp, Any], Awaitable[AccountInfo]]


class ApiKeyAuth:
    """Credentials the tenant types in. ``fields`` is a msgspec Struct type; ``check`` calls the provider
    with them and returns the account they reach, or raises ``CredentialsRejected``. A ``check`` with a
    ``tenant_id`` parameter is also given the connecting tenant's id (to create a provider account for it,
    with an idempotency key of its own)."""

    kind = "api_key"

    def __init__(
        self,
        provider: str,
        *,
        fields: type[msgspec.Struct],
        check: CredentialCheck,
        revoke: Callable[[ProviderHttp, Any], Awaitable[None]] | None = None,
    ) -> None:
        self.provider = provider
        self.fields = fields
        self.check = check
        self.revoke = revoke
        self._check_takes_tenant = "tenant_id" in inspect.signature(check).parameters

    async def check_credentials(self, http: ProviderHttp, credentials: Any, tenant_id: Any) -> AccountInfo:
        if self._check_takes_tenant:
            return await self.check(http, credentials, tenant_id=tenant_id)
        return await self.check(http, credentials)

    async def on_disconnect(self, ctx: ConnectionContext) -> None:
        """As ``OAuth2.on_disconnect``: undo what the plugin set up for this connection, before revocation."""
