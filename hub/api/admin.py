"""Operator endpoints, guarded by the admin token: tenants and their API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy import select

from hub import tenants as svc
from hub.api.deps import Db, utc_moment
from hub.db.models import Job
from hub.jobs import outbox
from hub.jobs.schemas import JobOut, job_out
from hub.tenants import ApiKeyOut, NewApiKey, TenantOut, api_key_out, tenant_out
from hub.webhooks.inbox import InboxOut, get_inbox, inbox_out, list_inbox, rejection_counts
from hub.webhooks.process import reprocess


class TenantIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    settings: dict[str, Any] | None = None


class NewTenant(msgspec.Struct):
    tenant: TenantOut
    api_key: NewApiKey


class ApiKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None


class AdminController(Controller):
    path = "/v1/admin"
    tags = ["admin"]

    @post("/tenants", summary="Create a tenant and its first API key")
    async def create_tenant(self, db: Db, data: JSONBody[TenantIn]) -> NewTenant:
        tenant = await svc.create_tenant(db, data.name, data.settings)
        key = await svc.create_api_key(db, tenant.id, "default")
        return NewTenant(tenant=tenant_out(tenant), api_key=key)

    @get("/tenants", summary="All tenants")
    async def list_tenants(self, db: Db) -> list[TenantOut]:
        return [tenant_out(t) for t in await svc.list_tenants(db)]

    @get("/tenants/{tenant_id:uuid}", summary="One tenant")
    async def get_tenant(self, db: Db, tenant_id: FromPath[uuid.UUID]) -> TenantOut:
        return tenant_out(await svc.get_tenant(db, tenant_id))

    @post("/tenants/{tenant_id:uuid}/api-keys", summary="Issue an API key (shown once)")
    async def create_api_key(self, db: Db, tenant_id: FromPath[uuid.UUID], data: JSONBody[ApiKeyIn]) -> NewApiKey:
        return await svc.create_api_key(db, tenant_id, data.name)

    @get("/tenants/{tenant_id:uuid}/api-keys", summary="A tenant's API keys (prefixes only)")
    async def list_api_keys(self, db: Db, tenant_id: FromPath[uuid.UUID]) -> list[ApiKeyOut]:
        await svc.get_tenant(db, tenant_id)
        return [api_key_out(k) for k in await svc.list_api_keys(db, tenant_id)]

    @get("/jobs", summary="Background jobs of every tenant (e.g. status=failed)")
    async def list_jobs(self, db: Db, status: FromQuery[str | None] = None, kind: FromQuery[str | None] = None,
                        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50) -> list[JobOut]:
        stmt = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(Job.status == status)
        if kind is not None:
            stmt = stmt.where(Job.kind == kind)
        return [job_out(j) for j in (await db.scalars(stmt)).all()]

    @post("/jobs/{job_id:uuid}/retry", status_code=200, summary="Retry a failed job")
    async def retry_job(self, db: Db, job_id: FromPath[uuid.UUID]) -> JobOut:
        return job_out(await outbox.retry(db, job_id))

    @delete("/api-keys/{key_id:uuid}", status_code=200, summary="Revoke an API key")
    async def revoke_api_key(self, db: Db, key_id: FromPath[uuid.UUID]) -> ApiKeyOut:
        return api_key_out(await svc.revoke_api_key(db, key_id))

    @get("/webhook-inbox", summary="Inbound provider webhooks of every tenant, and the unrouted ones")
    async def list_webhook_inbox(
        self, db: Db, status: FromQuery[str | None] = None, provider: FromQuery[str | None] = None,
        before: FromQuery[datetime | None] = None, limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
    ) -> list[InboxOut]:
        from hub.api.webhooks_in import check_status

        check_status(status)
        rows = await list_inbox(db, tenant_id=None, status=status, provider=provider,
                                before=utc_moment(before, "before"), limit=limit)
        return [inbox_out(r) for r in rows]

    @get("/webhook-inbox/{inbox_id:uuid}", summary="One inbound webhook with its payload")
    async def get_webhook(self, db: Db, inbox_id: FromPath[uuid.UUID]) -> InboxOut:
        return inbox_out(await get_inbox(db, inbox_id, None), full=True)

    @post("/webhook-inbox/{inbox_id:uuid}/reprocess", status_code=202,
          summary="Process an inbound webhook again (an unrouted one is routed first)")
    async def reprocess_webhook(self, db: Db, inbox_id: FromPath[uuid.UUID]) -> InboxOut:
        return inbox_out(await reprocess(db, inbox_id))

    @get("/webhook-rejections", summary="Inbound webhooks refused for a bad signature, per provider")
    async def webhook_rejections(self, db: Db) -> dict[str, int]:
        return await rejection_counts(db)
