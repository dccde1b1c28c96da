"""Steps the Google Drive tests share: connect through Google's consent, call actions, hand the hub the push
notifications the simulator queued."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from hub.testing.flows import connect_oauth

PERIODIC = ("file_change", "push_channel")


async def connect(client, tenant, *, periodic: bool = False) -> dict[str, Any]:
    outcome = await connect_oauth(client, tenant, "google_drive")
    assert outcome["status"] == ["connected"], outcome
    if not periodic:  # tests that count Drive requests keep the scheduler's reads out of the way
        off = {entity: {"enabled": False} for entity in PERIODIC}
        response = await client.patch("/v1/connections/google_drive", json={"sync_schedules": off},
                                      headers=tenant.headers)
        assert response.status_code == 200, response.text
    return (await client.get("/v1/connections/google_drive", headers=tenant.headers)).json()


async def action(client, tenant, name: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await client.post(f"/v1/connections/google_drive/actions/{name}", json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    return response.json()


async def settings(client, tenant, **values) -> None:
    response = await client.patch("/v1/connections/google_drive", json={"settings": values}, headers=tenant.headers)
    assert response.status_code == 200, response.text


async def deliver_notifications(client, drive) -> list[int]:
    """POST what Drive would have sent to the hub (its addresses are the hub's public URLs)."""
    statuses = []
    for address, headers, body in drive.notifications():
        response = await client.post(urlsplit(address).path, content=body, headers=headers)
        statuses.append(response.status_code)
    return statuses


async def sync(client, tenant, entity: str, **body) -> str:
    response = await client.post("/v1/connections/google_drive/syncs", json={"entity": entity, **body},
                                 headers=tenant.headers)
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def run(client, tenant, run_id: str) -> dict[str, Any]:
    return (await client.get(f"/v1/syncs/{run_id}", headers=tenant.headers)).json()
