"""Tenant isolation: another tenant's object is a 404; tenant-scoped sessions cannot see other rows;
on PostgreSQL, row-level security is a second wall even for a query with no tenant filter."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from hub.db.models import ApiKey, Connection
from tests.conftest import new_tenant
from tests.flows import connect


async def test_another_tenants_connection_is_404_for_read_change_delete(client, tenant, hub):
    intruder = await new_tenant(client, "Intruder Inc")
    await connect(client, tenant)

    read = await client.get("/v1/connections/testoauth", headers=intruder.headers)
    change = await client.patch("/v1/connections/testoauth", json={"settings": {"poll_minutes": 1}},
                                headers=intruder.headers)
    delete = await client.delete("/v1/connections/testoauth", headers=intruder.headers)
    action = await client.post("/v1/connections/testoauth/actions/echo", json={"text": "hi"},
                               headers=intruder.headers)
    listing = await client.get("/v1/connections", headers=intruder.headers)

    for response in (read, change, delete, action):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "connection_not_found"
    assert listing.json() == []
    owner_view = (await client.get("/v1/connections/testoauth", headers=tenant.headers)).json()
    assert owner_view["status"] == "connected" and owner_view["settings"] == {}


async def test_tenant_scoped_session_filters_queries_that_forget_to(client, tenant, hub):
    other = await new_tenant(client, "Other Co")
    await connect(client, tenant)
    await connect(client, other)
    async with hub.session(tenant.id) as session:
        rows = (await session.scalars(select(Connection))).all()  # no WHERE tenant_id on purpose
        keys = (await session.scalars(select(ApiKey))).all()
    assert {row.tenant_id for row in rows} == {tenant.id}
    assert {key.tenant_id for key in keys} == {tenant.id}
    async with hub.session() as session:  # unscoped system work sees both
        assert len((await session.scalars(select(Connection))).all()) == 2


async def test_revoked_and_unknown_keys_are_401(client, tenant):
    admin = {"Authorization": "Bearer admin-token-for-tests-0123456789"}
    keys = (await client.get(f"/v1/admin/tenants/{tenant.id}/api-keys", headers=admin)).json()
    assert [k["prefix"] for k in keys] == [tenant.key[:12]]
    assert (await client.delete(f"/v1/admin/api-keys/{keys[0]['id']}", headers=admin)).status_code == 200
    for headers in (tenant.headers, {"Authorization": "Bearer hub_not-a-real-key"}, {}):
        response = await client.get("/v1/connections", headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


async def test_admin_endpoints_refuse_tenant_keys(client, tenant):
    response = await client.get("/v1/admin/tenants", headers=tenant.headers)
    assert response.status_code == 401


@pytest.mark.postgres
async def test_row_level_security_hides_other_tenants_rows_from_an_unfiltered_query(
    client, tenant, hub, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("row-level security is PostgreSQL's")
    import psycopg

    other = await new_tenant(client, "Other Co")
    await connect(client, tenant)
    await connect(client, other)
    role = f"hub_app_{uuid.uuid4().hex[:8]}"
    schema = database_url.rsplit("%3D", 1)[1]
    admin_dsn = database_url.split("?")[0].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
    try:
        app_dsn = admin_dsn.replace("://" + admin_dsn.split("://")[1].split("@")[0] + "@", f"://{role}@")
        with psycopg.connect(app_dsn, options=f"-csearch_path={schema}") as conn:
            conn.execute("select set_config('hub.tenant_id', %s, true)", (str(tenant.id),))
            seen = conn.execute("select tenant_id from connections").fetchall()  # no tenant filter
            assert {row[0] for row in seen} == {tenant.id}
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # WITH CHECK: no writing into B
                conn.execute("update connections set tenant_id = %s", (other.id,))
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
    async with hub.session(tenant.id) as session:  # the app's own scoped sessions set the same setting
        assert await session.scalar(text("select current_setting('hub.tenant_id', true)")) == str(tenant.id)


async def test_api_key_use_is_recorded(client, tenant):
    admin = {"Authorization": "Bearer admin-token-for-tests-0123456789"}
    await client.get("/v1/connections", headers=tenant.headers)
    keys = (await client.get(f"/v1/admin/tenants/{tenant.id}/api-keys", headers=admin)).json()
    assert keys[0]["last_used_at"] is not None
