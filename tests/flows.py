"""The connect flow of the test provider ``testoauth`` (the kit's ``hub.testing.flows`` drives it)."""

from __future__ import annotations

from hub.testing.flows import RETURN_URL, callback, consent
from hub.testing.flows import authorize as _authorize

__all__ = ["RETURN_URL", "authorize", "callback", "connect", "consent"]


async def authorize(client, tenant, provider: str = "testoauth", return_url: str = RETURN_URL) -> str:
    return await _authorize(client, tenant, provider, return_url)


async def connect(client, tenant) -> dict[str, list[str]]:
    return await callback(client, consent(await authorize(client, tenant)))
