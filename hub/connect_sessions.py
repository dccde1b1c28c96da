"""Connect sessions: short-lived links to the hosted connect page (``hub.api.connect_page``).

The link's token is the capability (the page takes no API key): it is random, shown once in the response that
creates the session, and only its SHA-256 is stored. Time is read from ``hub.clock``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import ConnectSession
from hub.errors import NotFound, ValidationFailed
from hub.ids import new_id
from hub.oauth import check_return_url

if TYPE_CHECKING:
    from hub.runtime import Hub

DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 3600


class ConnectSessionIn(msgspec.Struct, forbid_unknown_fields=True):
    return_url: str
    """Where the page's "Done" link takes the user: your product's integrations screen (http or https)."""
    providers: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)] | None = None
    """The providers the user may connect (slugs); default: every installed provider."""
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=60, le=MAX_TTL_SECONDS)] = DEFAULT_TTL_SECONDS


class ConnectSessionOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    url: str | None
    """The link to give the user; only in the response that created the session (the hub keeps a hash)."""
    providers: list[str]
    return_url: str
    expires_at: datetime
    revoked_at: datetime | None
    created_at: datetime


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def page_url(hub: Hub, token: str) -> str:
    return f"{hub.settings.public_url}/connect/{token}"


def session_out(row: ConnectSession, url: str | None = None) -> ConnectSessionOut:
    return ConnectSessionOut(id=row.id, url=url, providers=list(row.providers), return_url=row.return_url,
                             expires_at=row.expires_at, revoked_at=row.revoked_at, created_at=row.created_at)


def _allowed_providers(hub: Hub, wanted: list[str] | None) -> list[str]:
    installed = sorted(hub.registry.providers)
    if wanted is None:
        return installed
    unknown = sorted(set(wanted) - set(installed))
    if unknown:
        raise ValidationFailed(f"no such provider installed: {', '.join(unknown)}", code="unknown_provider",
                               details={"unknown": unknown, "installed": installed})
    return list(dict.fromkeys(wanted))


async def create_session(hub: Hub, session: AsyncSession, tenant_id: uuid.UUID, data: ConnectSessionIn
                         ) -> ConnectSessionOut:
    providers = _allowed_providers(hub, data.providers)
    if not providers:
        raise ValidationFailed("no provider is installed on this hub", code="unknown_provider")
    token = secrets.token_urlsafe(32)
    now = hub.clock()
    row = ConnectSession(
        id=new_id(), tenant_id=tenant_id, token_hash=hash_token(token), providers=providers,
        return_url=check_return_url(data.return_url), expires_at=now + timedelta(seconds=data.expires_in_seconds),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return session_out(row, page_url(hub, token))


async def get_session(session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID) -> ConnectSession:
    row = (await session.scalars(
        select(ConnectSession).where(ConnectSession.id == session_id, ConnectSession.tenant_id == tenant_id)
    )).first()
    if row is None:
        raise NotFound("no such connect session", code="connect_session_not_found")
    return row


async def revoke_session(hub: Hub, session: AsyncSession, row: ConnectSession) -> ConnectSession:
    if row.revoked_at is None:
        row.revoked_at = hub.clock()
        await session.flush()
    return row


class LinkGone(Exception):
    """The link existed but has expired or was revoked (the page answers 410)."""


async def session_for_token(hub: Hub, token: str) -> ConnectSession | None:
    """The session a page link names, read without a tenant (the token is the capability); None when no
    session has that token. Raises ``LinkGone`` when it has expired or was revoked."""
    if not token or len(token) > 200:
        return None
    async with hub.session() as session:
        row = (await session.scalars(
            select(ConnectSession).where(ConnectSession.token_hash == hash_token(token))
        )).first()
    if row is None:
        return None
    if row.revoked_at is not None or row.expires_at <= hub.clock():
        raise LinkGone()
    return row
