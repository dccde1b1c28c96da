"""What an operator watches: ``/metrics`` (Prometheus) and the request id every log line of a request carries."""

from __future__ import annotations

import re
import uuid

from litestar import Response, get
from litestar.plugins.prometheus import PrometheusConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.deps import HubDep
from hub.logs import log_context
from hub.metrics import exposition, read_queue_gauges

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# HTTP requests by route template (never the raw path, whose ids would explode the series) and status.
http_metrics = PrometheusConfig(app_name="hub", prefix="hub", group_path=True, exclude=["^/metrics$"])


def request_ids(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: the caller's ``X-Request-ID`` when it is a sane token, else a new one; every log line
    of the request carries it, and the response echoes it."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if _ACCEPTABLE_ID.match(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with log_context(request_id=request_id, tenant_id=None, job_id=None):
            await app(scope, receive, send_with_id)

    return middleware


@get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
async def metrics(hub: HubDep) -> Response[bytes]:
    await read_queue_gauges(hub)
    body, content_type = exposition()
    return Response(body, media_type=content_type)
