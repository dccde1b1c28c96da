"""What an operator watches: ``/metrics`` (Prometheus) and the request id every log line of a request carries."""

from __future__ import annotations

import re
import time
from typing import Any

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.deps import HubDep
from hub.ids import new_id
from hub.logs import log_context
from hub.metrics import exposition, read_queue_gauges

REQUEST_ID_HEADER = b"x-request-id"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class HttpObserver(PrometheusMiddleware):
    """Every HTTP request's request id and metrics, in one middleware with one ``send`` wrapper (this runs
    on every request, the webhook receiver's included, so its cost is the hub's floor).

    - The request id: the caller's ``X-Request-ID`` when it is a sane token, else a new one; every log
      line of the request carries it, and the response echoes it.
    - Litestar's Prometheus metrics, the same names and labels (method, route template, status), by route
      template (never the raw path, whose ids would explode the series). Litestar's middleware builds a
      ``Request``, its URL and three label dicts and resolves each labelled child (under a lock) per
      request; this looks each child up once per (method, route template, status).
    """

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._children: dict[tuple[str, str, str, int], Any] = {}

    def _child(self, metric: str, method: str, path: str, status: int) -> Any:
        key = (metric, method, path, status)
        child = self._children.get(key)
        if child is None:
            labels = {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}
            child = self._children[key] = getattr(self, metric)(labels).labels(*labels.values())
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER), "")
        request_id = given if _ACCEPTABLE_ID.match(given) else new_id().hex
        echoed = (REQUEST_ID_HEADER, request_id.encode())
        span = [200, 0.0]  # the status sent, and the time to the last body message

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                span[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            elif message["type"] == "http.response.body":
                span[1] = time.perf_counter() - started
            await send(message)

        # A mounted route's template is empty until it names one itself (the webhook receiver does): its
        # mount path until then.
        path = scope["path_template"] or min(scope["route_handler"].paths)
        method = scope["method"]
        # Scraping /metrics is not a request worth a series.
        in_progress = self._child("requests_in_progress", method, path, 200) if path != METRICS_PATH else None
        if in_progress is not None:
            in_progress.inc()
        try:
            with log_context(request_id=request_id, tenant_id=None, job_id=None):
                await self.app(scope, receive, send_observed)
        finally:
            if in_progress is not None:
                in_progress.dec()
                self._record(method, scope["path_template"] or path, *span)

    def _record(self, method: str, path: str, status: int, duration: float) -> None:
        if status >= 500:
            self._child("requests_error_count", method, path, status).inc()
        self._child("request_count", method, path, status).inc()
        self._child("request_time", method, path, status).observe(duration)


METRICS_PATH = "/metrics"
http_observer = PrometheusConfig(app_name="hub", prefix="hub", group_path=True, scopes={ScopeType.HTTP},
                                 middleware_class=HttpObserver)


@get(METRICS_PATH, tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
async def metrics(hub: HubDep) -> Response[bytes]:
    await read_queue_gauges(hub)
    body, content_type = exposition()
    return Response(body, media_type=content_type)
