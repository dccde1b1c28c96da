"""DocuSign OAuth2 (authorization code grant, the integration key and secret as HTTP Basic, PKCE). After the
exchange, ``/oauth/userinfo`` says which accounts the user reaches: the default one becomes the connection's
account, and its ``base_uri`` is where every eSignature call of the connection goes. DocuSign offers no
token revocation endpoint: disconnecting wipes the tokens on the hub's side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hub import AccountInfo, OAuth2, ProviderError, ProviderHttp, TokenSet
from hub_docusign.config import SCOPES, SLUG, DocuSignConfig


def default_account(userinfo: Any) -> dict[str, Any]:
    """The account flagged ``is_default`` (the first, when none is), as DocuSign recommends."""
    accounts = userinfo.get("accounts") if isinstance(userinfo, dict) else None
    if not isinstance(accounts, list) or not accounts:
        raise ProviderError("DocuSign's userinfo lists no account for this user", code="docusign_no_account")
    usable = [a for a in accounts if isinstance(a, dict) and a.get("account_id") and a.get("base_uri")]
    if not usable:
        raise ProviderError("DocuSign's userinfo lists no account with an id and base URI",
                            code="docusign_no_account")
    return next((a for a in usable if str(a.get("is_default")).lower() == "true"), usable[0])


class DocuSignOAuth2(OAuth2):
    def __init__(self, config: DocuSignConfig, client_id: str | None, client_secret: str | None) -> None:
        super().__init__(SLUG, authorize_url=config.authorize_url, token_url=config.token_url,
                         client_id=client_id, client_secret=client_secret, scopes=SCOPES, pkce=True,
                         client_auth="basic")
        self.config = config

    async def account_info(self, http: ProviderHttp, tokens: TokenSet, params: Mapping[str, str]) -> AccountInfo:
        response = await http.request("GET", self.config.userinfo_url, provider=SLUG,
                                      headers={"Authorization": f"Bearer {tokens.access_token}",
                                               "Accept": "application/json"})
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            raise ProviderError(f"DocuSign userinfo failed (HTTP {response.status_code})")
        account = default_account(body)
        base_uri = str(account["base_uri"]).rstrip("/")
        parts = urlsplit(base_uri)
        if not parts.hostname or parts.scheme != "https" and not (self.config.simulated and parts.scheme == "http"):
            raise ProviderError("DocuSign's userinfo gave the account a base URI that is not https",
                                code="docusign_bad_base_uri")
        return AccountInfo(id=str(account["account_id"]), name=account.get("account_name"),
                           metadata={"base_uri": base_uri, "user_id": body.get("sub")})
