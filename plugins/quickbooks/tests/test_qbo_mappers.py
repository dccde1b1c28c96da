"""The field mappings as a sync uses them: a client named only by a person is a Customer under that person's
name, and a third party's replacement mapper (``register(..., replace=True)``) is the one the sync calls."""

from __future__ import annotations

import pytest
from qbo_flows import connect, mappings

import hub_quickbooks.plugin
from hub import EntityMapper, hookimpl
from hub.runtime import Hub
from hub.testing import run_jobs
from hub_quickbooks import mappers


class CustomerNotes:
    """A third party's plugin: QuickBooks' own client mapping, plus a note naming the hub's id."""

    @hookimpl
    def hub_register_entity_mappers(self, register):
        def to_customer(client, ctx):
            return mappers.client_to_customer(client, ctx) | {"Notes": f"hub client {client.id}"}

        register(EntityMapper(provider="quickbooks", entity="client", to_provider=to_customer,
                              from_provider=mappers.customer_to_client), replace=True)


@pytest.fixture
def hub_factory():
    return lambda settings: Hub.create(settings, entry_points=False, extra_plugins=[
        ("quickbooks", hub_quickbooks.plugin), ("customer_notes", CustomerNotes())])


async def test_a_replaced_mapper_is_used_and_a_person_is_named_by_first_and_last_name(client, hub, tenant, qbo):
    await connect(client, tenant)
    records = [{"id": "client-ann", "first_name": "Ann", "last_name": "Lee", "email": "ann@lee.example"},
               {"id": "client-co", "company_name": "Smith Homes", "first_name": "Bob", "last_name": "Smith"}]
    started = await client.post("/v1/connections/quickbooks/syncs", json={"entity": "client", "records": records},
                                headers=tenant.headers)
    assert started.status_code == 202, started.text
    await run_jobs(hub)
    run = (await client.get(f"/v1/syncs/{started.json()['id']}", headers=tenant.headers)).json()
    assert (run["status"], run["created"]) == ("completed", 2), run

    ids = await mappings(client, tenant, "client")
    ann, smith = (qbo.state.objects("Customer")[ids[key]] for key in ("client-ann", "client-co"))
    assert (ann["DisplayName"], ann["GivenName"], ann["FamilyName"]) == ("Ann Lee", "Ann", "Lee")
    assert "CompanyName" not in ann
    assert (smith["DisplayName"], smith["CompanyName"], smith["GivenName"]) == ("Smith Homes", "Smith Homes", "Bob")
    assert (ann["Notes"], smith["Notes"]) == ("hub client client-ann", "hub client client-co")
