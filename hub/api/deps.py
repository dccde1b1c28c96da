"""Request dependencies: the hub, the caller's identity, and a unit-of-work session.

The session commits in the dependency's cleanup, which Litestar runs before the response is sent, so a
commit that fails becomes an error response instead of a 2xx over a lost write.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import InvalidRequest, Unauthorized
from hub.logs import set_log_context
from hub.runtime import Hub
from hub.tenants import authenticate

HubDep = NamedDependency[Hub]
Db = NamedDependency[AsyncSession]
TenantId = NamedDependency[uuid.UUID]
Admin = NamedDependency[None]


def provide_hub(state: State) -> Hub:
    return state.hub


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send `Authorization: Bearer <api key>`")
    return token.strip()


async def provide_tenant_id(request: Request, hub: HubDep) -> uuid.UUID:
    token = _bearer(request)
    async with hub.session() as session:
        tenant_id = await authenticate(session, token)
    if tenant_id is None:
        raise Unauthorized("invalid or revoked API key")
    set_log_context(tenant_id=str(tenant_id))
    return tenant_id


async def require_admin(request: Request, hub: HubDep) -> None:
    if not hmac.compare_digest(_bearer(request).encode(), hub.admin_token.encode()):
        raise Unauthorized("invalid admin token")


async def provide_tenant_db(hub: HubDep, tenant_id: TenantId) -> AsyncGenerator[AsyncSession, None]:
    async with hub.session(tenant_id) as session:
        yield session


async def provide_admin_db(hub: HubDep, admin: Admin) -> AsyncGenerator[AsyncSession, None]:
    async with hub.session() as session:
        yield session


def utc_moment(value: datetime | None, name: str) -> datetime | None:
    """A query's date-time in UTC (one without an offset is taken as UTC), or a 400 when it falls outside
    the range the database can hold once converted (year 1 with an offset east of UTC, year 9999 west)."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{name} is out of range", code="invalid_datetime") from None
