"""Google OAuth 2.0 for web server apps: offline access with the consent prompt (so Google issues a refresh
token every time a tenant connects), PKCE (S256), the client authenticated in the form body as Google shows
it; the account named by its email through OpenID Connect's userinfo. Google's refresh tokens do not rotate;
revoking one ends the grant. Disconnecting stops the connection's push channel first."""

from __future__ import annotations

from collections.abc import Mapping

from hub import AccountInfo, ConnectionContext, OAuth2, ProviderError, ProviderHttp, TokenSet
from hub_google_calendar import channels
from hub_google_calendar.client import CalendarApi
from hub_google_calendar.config import SLUG, Google


class GoogleOAuth2(OAuth2):
    def __init__(self, google: Google) -> None:
        super().__init__(SLUG, authorize_url=google.authorize, token_url=google.token, revoke_url=google.revoke,
                         client_id=google.client_id, client_secret=google.client_secret, scopes=google.scopes,
                         pkce=True, client_auth="post",
                         authorize_params={"access_type": "offline", "prompt": "consent",
                                           "include_granted_scopes": "true"})
        self.google = google

    async def account_info(self, http: ProviderHttp, tokens: TokenSet, params: Mapping[str, str]) -> AccountInfo:
        response = await http.request("GET", self.google.userinfo, provider=SLUG,
                                      headers={"Authorization": f"Bearer {tokens.access_token}"})
        try:
            info = response.json()
        except ValueError:
            info = None
        if response.status_code != 200 or not isinstance(info, dict) or not info.get("sub"):
            raise ProviderError(f"Google did not say whose account this is (HTTP {response.status_code})")
        if not info.get("email"):
            raise ProviderError("Google gave no email address for the account: the grant lacks the email scope")
        return AccountInfo(id=str(info["sub"]), name=str(info["email"]))

    async def on_disconnect(self, ctx: ConnectionContext) -> None:
        await channels.stop(ctx, CalendarApi(ctx, self.google))
