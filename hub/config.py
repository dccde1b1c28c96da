"""Settings, read once from the environment by the factories that need them (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    home: Path = Path(".hub")
    database_url: str | None = None
    broker_url: str | None = None
    encryption_keys: tuple[str, ...] = ()
    admin_token: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    plugins: tuple[str, ...] | None = None
    """The HUB_PLUGINS allowlist; None loads every installed plugin."""
    max_body_bytes: int = 1_048_576
    max_sync_body_bytes: int = 33_554_432
    job_lease_seconds: float = 300.0
    """How long a running job is held before the relay gives it to another worker (its holder died)."""
    tick_seconds: float = 1.0
    """How often the relay and the scheduler look for due work."""
    allow_private_webhook_urls: bool = False
    """Let webhook endpoints point at private, loopback or link-local addresses (tests, a closed network)."""
    loopback_only: bool = False
    """Connect to nothing but this machine: providers and webhook endpoints alike must be on 127.0.0.1, ::1
    or localhost (demo mode sets it, so nothing it does can reach a real provider)."""
    webhook_timeout_seconds: float = 15.0
    """An endpoint that has not answered 2xx within this is a failed attempt."""
    files_dir: Path | None = None
    """Where hub files' contents live (default ``<home>/files``); every API and worker process must see it."""
    max_file_bytes: int = 104_857_600
    """The largest file a tenant can upload through ``POST /v1/files``."""
    retention_days: int = 90
    """Finished work older than this is deleted (webhook deliveries with their attempts, processed, failed
    and unrouted inbound webhooks, done and failed jobs, events without deliveries); 0 keeps everything."""
    environ: Mapping[str, str] = msgspec.field(default_factory=dict)
    """The whole environment, for plugins that read their own variables (client ids, secrets)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)

        def split(name: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())

        plugins = split("HUB_PLUGINS") if "HUB_PLUGINS" in env else None
        return cls(
            home=Path(env.get("HUB_HOME") or ".hub"),
            database_url=env.get("HUB_DATABASE_URL") or None,
            broker_url=env.get("HUB_BROKER_URL") or None,
            encryption_keys=split("HUB_ENCRYPTION_KEYS"),
            admin_token=env.get("HUB_ADMIN_TOKEN") or None,
            public_url=(env.get("HUB_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            plugins=plugins,
            max_body_bytes=int(env.get("HUB_MAX_BODY_BYTES") or 1_048_576),
            max_sync_body_bytes=int(env.get("HUB_MAX_SYNC_BODY_BYTES") or 33_554_432),
            job_lease_seconds=float(env.get("HUB_JOB_LEASE_SECONDS") or 300),
            tick_seconds=float(env.get("HUB_TICK_SECONDS") or 1.0),
            allow_private_webhook_urls=env.get("HUB_ALLOW_PRIVATE_WEBHOOK_URLS", "").lower() in ("1", "true", "yes"),
            loopback_only=env.get("HUB_LOOPBACK_ONLY", "").lower() in ("1", "true", "yes"),
            webhook_timeout_seconds=float(env.get("HUB_WEBHOOK_TIMEOUT_SECONDS") or 15.0),
            files_dir=Path(env["HUB_FILES_DIR"]) if env.get("HUB_FILES_DIR") else None,
            max_file_bytes=int(env.get("HUB_MAX_FILE_BYTES") or 104_857_600),
            retention_days=int(env.get("HUB_RETENTION_DAYS") or 90),
            environ=env,
        )

    @property
    def job_lease(self) -> timedelta:
        return timedelta(seconds=self.job_lease_seconds)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.home / 'hub.db').resolve()}"

    @property
    def resolved_files_dir(self) -> Path:
        return self.files_dir or self.home / "files"

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url is None or self.database_url.startswith("sqlite")

    def oauth_redirect_uri(self) -> str:
        return f"{self.public_url}/v1/oauth/callback"
