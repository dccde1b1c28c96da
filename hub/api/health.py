from __future__ import annotations

from litestar import get
from litestar.response import Response
from sqlalchemy import text

from hub.api.deps import HubDep
from hub.db.migrate import current_revision, head_revision


@get("/healthz", tags=["ops"], summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", tags=["ops"], summary="The database answers and its schema is current")
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
    return Response({"status": "ready"}, status_code=200)
