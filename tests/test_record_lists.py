"""A provider's declared record lists: ``GET /v1/connections/{provider}/{name}`` (``ProviderInfo.record_lists``)."""

from __future__ import annotations

import pytest

from hub.errors import PluginError
from hub.plugins import Registry
from hub.testing import new_tenant, run_jobs
from hub.types import ProviderInfo
from tests.flows import connect


async def test_a_declared_list_shows_the_current_records_of_its_entity_and_only_the_tenants(client, hub, tenant,
                                                                                           provider):
    await connect(client, tenant)
    for n in range(3):
        provider.state.put_payment(f"pay-{n}", f"{n}.00")
    provider.state.put_payment("pay-gone", "1.00", deleted=True)
    started = await client.post("/v1/connections/testoauth/syncs", json={"entity": "payment"}, headers=tenant.headers)
    assert started.status_code == 202, started.text
    await run_jobs(hub)

    first = (await client.get("/v1/connections/testoauth/payments?limit=2", headers=tenant.headers)).json()
    rest = (await client.get(f"/v1/connections/testoauth/payments?cursor={first['next_cursor']}",
                             headers=tenant.headers)).json()
    assert [r["external_id"] for r in first["items"] + rest["items"]] == ["pay-0", "pay-1", "pay-2"]
    assert rest["next_cursor"] is None
    assert (await client.get("/v1/connections/testoauth/mappings", headers=tenant.headers)).status_code == 200

    unknown = await client.get("/v1/connections/testoauth/invoices", headers=tenant.headers)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "list_not_found")
    other = await new_tenant(client, "Other Co")
    theirs = await client.get("/v1/connections/testoauth/payments", headers=other.headers)
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "connection_not_found")


@pytest.mark.parametrize("name", ["mappings", "Opt Outs", ""])
def test_a_list_named_like_a_core_path_or_not_a_name_is_refused(name):
    info = ProviderInfo(slug="sms", title="SMS", category="messaging", auth_kind="api_key",
                        record_lists={name: "opt_out"})
    with pytest.raises(PluginError, match="record list"):
        Registry().add_provider(info, "sms")
