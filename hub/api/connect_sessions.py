"""Tenant endpoints for connect sessions: links to the hosted connect page (``hub.api.connect_page``)."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from hub import connect_sessions as service
from hub.api.deps import Db, HubDep, TenantId
from hub.connect_sessions import ConnectSessionIn, ConnectSessionOut


class ConnectSessionController(Controller):
    path = "/v1/connect-sessions"
    tags = ["connect page"]

    @post("/", status_code=201,
          summary="Create a link to the hosted connect page (shown once; the hub keeps only its hash)")
    async def create_session(self, hub: HubDep, db: Db, tenant_id: TenantId,
                             data: JSONBody[ConnectSessionIn]) -> ConnectSessionOut:
        return await service.create_session(hub, db, tenant_id, data)

    @get("/{session_id:uuid}", summary="One connect session (its link is not shown again)")
    async def get_session(self, db: Db, tenant_id: TenantId, session_id: FromPath[uuid.UUID]) -> ConnectSessionOut:
        return service.session_out(await service.get_session(db, tenant_id, session_id))

    @delete("/{session_id:uuid}", status_code=200, summary="Revoke a connect session: its link stops working")
    async def revoke_session(self, hub: HubDep, db: Db, tenant_id: TenantId,
                             session_id: FromPath[uuid.UUID]) -> ConnectSessionOut:
        row = await service.get_session(db, tenant_id, session_id)
        return service.session_out(await service.revoke_session(hub, db, row))
