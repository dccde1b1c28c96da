"""The one place that filters by tenant.

A session whose ``info["tenant_id"]`` is set (``tenant_session``) gets ``tenant_id = :tenant`` added to
every ORM statement touching a ``TenantOwned`` table — selects, updates and deletes alike — so a query
that forgets to filter still cannot see another tenant's rows. On PostgreSQL the same tenant id is put in
the transaction's ``hub.tenant_id`` setting, which the row-level security policies check.
"""

from __future__ import annotations

import uuid

from sqlalchemy import event, text
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from hub.db.models import TenantOwned

TENANT_KEY = "tenant_id"


@event.listens_for(Session, "do_orm_execute")
def _filter_by_tenant(state: ORMExecuteState) -> None:
    tenant_id = state.session.info.get(TENANT_KEY)
    if tenant_id is None or state.is_column_load or state.is_relationship_load:
        return
    state.statement = state.statement.options(
        with_loader_criteria(TenantOwned, lambda cls: cls.tenant_id == tenant_id, include_aliases=True)
    )


@event.listens_for(Session, "after_begin")
def _set_rls_tenant(session: Session, _transaction, connection) -> None:
    tenant_id = session.info.get(TENANT_KEY)
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("select set_config('hub.tenant_id', :tenant, true)"),
            {"tenant": str(tenant_id) if tenant_id else ""},
        )


def scope_to_tenant(session, tenant_id: uuid.UUID) -> None:
    """Scope a fresh (async or sync) session to one tenant for the rest of its life."""
    target = getattr(session, "sync_session", session)
    if target.in_transaction():
        raise RuntimeError("scope a session to a tenant before its first statement")
    target.info[TENANT_KEY] = tenant_id
