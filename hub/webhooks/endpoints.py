"""A tenant's webhook endpoints (create, change, rotate the secret, enable, disable, delete) and their
deliveries (the log, redeliver, recover).

The signing secret is generated here, shown once (in the create and rotate responses), and stored
encrypted with the vault, bound to the tenant, the endpoint row and the field. After a rotation the
previous secret keeps signing, beside the new one, for ``ROTATION_OVERLAP``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from hub.errors import Conflict, NotFound
from hub.ids import new_id
from hub.webhooks.fanout import queued
from hub.webhooks.patterns import check_patterns
from hub.webhooks.signing import new_secret

if TYPE_CHECKING:
    from hub.runtime import Hub

ROTATION_OVERLAP = timedelta(hours=24)
DISABLED_BY_TENANT = "disabled by the tenant"
"""The reason of an endpoint the tenant switched off (any other reason is the hub's own decision)."""
def secrets_for_signing(hub: Hub, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    secrets = [hub.vault.decrypt(endpoint.secret_enc, endpoint.tenant_id, endpoint.id, "secret")]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_enc and expires is not None and expires > now:
        secrets.append(hub.vault.decrypt(endpoint.previous_secret_enc, endpoint.tenant_id, endpoint.id,
                                         "previous_secret"))
    return secrets


async def get_endpoint(session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id))
    if endpoint is None:
        raise NotFound("no such webhook endpoint", code="webhook_endpoint_not_found")
    return endpoint


async def list_endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> list[WebhookEndpoint]:
    return list((await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
                                       .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id))).all())


async def create_endpoint(hub: Hub, session: AsyncSession, tenant_id: uuid.UUID, *, url: str,
                          event_types: list[str], description: str | None = None,
                          enabled: bool = True) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret (the only time the secret leaves the vault)."""
    patterns = check_patterns(event_types)
    await hub.webhooks.guard.check_url(url)
    now = hub.clock()
    endpoint = WebhookEndpoint(id=new_id(), tenant_id=tenant_id, url=url, description=description,
                               event_types=patterns, enabled=enabled, consecutive_failures=0,
                               created_at=now, updated_at=now)
    if not enabled:
        endpoint.disabled_reason, endpoint.disabled_at = DISABLED_BY_TENANT, now
    secret = new_secret()
    endpoint.secret_enc = hub.vault.encrypt(secret, tenant_id, endpoint.id, "secret")
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def update_endpoint(hub: Hub, session: AsyncSession, endpoint: WebhookEndpoint,
                          changes: dict[str, Any]) -> WebhookEndpoint:
    if "url" in changes:
        await hub.webhooks.guard.check_url(changes["url"])
        endpoint.url = changes["url"]
    if "event_types" in changes:
        endpoint.event_types = check_patterns(changes["event_types"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if "enabled" in changes:
        if changes["enabled"]:
            enable(endpoint)
        else:
            await disable(hub, session, endpoint, DISABLED_BY_TENANT, record=False)
    endpoint.updated_at = hub.clock()
    await session.flush()
    return endpoint


def enable(endpoint: WebhookEndpoint) -> None:
    """Deliveries resume for new events; the failure count starts again from zero."""
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, None, None
    endpoint.consecutive_failures = 0


async def disable(hub: Hub, session: AsyncSession, endpoint: WebhookEndpoint, reason: str, *,
                  record: bool) -> None:
    """Stop delivering: the endpoint's pending deliveries end ``failed`` (``recover`` can send them again
    after it is enabled). ``record`` adds an ``endpoint.disabled`` event — the hub's own decision, which the
    tenant's other endpoints hear about (never this one: it is disabled before the event fans out)."""
    from hub.events import record_event

    if not endpoint.enabled:
        return
    now = hub.clock()
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
    endpoint.updated_at = now
    await session.flush()
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .values(status="failed", finished_at=now, next_attempt_at=None, locked_until=None,
                last_error=f"not sent: the endpoint was disabled ({reason})")
        .execution_options(synchronize_session=False)
    )
    if record:
        await record_event(session, endpoint.tenant_id, "endpoint.disabled",
                           {"endpoint_id": str(endpoint.id), "url": endpoint.url, "reason": reason})


async def rotate_secret(hub: Hub, session: AsyncSession, endpoint: WebhookEndpoint) -> tuple[str, datetime]:
    """A new secret; the current one keeps signing beside it until the returned time."""
    now = hub.clock()
    current = hub.vault.decrypt(endpoint.secret_enc, endpoint.tenant_id, endpoint.id, "secret")
    secret = new_secret()
    endpoint.previous_secret_enc = hub.vault.encrypt(current, endpoint.tenant_id, endpoint.id, "previous_secret")
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret_enc = hub.vault.encrypt(secret, endpoint.tenant_id, endpoint.id, "secret")
    endpoint.updated_at = now
    await session.flush()
    return secret, endpoint.previous_secret_expires_at


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """The endpoint goes, and with it its deliveries and their attempts (pending ones are never sent)."""
    await session.delete(endpoint)
    await session.flush()


def require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict("the endpoint is disabled; enable it first", code="webhook_endpoint_disabled")


# -- deliveries --------------------------------------------------------------------------------------


async def list_deliveries(session: AsyncSession, endpoint: WebhookEndpoint, *, status: str | None = None,
                          limit: int = 50, before: uuid.UUID | None = None,
                          ) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """The endpoint's deliveries, newest first, each with every attempt (two queries)."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id,
                                         WebhookDelivery.tenant_id == endpoint.tenant_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if before is not None:
        anchor = await get_delivery(session, endpoint, before)
        stmt = stmt.where(or_(WebhookDelivery.created_at < anchor.created_at,
                              and_(WebhookDelivery.created_at == anchor.created_at, WebhookDelivery.id < anchor.id)))
    deliveries = list((await session.scalars(
        stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit))).all())
    return await _with_attempts(session, deliveries)


async def get_delivery(session: AsyncSession, endpoint: WebhookEndpoint, delivery_id: uuid.UUID) -> WebhookDelivery:
    delivery = await session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id,
        WebhookDelivery.tenant_id == endpoint.tenant_id))
    if delivery is None:
        raise NotFound("no such delivery for this endpoint", code="webhook_delivery_not_found")
    return delivery


async def _with_attempts(session: AsyncSession, deliveries: list[WebhookDelivery]
                         ) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for attempt in await session.scalars(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(by_delivery)))
                .order_by(WebhookAttempt.attempted_at, WebhookAttempt.attempt)):
            by_delivery[attempt.delivery_id].append(attempt)
    return [(d, by_delivery[d.id]) for d in deliveries]


async def delivery_with_attempts(session: AsyncSession, delivery: WebhookDelivery
                                 ) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    return (await _with_attempts(session, [delivery]))[0]


_AGAIN = {"status": "pending", "attempts": 0, "locked_until": None, "finished_at": None}


async def redeliver(hub: Hub, session: AsyncSession, endpoint: WebhookEndpoint,
                    delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished delivery again, now, with a fresh set of attempts (same ``webhook-id``)."""
    require_enabled(endpoint)
    if delivery.status == "pending":
        raise Conflict("the delivery is still pending; it is sent when due", code="webhook_delivery_pending")
    await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id)
                          .values(**_AGAIN, next_attempt_at=hub.clock())
                          .execution_options(synchronize_session=False))
    await session.refresh(delivery)
    queued(session)
    return delivery


async def recover(hub: Hub, session: AsyncSession, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Queue again, now, every delivery to the endpoint that failed and was created since ``since``."""
    require_enabled(endpoint)
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.tenant_id == endpoint.tenant_id,
               WebhookDelivery.status == "failed", WebhookDelivery.created_at >= since)
        .values(**_AGAIN, next_attempt_at=hub.clock())
        .execution_options(synchronize_session=False))
    if result.rowcount:
        queued(session)
    return result.rowcount
