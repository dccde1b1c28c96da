"""What a plugin's handlers receive: one tenant's connection, without a database session."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from hub.errors import NotConnected, NotFound
from hub.http import ConnectionHttp
from hub.tokens import valid_access_token

if TYPE_CHECKING:
    from hub.config import Settings
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

    async def connection(self, provider: str) -> ConnectionContext | None:
        """The tenant's connected ``provider`` connection, or None when it has none that is connected."""
        from hub.connections import connection_context, get_connection

        async with self._hub.session(self.tenant_id) as session:
            try:
                conn = await get_connection(session, self.tenant_id, provider)
                return await connection_context(self._hub, session, conn)
            except (NotConnected, NotFound):
                return None
