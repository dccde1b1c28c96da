"""Steps the Stripe tests share: connect (own key or through the platform), call actions, deliver the
simulator's signed events to the hub."""

from __future__ import annotations

from hub_stripe.simulator import API_KEY, WEBHOOK_SECRET, StripeSimulator

CLIENT = {"id": "client-7", "company_name": "Ada Homes", "email": "ada@example.com"}


async def connect_own_key(client, tenant, webhook_secrets: list[str] | None = None) -> dict:
    response = await client.put("/v1/connections/stripe", headers=tenant.headers, json={"credentials": {
        "secret_key": API_KEY, "webhook_secrets": webhook_secrets or [WEBHOOK_SECRET]}})
    assert response.status_code == 200, response.text
    return response.json()


async def action(client, tenant, name: str, body: dict, status: int = 200) -> dict:
    response = await client.post(f"/v1/connections/stripe/actions/{name}", json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    return response.json()


async def deliver(client, sim: StripeSimulator, event: dict, path: str, secrets: list[str] | None = None,
                  timestamp: int | None = None):
    body, headers = sim.signed(event, secrets, timestamp=timestamp)
    return await client.post(path, content=body, headers=headers)


def own_path(connection: dict) -> str:
    return f"/v1/webhooks/stripe/{connection['id']}"


async def records(client, tenant, entity: str) -> list[dict]:
    page = (await client.get(f"/v1/records/stripe/{entity}?limit=100", headers=tenant.headers)).json()
    return page["items"]


async def events(client, tenant, type: str | None = None) -> list[dict]:
    page = (await client.get("/v1/events?limit=100", headers=tenant.headers)).json()
    items = page["items"] if isinstance(page, dict) else page
    return [e for e in items if type is None or e["type"] == type]
