"""The calling tenant's own record and settings (default time zone)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get, patch
from litestar.params import JSONBody

from hub.api.deps import Db, TenantId
from hub.tenants import TenantOut, get_tenant, parse_tenant_settings, tenant_out


class TenantPatch(msgspec.Struct, forbid_unknown_fields=True):
    settings: dict[str, Any]


@get("/v1/tenant", tags=["tenant"], summary="The calling tenant")
async def get_own_tenant(db: Db, tenant_id: TenantId) -> TenantOut:
    return tenant_out(await get_tenant(db, tenant_id))


@patch("/v1/tenant", tags=["tenant"], summary="Change the calling tenant's settings")
async def patch_own_tenant(db: Db, tenant_id: TenantId, data: JSONBody[TenantPatch]) -> TenantOut:
    tenant = await get_tenant(db, tenant_id)
    tenant.settings = msgspec.to_builtins(parse_tenant_settings({**tenant.settings, **data.settings}))
    await db.flush()
    return tenant_out(tenant)
