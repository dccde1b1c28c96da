"""What a plugin's handlers receive: one tenant's connection, without a database session."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from hub.db.models import EntityMapping, Record
from hub.errors import NotConnected, NotFound
from hub.http import ConnectionHttp
from hub.tokens import valid_access_token

if TYPE_CHECKING:
    from hub.config import Settings
    from hub.files import TenantFiles
    from hub.handlers import PushResult
    from hub.runtime import Hub


@dataclass(frozen=True, kw_only=True)
class ConnectionContext:
    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    provider: str
    account_id: str | None
    account_name: str | None
    metadata: dict[str, Any]
    settings: Any
    """The connection's settings, as the provider's declared settings Struct (or a dict when it declares none)."""
    timezone: str
    """The tenant's default IANA time zone."""
    http: ConnectionHttp
    """The hub's HTTP client bound to this connection: its provider's throttle, retries and request log."""
    log: logging.Logger
    _hub: Hub = field(repr=False)
    _credentials: str | None = field(default=None, repr=False)

    @property
    def files(self) -> TenantFiles:
        """The tenant's files (``hub.files``): store what the provider returns, read what the tenant uploaded."""
        return self._hub.tenant_files(self.tenant_id)

    @property
    def webhook_url(self) -> str:
        """This connection's own webhook URL (``/v1/webhooks/{provider}/{connection_id}``), for providers
        that are told where to call back per connection (status callbacks, push channels)."""
        return f"{self._hub.settings.public_url}/v1/webhooks/{self.provider}/{self.connection_id}"

    async def access_token(self) -> str:
        """A valid OAuth access token, refreshed first if it expires within five minutes."""
        return await valid_access_token(self._hub, self.connection_id)

    def to_provider(self, entity: str, record: Any) -> dict[str, Any]:
        """The provider's payload for a hub record, through the registered (or replacing) mapper."""
        return self._mapper(entity, "to_provider")(record, self)

    def from_provider(self, entity: str, payload: Any) -> Any:
        """A hub record's data from a provider payload, through the registered (or replacing) mapper."""
        return self._mapper(entity, "from_provider")(payload, self)

    def _mapper(self, entity: str, direction: str):
        mapper = self._hub.registry.mappers.get((self.provider, entity))
        fn = getattr(mapper, direction, None) if mapper else None
        if fn is None:
            raise LookupError(f"no {direction} mapper registered for {self.provider} {entity}")
        return fn

    async def external_ids(self, entity: str, internal_ids: Iterable[str]) -> dict[str, str]:
        """Hub id -> provider id for the given hub ids that are mapped (one query per 500 ids)."""
        return await self._lookup(EntityMapping, entity, EntityMapping.internal_id, internal_ids,
                                  lambda m: (m.internal_id, m.external_id))

    async def internal_ids(self, entity: str, external_ids: Iterable[str]) -> dict[str, str]:
        """Provider id -> hub id for the given provider ids that are mapped."""
        return await self._lookup(EntityMapping, entity, EntityMapping.external_id, external_ids,
                                  lambda m: (m.external_id, m.internal_id))

    async def records(self, entity: str, external_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Provider id -> the stored inbound record's data, for those the hub holds (and not deleted)."""
        found = await self._lookup(Record, entity, Record.external_id, external_ids,
                                   lambda r: (r.external_id, None if r.deleted else r.data))
        return {k: v for k, v in found.items() if v is not None}

    async def _lookup(self, model, entity: str, column, keys: Iterable[str], pick) -> dict:
        keys = list(dict.fromkeys(keys))
        found: dict = {}
        async with self._hub.session(self.tenant_id) as session:
            for start in range(0, len(keys), 500):
                rows = await session.scalars(select(model).where(
                    model.connection_id == self.connection_id, model.entity == entity,
                    column.in_(keys[start:start + 500])))
                found.update(pick(row) for row in rows)
        return found

    async def push(self, entity: str, records: Iterable[Any]) -> dict[str, PushResult]:
        """Push hub records of ``entity`` now through this provider's outbound sync for it, saving their
        mappings as a sync run would (unchanged ones are not sent). For a record that needs another first,
        such as an invoice whose client the provider has never seen. Returns hub id -> ``PushResult``."""
        from hub.sync.engine import push_records

        return await push_records(self._hub, self, entity, list(records))

    def credentials(self, fields: type[msgspec.Struct]) -> Any:
        """The API-key credentials the tenant connected with, decoded into the provider's fields type."""
        if self._credentials is None:
            raise NotConnected("the connection has no stored credentials")
        raw = self._hub.vault.decrypt(self._credentials, self.tenant_id, self.connection_id, "credentials")
        return msgspec.json.decode(raw, type=fields)


@dataclass(frozen=True, kw_only=True)
class EventContext:
    """What a ``hub_event`` observer receives beside the event."""

    tenant_id: uuid.UUID
    config: Settings
    _hub: Hub = field(repr=False)

    @property
    def files(self) -> TenantFiles:
        """The tenant's files, as ``ConnectionContext.files``."""
        return self._hub.tenant_files(self.tenant_id)

    async def connection(self, provider: str) -> ConnectionContext | None:
        """The tenant's connected ``provider`` connection, or None when it has none that is connected."""
        from hub.connections import connection_context, get_connection

        async with self._hub.session(self.tenant_id) as session:
            try:
                conn = await get_connection(session, self.tenant_id, provider)
                return await connection_context(self._hub, session, conn)
            except (NotConnected, NotFound):
                return None
