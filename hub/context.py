"""What a plugin's handlers receive: one tenant's connection, without a database session."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from hub.db.models import EntityMapping, Record
from hub.errors import Conflict, NotConnected, NotFound
from hub.http import ConnectionHttp
from hub.ids import new_id
from hub.tokens import valid_access_token

if TYPE_CHECKING:
    from datetime import datetime

    from hub.config import Settings
    from hub.files import TenantFiles
    from hub.handlers import NewEvent, PushResult
    from hub.runtime import Hub

RecordChange = Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, Sequence["NewEvent"]]]
"""``update_record``'s change: the stored data (None: none) -> (the new data, or None to leave it; events)."""
UPDATE_ATTEMPTS = 10


class _Changed(Exception):
    """Another writer changed the record between its read and this write."""


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

    async def save_metadata(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the connection's metadata and keep it (a key set to None is removed), for
        what a plugin sets up at the provider per connection and must find again, such as a push channel's
        id and expiry. Returns the metadata now kept; ``ctx.metadata`` shows it too. The metadata is published
        in ``GET /v1/connections``: never put a secret in it."""
        from hub.db.models import Connection

        async with self._hub.session(self.tenant_id) as session:
            conn = await session.get(Connection, self.connection_id, with_for_update=True)
            if conn is None:
                raise NotFound("the connection is gone", code="connection_not_found")
            merged = {k: v for k, v in {**(conn.metadata_ or {}), **changes}.items() if v is not None}
            conn.metadata_ = merged
        self.metadata.clear()
        self.metadata.update(merged)
        return dict(merged)

    async def push(self, entity: str, records: Iterable[Any]) -> dict[str, PushResult]:
        """Push hub records of ``entity`` now through this provider's outbound sync for it, saving their
        mappings as a sync run would (unchanged ones are not sent). For a record that needs another first,
        such as an invoice whose client the provider has never seen. Returns hub id -> ``PushResult``."""
        from hub.sync.engine import push_records

        return await push_records(self._hub, self, entity, list(records))

    async def update_record(self, entity: str, external_id: str, change: RecordChange) -> dict[str, Any] | None:
        """Read, change and store one record of this connection (``records``, as ``GET /v1/records`` shows them)
        safely while other jobs and processes change it too: ``change(current)`` gets the stored data (None:
        there is none) and returns ``(new data, events)``; new data None leaves the record as it is and records
        no event. The data and the events (``NewEvent``s, recorded for the tenant and fanned out) are stored in
        one transaction. Writers of the same connection take turns, and a write that finds the record changed
        since it was read runs ``change`` again on the fresh data, so ``change`` must be pure: no I/O, no side
        effects. Returns the data as stored. For a record several webhooks and actions move on, such as a
        DocuSign envelope's."""
        from hub.counters import reserve
        from hub.db.models import utcnow
        from hub.entities import record_hash
        from hub.events import record_event

        for _ in range(UPDATE_ATTEMPTS):
            try:
                async with self._hub.session(self.tenant_id) as session:
                    # The counter row's lock makes writers of this connection take turns (PostgreSQL); the
                    # hash compare below catches a writer that slipped in anyway (SQLite's deferred reads).
                    (seq,) = await reserve(session, f"records:{self.connection_id}")
                    row = (await session.scalars(select(Record).where(
                        Record.connection_id == self.connection_id, Record.entity == entity,
                        Record.external_id == external_id))).first()
                    current = None if row is None or row.deleted else row.data
                    new, events = change(msgspec.json.decode(msgspec.json.encode(current)))
                    if new is None:
                        return current
                    digest = record_hash(new)
                    if row is None:
                        session.add(Record(id=new_id(), tenant_id=self.tenant_id,
                                           connection_id=self.connection_id, entity=entity, external_id=external_id,
                                           data=new, hash=digest, deleted=False, seq=seq, updated_at=utcnow()))
                        await session.flush()
                    elif (row.hash, row.deleted) != (digest, False):
                        moved = await session.execute(
                            update(Record).where(Record.id == row.id, Record.hash == row.hash,
                                                 Record.deleted == row.deleted)
                            .values(data=new, hash=digest, deleted=False, seq=seq, updated_at=utcnow())
                            .execution_options(synchronize_session=False))
                        if moved.rowcount != 1:
                            raise _Changed
                    for event in events:
                        await record_event(session, self.tenant_id, event.type, event.data, provider=self.provider)
                    return new
            except (_Changed, IntegrityError):
                continue
        raise Conflict(f"the {entity} record {external_id!r} kept changing; try again", code="record_busy")

    def now(self) -> datetime:
        """The hub's time (an aware UTC datetime): what tests move with the kit's ``clock``. Use it for
        anything the plugin decides by age, such as serving a cached status instead of polling again."""
        return self._hub.clock()

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
