"""What the webhook endpoint API takes and returns. No response carries a secret except the two that
hand one out: the create response and the rotate response."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from hub.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Description = Annotated[str, msgspec.Meta(max_length=500)]
Patterns = Annotated[list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(min_length=1, max_length=100)]


class EndpointIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url
    event_types: Patterns = msgspec.field(default_factory=lambda: ["*"])
    """Exact event types or wildcards: ``invoice.paid``, ``payment.*``, ``*`` (the default: every event)."""
    description: Description | None = None
    enabled: bool = True


class EndpointPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url | msgspec.UnsetType = msgspec.UNSET
    event_types: Patterns | msgspec.UnsetType = msgspec.UNSET
    description: Description | None | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class EndpointOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int
    previous_secret_expires_at: datetime | None
    """While set, deliveries are signed with the previous secret as well as the current one."""
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut, kw_only=True):
    secret: str
    """The signing secret (``whsec_...``). Shown this once; keep it in your secret store."""


class SecretOut(msgspec.Struct, kw_only=True):
    secret: str
    """The new signing secret, shown this once."""
    previous_secret_expires_at: datetime
    """Until then deliveries carry a signature with the previous secret too."""


class AttemptOut(msgspec.Struct, kw_only=True):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    duration_ms: int | None
    error: str | None
    response_body: str | None
    """The first 2 KB of the endpoint's answer."""


class DeliveryOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    """pending (due at next_attempt_at), succeeded, failed."""
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[AttemptOut]


class RecoverOut(msgspec.Struct, kw_only=True):
    recovered: int
    """Failed deliveries queued again."""


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    """A dotted lowercase name: ``job.created``, ``invoice.paid``, ``change_order.approved`` ..."""
    data: dict[str, Any] = msgspec.field(default_factory=dict)


def endpoint_out(endpoint: WebhookEndpoint, now: datetime) -> EndpointOut:
    rotating = endpoint.previous_secret_expires_at
    return EndpointOut(
        id=endpoint.id, url=endpoint.url, description=endpoint.description, event_types=list(endpoint.event_types),
        enabled=endpoint.enabled, disabled_reason=endpoint.disabled_reason, disabled_at=endpoint.disabled_at,
        consecutive_failures=endpoint.consecutive_failures,
        previous_secret_expires_at=rotating if rotating is not None and rotating > now else None,
        created_at=endpoint.created_at, updated_at=endpoint.updated_at,
    )


def attempt_out(attempt: WebhookAttempt) -> AttemptOut:
    return AttemptOut(attempt=attempt.attempt, attempted_at=attempt.attempted_at, status_code=attempt.status_code,
                      duration_ms=attempt.duration_ms, error=attempt.error, response_body=attempt.response_body)


def delivery_out(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id, endpoint_id=delivery.endpoint_id, event_id=delivery.event_id,
        event_type=delivery.event_type, status=delivery.status, attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status_code=delivery.last_status_code, last_error=delivery.last_error,
        created_at=delivery.created_at, finished_at=delivery.finished_at,
        attempt_log=[attempt_out(a) for a in attempts],
    )
