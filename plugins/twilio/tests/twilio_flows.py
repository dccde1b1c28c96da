"""Steps the Twilio tests share: connect a tenant, run an action, the connection's webhook URL."""

from __future__ import annotations

from typing import Any

from hub.testing import PUBLIC_URL
from hub_twilio.simulator import ACCOUNT_SID, AUTH_TOKEN, PHONE_NUMBER


async def connect(client, tenant, *, credentials: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
    response = await client.put("/v1/connections/twilio", headers=tenant.headers, json={
        "credentials": credentials or {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
        "settings": {"sender": PHONE_NUMBER, "messages_per_second": 50} | settings})
    assert response.status_code in (200, 201), response.text
    return response.json()


async def act(client, tenant, name: str, **data: Any):
    return await client.post(f"/v1/connections/twilio/actions/{name}", json=data, headers=tenant.headers)


def webhook_url(connection: dict[str, Any]) -> str:
    return f"{PUBLIC_URL}/v1/webhooks/twilio/{connection['id']}"


async def deliver(client, call) -> None:
    """Post a webhook the simulator built (to the public URL) to the app under test."""
    response = await client.post(call.path, content=call.body, headers=call.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
