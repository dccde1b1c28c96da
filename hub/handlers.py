"""The runtime objects a plugin registers. Each is plain data plus an async callable; the hub calls them
with a ``ConnectionContext`` (the tenant's connection, a valid token, the shared HTTP client) and never
hands a plugin a database session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from hub.types import AccountInfo

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
    pending_ok: bool = False
    """Also runs on a ``pending`` connection: an action that finishes the onboarding (a new account link)."""


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


class NewEvent(msgspec.Struct, kw_only=True):
    """A normalized hub event a handler asks the hub to record (``payment.succeeded``, ``sms.received``)."""

    type: str
    data: dict[str, Any]


class InboundRecord(msgspec.Struct, kw_only=True):
    """One provider record, already mapped to the hub's shape for its entity."""

    external_id: str
    data: dict[str, Any]
    new_events: list[NewEvent] = []
    """Recorded, in the same transaction, only when the hub stores this external id for the first time:
    a payment read again (changed or not) never records its ``payment.received`` twice."""
    change_events: list[NewEvent] = []
    """Recorded, in the same transaction, only when the hub already held this external id and this version
    differs from the one it held (or the one it held was deleted): an event moved in the provider records
    its ``calendar.event.updated`` once, and reading the same version again records nothing."""


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
    """An inbound webhook as it arrived: raw bytes, lower-cased headers, and the public URL it was sent
    to (``HUB_PUBLIC_URL`` + path + query string: what a provider that signs the URL, like Twilio, signed)."""

    body: bytes
    headers: dict[str, str]
    url: str
    query: dict[str, str] = {}


class VerifiedEvent(msgspec.Struct, kw_only=True):
    """One provider event from a verified webhook. ``account_id`` routes it to the connection with that
    external account id (on a per-connection URL the URL decides); ``event_id`` deduplicates redeliveries
    (None: a hash of the body and the event's place in it)."""

    type: str
    payload: Any
    account_id: str | None = None
    event_id: str | None = None


class WebhookOutcome(msgspec.Struct, kw_only=True):
    """What handling one provider event changes. The hub applies all of it in one transaction together
    with marking the event processed, so a retried handler never records an event twice."""

    records: dict[str, list[InboundRecord]] = {}
    """Entity -> records to store (latest version per external id), as an inbound read would."""
    deleted: dict[str, list[str]] = {}
    """Entity -> external ids the provider reports deleted."""
    events: list[NewEvent] = []
    account: AccountInfo | None = None
    """The connection's account as the provider now reports it (name, metadata, and ``pending``: a pending
    connection becomes ``connected`` when it is False, a connected one ``pending`` again when it is True)."""
    syncs: list[str] = []
    """Inbound entities to read incrementally now (a push notification that only says "something changed").
    A read already running is followed by another when it ends: it may have asked the provider too early."""


class WebhookReply(msgspec.Struct, kw_only=True):
    """What the hub answers the provider once the events are stored (Twilio expects TwiML)."""

    status: int = 200
    body: bytes = b'{"received":true}'
    content_type: str = "application/json"


@dataclass(frozen=True, kw_only=True)
class WebhookVerifier:
    """Inbound webhooks of one provider, at ``POST /v1/webhooks/{provider}`` (events routed by their
    ``account_id``) and ``POST /v1/webhooks/{provider}/{connection_id}`` (for secrets kept per connection).

    ``verify(request, connection)`` checks the signature over the raw bytes and raises ``Unauthorized``
    when it does not hold (compare in constant time; refuse stale timestamps where the provider signs one;
    accept every active secret). ``connection`` is the connection of a per-connection URL, else None.
    It may be a coroutine function. ``parse(request)`` then returns the body's events; anything it raises
    means the (authentic) body is unusable: it is stored as failed with the reason.
    ``handle(connection, event)`` runs later in a retried job and returns what the event changes.
    """

    provider: str
    verify: Callable[[WebhookRequest, ConnectionContext | None], Awaitable[None] | None]
    parse: Callable[[WebhookRequest], Sequence[VerifiedEvent]]
    handle: Callable[[ConnectionContext, VerifiedEvent], Awaitable[WebhookOutcome | None]] | None = None
    reply: Callable[[WebhookRequest, Sequence[VerifiedEvent]], WebhookReply] | None = None
    """The answer in the provider's format; None: 200 ``{"received": true}``."""
    sample: Callable[[str, str], WebhookRequest] | None = None
    """``sample(event_type, url)``: a correctly signed example webhook (``hub webhooks send-test``)."""
    per_connection: bool = False
    """Only the per-connection URL is accepted (the secret belongs to the connection)."""
    max_body_bytes: int = 1_048_576


SyncHandler = OutboundSync | InboundSync
