"""The hub's runtime: settings, database, vault, plugin registry and the shared HTTP client, built once
by ``Hub.create`` and handed to the API, the CLI and the workers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.config import Settings
from hub.db.engine import create_engine, create_sessionmaker
from hub.db.models import utcnow
from hub.db.tenancy import scope_to_tenant
from hub.files import FileStore, TenantFiles
from hub.home import ensure_home, new_token, read_or_create_secret
from hub.http import ProviderHttp
from hub.plugins import Registry, load_plugins
from hub.throttle import create_throttle
from hub.vault import Vault, generate_key
from hub.webhooks.delivery import Outbound
from hub.webhooks.fanout import CLOCK_KEY, WAKE_KEY

log = logging.getLogger("hub")


def resolve_vault(settings: Settings) -> Vault:
    if settings.encryption_keys:
        return Vault(settings.encryption_keys)
    key, created = read_or_create_secret(settings.home / "encryption.key", generate_key)
    if created:
        log.warning("HUB_ENCRYPTION_KEYS is unset: generated a key in %s (mode 0600)", settings.home / "encryption.key")
    return Vault([key])


def resolve_admin_token(settings: Settings) -> str:
    if settings.admin_token:
        return settings.admin_token
    path = settings.home / "admin_token"
    token, created = read_or_create_secret(path, new_token)
    if created:
        log.warning("HUB_ADMIN_TOKEN is unset: generated one in %s (mode 0600)", path)
    return token


def provider_client(settings: Settings):
    """The HTTP client plugins reach their providers with: ``ProviderHttp``'s default, or with
    ``HUB_LOOPBACK_ONLY`` one whose every connection goes through the address guard in loopback mode."""
    if not settings.loopback_only:
        return None
    import httpx

    from hub.http import DEFAULT_TIMEOUT
    from hub.webhooks.ssrf import AddressGuard, GuardedTransport

    return httpx.AsyncClient(transport=GuardedTransport(AddressGuard(loopback_only=True), connections_per_origin=100),
                             timeout=DEFAULT_TIMEOUT, follow_redirects=False)


@dataclass
class Hub:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    vault: Vault
    registry: Registry
    http: ProviderHttp
    admin_token: str
    dispatch: Callable[[uuid.UUID], None] | None = None
    """Sends a committed job to the workers; None where nothing listens (the relay sends it later)."""
    clock: Callable[[], datetime] = utcnow
    """Now, as an aware UTC datetime: when webhook deliveries are due. Tests set a clock they control."""
    webhooks: Outbound = field(default=None)  # type: ignore[assignment]
    """Outgoing webhooks: the address guard and the wake-up of this process's sender."""

    def __post_init__(self) -> None:
        from hub.webhooks.intake import Intake

        if self.webhooks is None:
            self.webhooks = Outbound(self.settings)
        self.webhook_intake = Intake(self)
        """Stores received webhooks, many requests to a transaction (group commit)."""
        self.files = FileStore(self.settings.resolved_files_dir)
        """Where tenants' files keep their bytes (``hub.files``)."""

    def tenant_files(self, tenant_id: uuid.UUID) -> TenantFiles:
        return TenantFiles(self, tenant_id)

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        entry_points: bool = True,
        extra_plugins: Iterable[tuple[str, object]] = (),
        http: ProviderHttp | None = None,
    ) -> Hub:
        ensure_home(settings.home)
        registry, _ = load_plugins(settings, entry_points=entry_points, extra=extra_plugins)
        engine = create_engine(settings.resolved_database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            vault=resolve_vault(settings),
            registry=registry,
            http=http or ProviderHttp(client=provider_client(settings), throttle=create_throttle(settings.broker_url)),
            admin_token=resolve_admin_token(settings),
        )

    @asynccontextmanager
    async def session(self, tenant_id: uuid.UUID | None = None) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block ends cleanly, rolls back when it raises."""
        async with self.sessionmaker() as session:
            session.info["hub_dispatch"] = self.dispatch
            session.info[CLOCK_KEY] = self.clock
            session.info[WAKE_KEY] = self.webhooks.wake
            session.info["hub_observers"] = tuple(self.registry.observers)
            if tenant_id is not None:
                scope_to_tenant(session, tenant_id)
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def aclose(self) -> None:
        await self.webhook_intake.aclose()
        await self.http.aclose()
        await self.engine.dispose()
