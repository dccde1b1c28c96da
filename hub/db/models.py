"""The hub's tables. The core owns all of them; plugins reach data only through services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hub.ids import new_id

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType, uuid.UUID: Uuid()}


class TenantOwned:
    """Rows that belong to one tenant. A session scoped to a tenant (``hub.db.tenancy``) only ever sees
    its own rows of these tables; on PostgreSQL, row-level security is the second wall."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(TenantOwned, Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant_id", "tenant_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Connection(TenantOwned, Base):
    __tablename__ = "connections"
    __table_args__ = (
        Index("uq_connections_tenant_provider", "tenant_id", "provider", unique=True),
        Index("ix_connections_provider_account", "provider", "external_account_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    credentials_enc: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None]
    scopes: Mapped[str | None] = mapped_column(Text)
    external_account_id: Mapped[str | None] = mapped_column(String(255))
    external_account_name: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sync_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_schedules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Per inbound entity: {"enabled": bool, "every_seconds": int}, overriding the provider's default."""
    last_sync_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    connected_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OAuthState(TenantOwned, Base):
    __tablename__ = "oauth_states"
    __table_args__ = (Index("ix_oauth_states_tenant_id", "tenant_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(64))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    return_url: Mapped[str] = mapped_column(Text)
    code_verifier_enc: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)



class Job(Base):
    """The outbox: every piece of pending work, written in the same transaction as its cause.

    A Dramatiq message only nudges a worker to look at the row; the row is the truth. ``run_at`` is
    when it may next run (retries and scheduled work wait here, not in the broker), ``locked_until``
    is the running worker's lease: past it, the relay hands the job to another worker.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_due", "status", "run_at"),
        Index("ix_jobs_tenant_id", "tenant_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=8)
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]


ACTIVE_INBOUND = "direction = 'inbound' AND status IN ('queued', 'running')"


class SyncRun(TenantOwned, Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        Index("ix_sync_runs_tenant_created", "tenant_id", "created_at"),
        Index("ix_sync_runs_connection_entity", "connection_id", "entity", "direction", "created_at"),
        # At most one inbound run in flight per (connection, entity): two would read from the same cursor.
        Index("uq_sync_runs_one_active_inbound", "connection_id", "entity", unique=True,
              sqlite_where=text(ACTIVE_INBOUND), postgresql_where=text(ACTIVE_INBOUND)),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(16), default="full")
    status: Mapped[str] = mapped_column(String(24), default="queued")
    total: Mapped[int | None]
    processed: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    deleted: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    cursor: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    rerun_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Inbound: a change was announced (a provider webhook) while this run was already reading, maybe past
    the provider call that would have seen it; when the run ends, an incremental run reads again."""
    job_id: Mapped[uuid.UUID | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncRunItem(Base):
    """One record of an outbound run, kept until the run is done so a crashed run can resume."""

    __tablename__ = "sync_run_items"
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    internal_id: Mapped[str] = mapped_column(String(255))
    record: Mapped[dict[str, Any]]
    hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)


class EntityMapping(TenantOwned, Base):
    __tablename__ = "entity_mappings"
    __table_args__ = (
        Index("uq_entity_mappings_internal", "connection_id", "entity", "internal_id", unique=True),
        Index("uq_entity_mappings_external", "connection_id", "entity", "external_id", unique=True),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(64))
    internal_id: Mapped[str] = mapped_column(String(255))
    external_id: Mapped[str] = mapped_column(String(255))
    sync_hash: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    last_synced_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Record(TenantOwned, Base):
    """The latest version of an inbound provider record; ``seq`` orders changes for cursor paging."""

    __tablename__ = "records"
    __table_args__ = (
        Index("uq_records_external", "connection_id", "entity", "external_id", unique=True),
        Index("ix_records_changes", "connection_id", "entity", "seq"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]]
    hash: Mapped[str] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncCursor(TenantOwned, Base):
    """Where the next incremental inbound read of (connection, entity) starts, and when one last began."""

    __tablename__ = "sync_cursors"
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    entity: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    last_started_at: Mapped[datetime | None]
    """When the last inbound run of this entity was started: what the scheduler compares with."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(TenantOwned, Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_tenant_seq", "tenant_id", "seq"), Index("ix_events_occurred_at", "occurred_at"))
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookInbox(Base):
    """Every verified inbound provider webhook event, stored before the hub answers. Unique on (provider,
    the provider's event id or a hash of the body), so a redelivery is a no-op. ``tenant_id`` and
    ``connection_id`` are None while the event routes to no connection (``unrouted``)."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        Index("uq_webhook_inbox_dedup", "provider", "dedup_key", unique=True),
        Index("ix_webhook_inbox_tenant_received", "tenant_id", "received_at"),
        Index("ix_webhook_inbox_status_received", "status", "received_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(String(255))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connection_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("connections.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending (queued for its handler), processed, failed, unrouted."""
    payload: Mapped[Any | None] = mapped_column(JSONType)
    body: Mapped[str | None] = mapped_column(Text)
    """The raw body, kept only when it could not be parsed (truncated), so the operator can see why."""
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class WebhookEndpoint(TenantOwned, Base):
    """A tenant's URL that receives its events, signed (Standard Webhooks) with the endpoint's secret."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_id", "tenant_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    """Patterns: exact names or wildcards (``payment.*``, ``*``)."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    secret_enc: Mapped[str] = mapped_column(Text)
    previous_secret_enc: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    """Until then, deliveries are signed with both the new and the previous secret."""
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(TenantOwned, Base):
    """One event to one endpoint: a queue row of its own. ``next_attempt_at`` is when it is due (retries
    wait here, so a restart loses none); ``locked_until`` is the lease of the worker sending it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # endpoint_id too: the sender skips endpoints whose share is full (a dead one's backlog) in the index.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at", "endpoint_id"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_event", "event_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending (due at ``next_attempt_at``), succeeded, failed (out of attempts or endpoint gone)."""
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class WebhookAttempt(TenantOwned, Base):
    """Every attempt of a delivery: what the endpoint answered and how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    duration_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
    """The first 2 KB of the endpoint's answer."""


class File(TenantOwned, Base):
    """A tenant's file (a signed contract, an uploaded document). The row names it; the bytes live in the
    hub's file store (``hub.files``), one blob per version, at ``{tenant}/{id}/{sha256}``."""

    __tablename__ = "files"
    __table_args__ = (Index("uq_files_tenant_path", "tenant_id", "path", unique=True),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    path: Mapped[str] = mapped_column(String(1024))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConnectSession(TenantOwned, Base):
    """A short-lived link to the hosted connect page, where a tenant's user connects the allowed providers.
    The link's token is the capability; only its hash is kept."""

    __tablename__ = "connect_sessions"
    __table_args__ = (Index("ix_connect_sessions_tenant_id", "tenant_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    providers: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    return_url: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Counter(Base):
    """Monotonic counters (change cursors). ``UPDATE ... RETURNING`` hands out ranges on both backends."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


TENANT_OWNED_TABLES = tuple(
    mapper.class_.__tablename__ for mapper in Base.registry.mappers if issubclass(mapper.class_, TenantOwned)
)
