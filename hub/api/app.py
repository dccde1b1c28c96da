"""The Litestar application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from hub import __version__
from hub.api import (
    admin,
    connect_page,
    connect_sessions,
    connections,
    files,
    health,
    oauth,
    observability,
    providers,
    syncs,
    tenant,
    webhook_endpoints,
    webhooks_in,
)
from hub.api.deps import provide_admin_db, provide_hub, provide_tenant_db, provide_tenant_id, require_admin
from hub.api.errors import EXCEPTION_HANDLERS
from hub.db.migrate import upgrade_async
from hub.jobs.worker import Background
from hub.runtime import Hub

log = logging.getLogger("hub")


@dataclass(frozen=True)
class BodyLimits:
    """The request body limits an app is built with (all the app depends on from a hub's configuration)."""

    api: int
    sync: int
    files: int
    webhooks: int

    @classmethod
    def of(cls, hub: Hub) -> BodyLimits:
        settings = hub.settings
        webhooks = max([settings.max_body_bytes, *(v.max_body_bytes for v in hub.registry.verifiers.values())])
        return cls(api=settings.max_body_bytes, sync=settings.max_sync_body_bytes, files=settings.max_file_bytes,
                   webhooks=webhooks)


def create_app(
    hub: Hub, *, migrate: bool = False, owns_hub: bool = False, background: Background | None = None
) -> Litestar:
    """Build the API around a ``Hub``. ``migrate`` brings the schema to head on start-up (the embedded
    default does this); ``background`` runs beside the API (the embedded worker, or a sender of jobs);
    ``owns_hub`` closes the hub's engine and HTTP client on shutdown."""
    return bind(build_app(BodyLimits.of(hub)), hub, migrate=migrate, owns_hub=owns_hub, background=background)


def bind(app: Litestar, hub: Hub, *, migrate: bool = False, owns_hub: bool = False,
         background: Background | None = None) -> Litestar:
    """Point an app from ``build_app`` at a hub: what its requests and its start-up and shut-down use."""
    app.state.hub = hub
    app.state.hub_startup = (migrate, owns_hub, background)
    return app


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    hub: Hub = app.state.hub
    migrate, owns_hub, background = app.state.hub_startup
    if migrate:
        await upgrade_async(hub.engine)
        log.info("database schema is current")
    if background is not None:
        await background.start(hub)
    try:
        yield
    finally:
        if background is not None:
            await background.stop()
        # Webhooks received but not yet written are written now, on the loop that received them.
        await hub.webhook_intake.aclose()
        if owns_hub:
            await hub.aclose()


def build_app(limits: BodyLimits) -> Litestar:
    """The routes, dependencies and middleware, without a hub (``bind`` gives it one). Building takes
    Litestar a good part of a second, so the test kit builds one per set of limits and binds it per test."""
    tenant_router = Router(
        path="/",
        route_handlers=[
            connections.ConnectionController, connect_sessions.ConnectSessionController,
            tenant.get_own_tenant, tenant.patch_own_tenant,
            webhook_endpoints.WebhookEndpointController, webhook_endpoints.publish_event,
            webhooks_in.InboxController,
            # records to push can be many: this router's body limit is the larger one
            Router(path="/", route_handlers=[syncs.SyncController],
                   request_max_body_size=limits.sync),
            Router(path="/", route_handlers=[files.FileController], request_max_body_size=limits.files),
        ],
        dependencies={"tenant_id": Provide(provide_tenant_id), "db": Provide(provide_tenant_db)},
        security=[{"apiKey": []}],
    )
    admin_router = Router(
        path="/",
        route_handlers=[admin.AdminController],
        dependencies={"admin": Provide(require_admin), "db": Provide(provide_admin_db)},
        security=[{"adminToken": []}],
    )
    app = Litestar(
        route_handlers=[
            health.healthz, health.readyz, observability.metrics, providers.list_providers, providers.get_provider,
            oauth.oauth_callback, tenant_router,
            # Inbound webhooks are public (each plugin verifies its own) and may be larger than API bodies.
            webhooks_in.webhook_receiver(limits.webhooks), admin_router, connect_page.connect_router(),
        ],
        # The hosted connect page's templates (Jinja2 with autoescape on).
        template_config=TemplateConfig(directory=connect_page.TEMPLATE_DIR, engine=JinjaTemplateEngine),
        dependencies={"hub": Provide(provide_hub, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[observability.http_observer.middleware],
        lifespan=[lifespan],
        request_max_body_size=limits.api,
        logging_config=None,  # the process configures logging (hub.logs); the app only logs
        openapi_config=OpenAPIConfig(
            title="Integration hub",
            version=__version__,
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="A tenant's API key"),
                "adminToken": SecurityScheme(type="http", scheme="bearer", description="The operator's admin token"),
            }),
        ),
    )
    return app
