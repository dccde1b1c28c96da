from __future__ import annotations

from litestar import get
from litestar.response import Response
from sqlalchemy import text

from hub.api.deps import HubDep
from hub.db.migrate import current_revision, head_revision


@get("/healthz", tags=["ops"], summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", tags=["ops"], summary="The database answers, its schema is current, and the broker (if any) answers")
async def readyz(hub: HubDep) -> Response[dict[str, str]]:
    try:
        async with hub.engine.connect() as conn:
            await conn.execute(text("select 1"))
        revision = await current_revision(hub.engine)
    except Exception as exc:
        return Response({"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, status_code=503)
    if revision != head_revision():
        return Response({"status": "unavailable", "reason": "database schema is not current: run `hub migrate`"},
                        status_code=503)
    if hub.settings.broker_url is not None:
        try:
            await _ping_broker(hub.settings.broker_url)
        except Exception as exc:
            return Response({"status": "unavailable", "reason": f"broker: {type(exc).__name__}"}, status_code=503)
    return Response({"status": "ready"}, status_code=200)


async def _ping_broker(url: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()
