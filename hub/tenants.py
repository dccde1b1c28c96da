"""Tenants and their API keys. A key is shown once; only its SHA-256 and a visible prefix are stored."""

from __future__ import annotations

import hashlib
import secrets
import uuid
import zoneinfo
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import ApiKey, Tenant, utcnow
from hub.errors import NotFound, ValidationFailed

KEY_PREFIX = "hub_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
VISIBLE_PREFIX_LENGTH = 12


class TenantSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    timezone: str = "UTC"
    """Default IANA time zone, used wherever an item carries none (never a zone hard-coded in a plugin)."""

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {self.timezone!r}") from None


def parse_tenant_settings(raw: dict[str, Any]) -> TenantSettings:
    try:
        return msgspec.convert(raw, TenantSettings)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"invalid tenant settings: {exc}") from None


class TenantOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    settings: dict[str, Any]
    created_at: datetime


class ApiKeyOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewApiKey(msgspec.Struct, kw_only=True):
    key: str
    """The API key itself. Shown this once; the hub keeps only its hash."""
    api_key: ApiKeyOut


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant_out(tenant: Tenant) -> TenantOut:
    return TenantOut(id=tenant.id, name=tenant.name, settings=tenant.settings, created_at=tenant.created_at)


def api_key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id, tenant_id=key.tenant_id, name=key.name, prefix=key.prefix, created_at=key.created_at,
        last_used_at=key.last_used_at, revoked_at=key.revoked_at,
    )


async def create_tenant(session: AsyncSession, name: str, settings: dict[str, Any] | None = None) -> Tenant:
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("a tenant name is 1 to 200 characters")
    parsed = parse_tenant_settings(settings or {})
    tenant = Tenant(name=name, settings=msgspec.to_builtins(parsed))
    session.add(tenant)
    await session.flush()
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    return tenant


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.scalars(select(Tenant).order_by(Tenant.created_at))).all())


async def create_api_key(session: AsyncSession, tenant_id: uuid.UUID, name: str | None = None) -> NewApiKey:
    await get_tenant(session, tenant_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(tenant_id=tenant_id, name=name, prefix=key[:VISIBLE_PREFIX_LENGTH], key_hash=hash_key(key))
    session.add(row)
    await session.flush()
    return NewApiKey(key=key, api_key=api_key_out(row))


async def list_api_keys(session: AsyncSession, tenant_id: uuid.UUID) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
    return list((await session.scalars(stmt)).all())


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None or (tenant_id is not None and key.tenant_id != tenant_id):
        raise NotFound("no such API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    await session.flush()
    return key


async def authenticate(session: AsyncSession, presented: str) -> uuid.UUID | None:
    """The tenant a presented API key belongs to, or None. Looked up by hash: the hash of a random
    256-bit key is not guessable, so an index lookup leaks nothing a timing attack could use."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    row = (await session.execute(
        select(ApiKey.id, ApiKey.tenant_id, ApiKey.last_used_at)
        .where(ApiKey.key_hash == hash_key(presented), ApiKey.revoked_at.is_(None))
    )).first()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        # At most one write a minute per key, so reads stay reads (SQLite has a single writer).
        await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return row.tenant_id
