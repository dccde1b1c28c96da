"""Intuit OAuth2: the company (``realmId``) comes with the callback and its name from CompanyInfo; refresh
tokens rotate on every refresh (the core persists the new one in the refresh's transaction); revocation
takes a JSON body, not the RFC 7009 form."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from hub import AccountInfo, OAuth2, ProviderError, ProviderHttp, TokenSet
from hub_quickbooks.client import fault_errors, fault_text
from hub_quickbooks.config import MINOR_VERSION, SCOPE, SLUG, Hosts


class IntuitOAuth2(OAuth2):
    def __init__(self, hosts: Hosts, client_id: str | None, client_secret: str | None) -> None:
        super().__init__(SLUG, authorize_url=hosts.authorize, token_url=hosts.token, revoke_url=hosts.revoke,
                         client_id=client_id, client_secret=client_secret, scopes=(SCOPE,), pkce=False,
                         client_auth="basic")
        self.hosts = hosts

    async def account_info(self, http: ProviderHttp, tokens: TokenSet, params: Mapping[str, str]) -> AccountInfo:
        realm = params.get("realmId")
        if not realm or not realm.isdigit():
            raise ProviderError("Intuit's callback carried no realmId (company id)")
        response = await http.request(
            "GET", f"{self.hosts.api}/v3/company/{realm}/companyinfo/{realm}", provider=SLUG,
            params={"minorversion": MINOR_VERSION},
            headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"},
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or "CompanyInfo" not in body:
            raise ProviderError(f"QuickBooks company lookup failed (HTTP {response.status_code}): "
                                f"{fault_text(fault_errors(body))}")
        info = body["CompanyInfo"]
        return AccountInfo(id=realm, name=info.get("CompanyName"), metadata={"country": info.get("Country")})

    async def revoke(self, http: ProviderHttp, tokens: TokenSet) -> None:
        """Revoking the refresh token ends the whole grant (Intuit takes ``{"token": ...}`` as JSON)."""
        response = await http.request(
            "POST", self.hosts.revoke, provider=SLUG, json={"token": tokens.refresh_token or tokens.access_token},
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(self.client_id or "", self.client_secret or ""),
        )
        if response.status_code >= 400:
            raise ProviderError(f"Intuit refused to revoke the token (HTTP {response.status_code})")
