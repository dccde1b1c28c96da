"""Google OAuth 2.0 for Drive: ``drive.file`` only, offline access with the consent prompt (so Google issues
a refresh token every time a tenant connects), PKCE S256, client authentication in the form body. The
account is the Drive user (``about.get``); revocation takes only the token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from hub import AccountInfo, OAuth2, ProviderError, ProviderHttp, TokenSet
from hub_google_drive import channels
from hub_google_drive.client import Drive
from hub_google_drive.config import SCOPE, SLUG, Hosts

log = logging.getLogger("hub_google_drive")


class GoogleOAuth2(OAuth2):
    def __init__(self, hosts: Hosts, client_id: str | None, client_secret: str | None) -> None:
        super().__init__(SLUG, authorize_url=hosts.authorize, token_url=hosts.token, revoke_url=hosts.revoke,
                         client_id=client_id, client_secret=client_secret, scopes=(SCOPE,), pkce=True,
                         client_auth="post",
                         authorize_params={"access_type": "offline", "prompt": "consent",
                                           "include_granted_scopes": "true"})
        self.hosts = hosts

    async def account_info(self, http: ProviderHttp, tokens: TokenSet, params: Mapping[str, str]) -> AccountInfo:
        async def send(method, url, **kwargs):
            return await http.request(method, url, provider=SLUG, **kwargs)

        user = (await Drive(self.hosts, send, tokens.access_token).about()).get("user") or {}
        if not user.get("permissionId"):
            raise ProviderError("Google Drive did not say whose Drive this is")
        return AccountInfo(id=user["permissionId"], name=user.get("emailAddress") or user.get("displayName"),
                           metadata={"email": user.get("emailAddress"), "display_name": user.get("displayName")})

    async def revoke(self, http: ProviderHttp, tokens: TokenSet) -> None:
        """Google revokes the whole grant from either token; no client authentication."""
        response = await http.request("POST", self.hosts.revoke, provider=SLUG,
                                      data={"token": tokens.refresh_token or tokens.access_token})
        if response.status_code >= 400:
            raise ProviderError(f"Google refused to revoke the token (HTTP {response.status_code})")

    async def on_disconnect(self, ctx) -> None:
        """Before the tokens go: stop the push channel, so Google stops calling a connection that is gone."""
        await asyncio.wait_for(channels.stop_current(self.hosts, ctx), timeout=30)
