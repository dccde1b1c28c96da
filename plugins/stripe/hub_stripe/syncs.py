"""Outbound syncs: clients to Stripe customers, and charges of saved payment methods. Each request carries
the item's idempotency key (derived by the hub from the connection, entity, record id and content), so a
job that dies after Stripe answered and runs again gets Stripe's first answer back, not a second charge."""

from __future__ import annotations

from collections.abc import Sequence

import stripe

from hub import ConnectionContext, HubError, OutboundItem, PushResult, ValidationFailed
from hub.entities import Client
from hub_stripe.client import StripeConfig, connection_sdk, translate


async def customer_for(ctx: ConnectionContext, client_id: str, client: Client | None) -> str:
    """The client's one Stripe customer: created on first use (or updated when the client changed), through
    the client sync, so its mapping is kept like any pushed record's."""
    if client is not None:
        result = (await ctx.push("client", [client]))[client.id]
        if result.outcome == "failed" or not result.external_id:
            raise ValidationFailed(f"Stripe refused client {client.id}: {result.error}", code="client_refused")
        return result.external_id
    mapped = await ctx.external_ids("client", [client_id])
    if client_id not in mapped:
        raise ValidationFailed(f"client {client_id} has no Stripe customer yet: send the client with it",
                               code="client_not_mapped")
    return mapped[client_id]


def _failed(item: OutboundItem, message: str, code: str | None = None) -> PushResult:
    """A refused item; a charge's error starts with its code (``card_declined: Your card was declined.``)."""
    return PushResult(internal_id=item.internal_id, external_id=item.external_id, outcome="failed",
                      error=f"{code}: {message}" if code else message)


def _refused(exc: stripe.StripeError) -> HubError:
    """Stripe's refusal of one item; raised instead when it is Stripe or the network failing (the job is
    retried with the same keys)."""
    error = translate(exc)
    if error.status >= 500:
        raise error from None
    return error


class Pushes:
    def __init__(self, config: StripeConfig) -> None:
        self.config = config

    async def customers(self, ctx: ConnectionContext, items: Sequence[OutboundItem]) -> list[PushResult]:
        sdk = connection_sdk(self.config, ctx)
        results = []
        for item in items:
            params = ctx.to_provider("client", item.record)
            options = {"idempotency_key": f"hub-client-{item.idempotency_key}"}
            try:
                if item.external_id:
                    customer = await sdk.v1.customers.update_async(item.external_id, params=params, options=options)
                else:
                    customer = await sdk.v1.customers.create_async(params=params, options=options)
            except stripe.StripeError as exc:
                results.append(_failed(item, _refused(exc).message))
                continue
            results.append(PushResult(internal_id=item.internal_id, external_id=customer.id,
                                      outcome="updated" if item.external_id else "created"))
        return results

    async def charges(self, ctx: ConnectionContext, items: Sequence[OutboundItem]) -> list[PushResult]:
        from hub_stripe.mappers import charge_to_intent

        sdk = connection_sdk(self.config, ctx)
        results = []
        for item in items:
            charge = item.record
            if item.external_id:
                results.append(_failed(item, f"charge {charge.id} was made already ({item.external_id}); a new "
                                             "charge takes a new id", "charge_exists"))
                continue
            try:
                customer = await customer_for(ctx, charge.client_id, charge.client)
            except ValidationFailed as exc:
                results.append(_failed(item, exc.message, exc.code))
                continue
            try:
                intent = await sdk.v1.payment_intents.create_async(
                    params=charge_to_intent(charge, ctx, customer),
                    options={"idempotency_key": f"hub-charge-{item.idempotency_key}"})
            except stripe.StripeError as exc:
                error = _refused(exc)
                results.append(_failed(item, error.message, error.code))
                continue
            results.append(PushResult(internal_id=item.internal_id, external_id=intent.id, outcome="created",
                                      metadata={"status": intent.status}))
        return results
