"""The OAuth2 connect flow: a single-use, ten-minute ``state`` bound to tenant, provider, redirect URI
and PKCE verifier; the callback exchanges the code through the plugin's strategy and redirects the
tenant's user back to ``return_url`` with the outcome. Nothing is stored unless the whole flow succeeds."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth import OAuth2, pkce_pair
from hub.connections import require_provider, save_oauth_connection
from hub.db.models import OAuthState
from hub.errors import Conflict, CredentialsRejected, HubError, InvalidRequest, ValidationFailed
from hub.ids import new_id

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("hub.oauth")

STATE_TTL = timedelta(minutes=10)
_PROVIDER_ERROR = re.compile(r"^[a-z_]{1,64}$")


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def check_return_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise ValidationFailed("return_url must be an absolute http(s) URL", code="invalid_return_url")
    return url


def with_outcome(return_url: str, **outcome: str) -> str:
    parts = urlsplit(return_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in outcome]
    return urlunsplit(parts._replace(query=urlencode(query + list(outcome.items()))))


def oauth_strategy(hub: Hub, provider: str) -> OAuth2:
    require_provider(hub, provider)
    strategy = hub.registry.auth.get(provider)
    if not isinstance(strategy, OAuth2):
        raise Conflict(f"{provider} does not connect through OAuth", code="wrong_auth_kind")
    if not strategy.configured:
        raise Conflict(f"{provider} has no OAuth client configured on this hub", code="provider_not_configured")
    return strategy


async def start_authorization(
    hub: Hub, session: AsyncSession, tenant_id: uuid.UUID, provider: str, return_url: str,
    scopes: tuple[str, ...] | None,
) -> tuple[str, datetime]:
    strategy = oauth_strategy(hub, provider)
    check_return_url(return_url)
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair() if strategy.pkce else (None, None)
    row = OAuthState(
        id=new_id(), tenant_id=tenant_id, provider=provider, state_hash=_hash(state),
        redirect_uri=hub.settings.oauth_redirect_uri(), return_url=return_url,
        scopes=" ".join(scopes) if scopes else None, expires_at=datetime.now(UTC) + STATE_TTL,
    )
    if verifier:
        row.code_verifier_enc = hub.vault.encrypt(verifier, tenant_id, row.id, "code_verifier")
    session.add(row)
    await session.flush()
    url = strategy.authorization_url(
        state=state, redirect_uri=row.redirect_uri, scopes=scopes, code_challenge=challenge
    )
    return url, row.expires_at


async def complete_callback(hub: Hub, params: Mapping[str, str]) -> str:
    """Finish the flow and return where to send the user. Raises ``InvalidRequest`` only when the state
    is unknown, since then there is no return URL to send them to."""
    state = params.get("state") or ""
    async with hub.session() as session:
        row = (await session.scalars(select(OAuthState).where(OAuthState.state_hash == _hash(state)))).first()
        if row is None:
            raise InvalidRequest("unknown OAuth state", code="invalid_state")
        verifier = (
            hub.vault.decrypt(row.code_verifier_enc, row.tenant_id, row.id, "code_verifier")
            if row.code_verifier_enc else None
        )
        claimed = await session.execute(
            update(OAuthState).where(OAuthState.id == row.id, OAuthState.used_at.is_(None))
            .values(used_at=datetime.now(UTC), code_verifier_enc=None)
        )
    # The claim is committed before the code is exchanged, so a replay racing this request loses; the
    # PKCE verifier is wiped with it and lives on only in this request.

    def outcome(status: str, error: str | None = None) -> str:
        fields = {"status": status, "provider": row.provider}
        return with_outcome(row.return_url, **(fields | ({"error": error} if error else {})))

    if claimed.rowcount != 1:
        return outcome("error", "state_used")
    if row.expires_at <= datetime.now(UTC):
        return outcome("error", "state_expired")
    if params.get("provider") not in (None, row.provider):
        return outcome("error", "wrong_provider")
    if params.get("error"):
        reported = params["error"]
        return outcome("error", reported if _PROVIDER_ERROR.match(reported) else "provider_error")
    if not params.get("code"):
        return outcome("error", "missing_code")
    try:
        strategy = oauth_strategy(hub, row.provider)
    except HubError:
        return outcome("error", "provider_unavailable")
    try:
        tokens = await strategy.exchange_code(
            hub.http, code=params["code"], redirect_uri=row.redirect_uri, code_verifier=verifier, params=params
        )
        account = await strategy.account_info(hub.http, tokens, params)
    except CredentialsRejected as exc:
        log.warning("oauth %s: the provider rejected the grant (%s)", row.provider, exc.code)
        return outcome("error", "grant_rejected")
    except Exception as exc:
        log.warning("oauth %s: exchange failed (%s)", row.provider, type(exc).__name__)
        return outcome("error", "provider_error")
    async with hub.session(row.tenant_id) as session:
        await save_oauth_connection(hub, session, row.tenant_id, row.provider, tokens, account)
    return outcome("connected")
