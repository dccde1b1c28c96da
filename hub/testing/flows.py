"""The OAuth connect flow driven the way a browser would: hub -> the provider's consent page -> the hub's
callback. The simulator's consent page takes ``decision=deny`` for a user who says no."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

RETURN_URL = "http://127.0.0.1:9/app/integrations?tab=connections"


async def authorize(client, tenant, provider: str, return_url: str = RETURN_URL) -> str:
    """``POST /v1/connections/{provider}/authorize``; returns the authorization URL."""
    response = await client.post(
        f"/v1/connections/{provider}/authorize", json={"return_url": return_url}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["authorization_url"]


def consent(authorization_url: str, decision: str = "allow") -> str:
    """The user's visit to the provider's consent page; returns where the provider redirects them."""
    response = httpx.get(f"{authorization_url}&decision={decision}", follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def callback(client, location: str) -> dict[str, list[str]]:
    """Follow the provider's redirect into the hub; returns the outcome the hub sends to return_url."""
    parts = urlsplit(location)
    response = await client.get(f"{parts.path}?{parts.query}", follow_redirects=False)
    assert response.status_code == 302, response.text
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == RETURN_URL.split("?")[0]
    return parse_qs(target.query)


async def connect_oauth(client, tenant, provider: str, decision: str = "allow") -> dict[str, list[str]]:
    """The whole flow; returns the outcome (``{"status": ["connected"], ...}`` when it worked)."""
    return await callback(client, consent(await authorize(client, tenant, provider), decision))


async def pause_schedules(client, tenant, provider: str) -> None:
    """Switch off the periodic reads of a tenant's connection and wait until any the scheduler already
    started are done: with running workers (the ``jobs`` fixture), a new connection's first scheduled read
    would otherwise race a test that counts reads, records or provider requests."""
    from hub.testing.app import wait_for

    info = (await client.get(f"/v1/providers/{provider}")).json()
    inbound = sorted({s["entity"] for s in info.get("syncs", []) if s.get("direction") == "inbound"})
    response = await client.patch(f"/v1/connections/{provider}", headers=tenant.headers,
                                  json={"sync_schedules": {entity: {"enabled": False} for entity in inbound}})
    assert response.status_code == 200, response.text

    async def idle() -> bool:
        for status in ("queued", "running"):
            if (await client.get(f"/v1/syncs?provider={provider}&status={status}", headers=tenant.headers)).json():
                return False
        return True

    await wait_for(idle)
