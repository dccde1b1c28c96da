"""The runtime objects a plugin registers. Each is plain data plus an async callable; the hub calls them
with a ``ConnectionContext`` (the tenant's connection, a valid token, the shared HTTP client) and never
hands a plugin a database session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from hub.context import ConnectionContext


@dataclass(frozen=True, kw_only=True)
class Action:
    """One provider operation behind ``POST /v1/connections/{provider}/actions/{name}``.

    ``input`` and ``output`` are msgspec Struct types: the body is validated against ``input`` (422 on
    failure) and the result is encoded from ``output``; both are published as JSON schema.
    """

    provider: str
    name: str
    input: type[msgspec.Struct]
    output: type[msgspec.Struct]
    handler: Callable[[ConnectionContext, Any], Awaitable[Any]]
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class EntityMapper:
    """Hub record <-> provider payload for one (provider, entity). Pure functions: no I/O."""

    provider: str
    entity: str
    to_provider: Callable[[Any, ConnectionContext], dict[str, Any]] | None = None
    from_provider: Callable[[Mapping[str, Any], ConnectionContext], Any] | None = None


class OutboundItem(msgspec.Struct, kw_only=True):
    """One hub record to push, with the provider id it is mapped to (None: create it).

    ``record`` is the hub record, typed (``hub.entities.Client`` ...); turn it into the provider's payload
    with the registered mapper. ``idempotency_key`` is derived from (connection, entity, internal id,
    record hash): send it where the provider takes one, so a repeated push never creates a duplicate.
    """

    internal_id: str
    record: Any
    external_id: str | None = None
    metadata: dict[str, Any] = {}
    """What the plugin kept with the mapping last time (``PushResult.metadata``), e.g. a version token."""
    idempotency_key: str


class PushResult(msgspec.Struct, kw_only=True):
    internal_id: str
    external_id: str | None = None
    outcome: Literal["created", "updated", "unchanged", "failed"]
    error: str | None = None
    metadata: dict[str, Any] | None = None
    """Kept with the mapping and handed back on the next push (e.g. QuickBooks' SyncToken); None keeps
    what was kept before."""


class InboundRecord(msgspec.Struct, kw_only=True):
    """One provider record, already mapped to the hub's shape for its entity."""

    external_id: str
    data: dict[str, Any]


class Page(msgspec.Struct, kw_only=True):
    """One page of an inbound read. ``cursor`` is saved only after the page is stored; ``deleted`` lists
    the external ids the provider reports deleted; ``has_more`` asks for the next page right away."""

    records: list[InboundRecord]
    cursor: str | None
    deleted: list[str] = []
    has_more: bool = False


@dataclass(frozen=True, kw_only=True)
class OutboundSync:
    """Push hub records to the provider in batches of at most ``batch_size``."""

    provider: str
    entity: str
    push: Callable[[ConnectionContext, Sequence[OutboundItem]], Awaitable[Sequence[PushResult]]]
    batch_size: int = 1
    schema: type[msgspec.Struct] | None = None
    """The record type, for an entity the core does not define (``hub.entities.ENTITIES``)."""
    direction: Literal["outbound"] = "outbound"


@dataclass(frozen=True, kw_only=True)
class InboundSync:
    """Pull provider records page by page from a cursor (None: a full read)."""

    provider: str
    entity: str
    pull: Callable[[ConnectionContext, str | None], Awaitable[Page]]
    every: timedelta | None = None
    """Default interval of the periodic pull; connections can switch it off or change it."""
    schema: type[msgspec.Struct] | None = None
    """The record type, for an entity the core does not define (``hub.entities.ENTITIES``)."""
    direction: Literal["inbound"] = "inbound"


class WebhookRequest(msgspec.Struct, kw_only=True):
    """An inbound webhook as it arrived: raw bytes, lower-cased headers, and the public URL it was sent to."""

    body: bytes
    headers: dict[str, str]
    url: str
    query: dict[str, str] = {}


class VerifiedEvent(msgspec.Struct, kw_only=True):
    """One verified provider event. ``account_id`` routes it to the connection with that external account
    id; ``event_id`` deduplicates redeliveries (None: the body hash is used)."""

    type: str
    payload: Any
    account_id: str | None
    event_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class WebhookVerifier:
    """Checks an inbound webhook (raise ``Unauthorized`` on a bad signature) and returns its events."""

    provider: str
    verify: Callable[[WebhookRequest], Awaitable[Sequence[VerifiedEvent]]]
    handle: Callable[[ConnectionContext, VerifiedEvent], Awaitable[None]] | None = None
    max_body_bytes: int = 1_048_576


SyncHandler = OutboundSync | InboundSync
