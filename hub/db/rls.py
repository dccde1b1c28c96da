"""PostgreSQL row-level security for tenant-owned tables: the second wall behind ``hub.db.tenancy``.

A transaction whose ``hub.tenant_id`` setting is set (every tenant-scoped session sets it) sees and
writes only that tenant's rows; system work (workers, the admin API, webhook routing) runs unscoped.
FORCE makes the policy bind the table owner too; run the hub as a role that is not a superuser, since
superusers bypass row-level security altogether.
"""

from __future__ import annotations

from alembic import op

_TENANT = "nullif(current_setting('hub.tenant_id', true), '')"


def enable_tenant_rls(table: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    condition = f"{_TENANT} IS NULL OR tenant_id = {_TENANT}::uuid"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({condition}) WITH CHECK ({condition})")


def disable_tenant_rls(table: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
