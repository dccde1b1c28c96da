"""What an operator watches: ``/metrics`` (Prometheus) and the request id every log line of a request carries."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.deps import HubDep
from hub.logs import log_context
from hub.metrics import exposition, read_queue_gauges

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

class HttpMetrics(PrometheusMiddleware):
    """Litestar's Prometheus middleware, the same metrics with the same labels, at a fraction of its cost
    per request: it builds a ``Request``, its URL and three label dicts and resolves each labelled child
    (under a lock) per request; this looks each child up once per (method, route template, status).
    Options this does not implement (extra labels, exemplars, excluded methods) fall back to Litestar's."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._lean = config.group_path and not (config.labels or config.exemplars or config.excluded_http_methods)
        self._children: dict[tuple[str, str, str, int], Any] = {}

    def _child(self, metric: str, method: str, path: str, status: int) -> Any:
        key = (metric, method, path, status)
        child = self._children.get(key)
        if child is None:
            labels = {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}
            child = self._children[key] = getattr(self, metric)(labels).labels(*labels.values())
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._lean:
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        path = scope["path_template"]
        span = [200, 0.0]  # the status sent, and the time to the last body message

        async def send_measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                span[0] = message["status"]
            elif message["type"] == "http.response.body":
                span[1] = time.perf_counter() - started
            await send(message)

        in_progress = self._child("requests_in_progress", method, path, 200)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_measured)
        finally:
            in_progress.dec()
            status, duration = span
            if status >= 500:
                self._child("requests_error_count", method, path, status).inc()
            self._child("request_count", method, path, status).inc()
            self._child("request_time", method, path, status).observe(duration)


# HTTP requests by route template (never the raw path, whose ids would explode the series) and status.
http_metrics = PrometheusConfig(app_name="hub", prefix="hub", group_path=True, exclude=["^/metrics$"],
                                middleware_class=HttpMetrics)


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
