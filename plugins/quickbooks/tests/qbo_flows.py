"""Steps the QuickBooks tests share: connect through Intuit's consent, start syncs and wait for them."""

from __future__ import annotations

import uuid

from hub.connections import connection_context, get_connection
from hub.testing import connect_oauth, pause_schedules, wait_for


async def connect(client, tenant, *, settle: bool = False) -> dict:
    """Connect through Intuit's consent; with ``settle`` (for tests with running workers that count requests),
    switch the periodic reads off and wait until any the scheduler already started are done, so that none
    races the test's own requests to the simulator."""
    outcome = await connect_oauth(client, tenant, "quickbooks")
    assert outcome["status"] == ["connected"], outcome
    if settle:
        await pause_schedules(client, tenant, "quickbooks")
    return (await client.get("/v1/connections/quickbooks", headers=tenant.headers)).json()


async def sync(client, tenant, entity: str, records: list[dict] | None = None, **extra) -> dict:
    body = {"entity": entity, **extra} | ({"records": records} if records is not None else {})

    async def started():
        response = await client.post("/v1/connections/quickbooks/syncs", json=body, headers=tenant.headers)
        if records is None and response.status_code == 409 and response.json()["error"]["code"] == "sync_in_progress":
            return None  # the scheduler's first read of a new connection is under way: ours follows it
        assert response.status_code == 202, response.text
        return response.json()

    return await wait_for(started)


async def finished(client, tenant, run: dict, timeout: float = 30) -> dict:
    async def done():
        got = (await client.get(f"/v1/syncs/{run['id']}", headers=tenant.headers)).json()
        return got if got["status"] not in ("queued", "running") else None

    return await wait_for(done, timeout)


async def run_sync(client, tenant, entity: str, records: list[dict] | None = None, *, timeout: float = 30,
                   **extra) -> dict:
    return await finished(client, tenant, await sync(client, tenant, entity, records, **extra), timeout)


async def context(hub, tenant_id: uuid.UUID):
    async with hub.session(tenant_id) as session:
        return await connection_context(hub, session, await get_connection(session, tenant_id, "quickbooks"))


async def mappings(client, tenant, entity: str) -> dict[str, str]:
    page = (await client.get(f"/v1/connections/quickbooks/mappings?entity={entity}&limit=1000",
                             headers=tenant.headers)).json()
    return {m["internal_id"]: m["external_id"] for m in page["items"]}


def clients(n: int, start: int = 0, **overrides) -> list[dict]:
    return [{"id": f"client-{i}", "company_name": f"Client {i} LLC", "email": f"c{i}@example.com",
             "phone": "555-0100", "billing_address": {"street": f"{i} Main St", "city": "Austin", "state": "TX",
                                                      "zip": "78701"}, **overrides}
            for i in range(start, start + n)]


def invoice(n: int, client_id: str = "client-0", **overrides) -> dict:
    return {"id": f"inv-{n}", "client_id": client_id, "invoice_number": f"INV-{n}", "invoice_date": "2026-11-02",
            "due_date": "2026-12-02", "job_name": "Kitchen remodel",
            "line_items": [{"description": "Demolition", "quantity": "2", "unit_price": "150.00"},
                           {"description": "Cabinets", "quantity": "1", "unit_price": "1200.50"}], **overrides}
