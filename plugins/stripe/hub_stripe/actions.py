"""The Stripe actions (``POST /v1/connections/stripe/actions/{name}``). Every write carries an
``Idempotency-Key``: the tenant's own ``idempotency_key`` when it sends one (as Stripe's API takes it),
else one derived from the request itself (connection, operation, parameters), so a repeated request gets
Stripe's first answer back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
import stripe

from hub import Conflict, ConnectionContext, HubError
from hub.entities import Client, Id, Text
from hub_stripe.client import StripeConfig, connection_sdk, idempotency_key, plain, sdk, translate
from hub_stripe.mappers import Charge, Currency, MinorAmount, payment_method_summary
from hub_stripe.syncs import customer_for

CARD_ERRORS = frozenset({
    "card_declined", "expired_card", "incorrect_cvc", "incorrect_number", "incorrect_zip", "insufficient_funds",
    "processing_error", "authentication_required", "card_decline_rate_limit_exceeded",
})
"""Stripe's card errors (HTTP 402): the payment was refused, the request was fine."""

Key = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=2000)]


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CustomerOut(msgspec.Struct):
    client_id: str
    customer_id: str
    created: bool


class PaymentIntentIn(Input, kw_only=True):
    invoice_id: Id
    amount: MinorAmount
    """In the currency's smallest unit: 1999 is $19.99."""
    currency: Currency = "usd"
    client_id: Id
    client: Client | None = None
    """The client, for its Stripe customer to be created on first use."""
    description: Text | None = None
    idempotency_key: Key | None = None


class PaymentIntentOut(msgspec.Struct):
    payment_intent_id: str
    client_secret: str
    status: str
    customer_id: str


class SetupIntentIn(Input, kw_only=True):
    client_id: Id
    client: Client | None = None
    idempotency_key: Key | None = None


class SetupIntentOut(msgspec.Struct):
    setup_intent_id: str
    client_secret: str
    customer_id: str


class ChargeIn(Input, kw_only=True):
    charge_id: Id | None = None
    """Your id of this charge (default: the invoice id, so an invoice is charged once). Repeating a charge
    id repeats nothing at Stripe; a new charge of the same invoice takes a new one."""
    invoice_id: Id
    client_id: Id
    client: Client | None = None
    payment_method_id: Annotated[str, msgspec.Meta(pattern=r"^pm_[A-Za-z0-9_]+$")]
    amount: MinorAmount
    currency: Currency = "usd"
    description: Text | None = None


class ChargeOut(msgspec.Struct):
    charge_id: str
    payment_intent_id: str
    status: str


class PaymentMethodsIn(Input, kw_only=True):
    client_id: Id


class PaymentMethod(msgspec.Struct):
    id: str
    type: str
    """``card`` or ``bank_account``."""
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    bank_name: str | None


class PaymentMethodsOut(msgspec.Struct):
    payment_methods: list[PaymentMethod]


class AccountLinkIn(Input, kw_only=True):
    return_url: Url
    refresh_url: Url | None = None
    """Where Stripe sends the user when the link has expired (default: return_url)."""


class AccountLinkOut(msgspec.Struct):
    url: str
    expires_at: datetime


class AccountOut(msgspec.Struct):
    account_id: str
    name: str | None
    charges_enabled: bool


def _key(ctx: ConnectionContext, operation: str, params: dict[str, Any], given: str | None) -> str:
    return idempotency_key(ctx, operation, {"tenant_key": given} if given else params)


class Actions:
    def __init__(self, config: StripeConfig) -> None:
        self.config = config

    async def create_customer(self, ctx: ConnectionContext, client: Client) -> CustomerOut:
        result = (await ctx.push("client", [client]))[client.id]
        if result.outcome == "failed" or not result.external_id:
            raise HubError(f"Stripe refused the customer: {result.error}", code="customer_refused", status=422)
        return CustomerOut(client_id=client.id, customer_id=result.external_id, created=result.outcome == "created")

    async def create_payment_intent(self, ctx: ConnectionContext, data: PaymentIntentIn) -> PaymentIntentOut:
        customer = await customer_for(ctx, data.client_id, data.client)
        params: dict[str, Any] = {
            "amount": data.amount, "currency": data.currency, "customer": customer,
            "metadata": {"tenant_id": str(ctx.tenant_id), "invoice_id": data.invoice_id, "client_id": data.client_id},
            "automatic_payment_methods": {"enabled": True},
        }
        if data.description:
            params["description"] = data.description
        options = {"idempotency_key": _key(ctx, "payment_intent", params, data.idempotency_key)}
        intent = await _call(connection_sdk(self.config, ctx).v1.payment_intents.create_async(params=params,
                                                                                             options=options))
        return PaymentIntentOut(payment_intent_id=intent.id, client_secret=intent.client_secret, status=intent.status,
                                customer_id=customer)

    async def create_setup_intent(self, ctx: ConnectionContext, data: SetupIntentIn) -> SetupIntentOut:
        customer = await customer_for(ctx, data.client_id, data.client)
        params = {"customer": customer, "payment_method_types": ["card", "us_bank_account"], "usage": "off_session",
                  "metadata": {"tenant_id": str(ctx.tenant_id), "client_id": data.client_id}}
        # Without the tenant's key, this request's own: a setup intent moves no money, and a client saving
        # a second card needs a new one.
        key = _key(ctx, "setup_intent", params | {"request": str(uuid.uuid4())}, data.idempotency_key)
        intent = await _call(connection_sdk(self.config, ctx).v1.setup_intents.create_async(
            params=params, options={"idempotency_key": key}))
        return SetupIntentOut(setup_intent_id=intent.id, client_secret=intent.client_secret, customer_id=customer)

    async def charge_payment_method(self, ctx: ConnectionContext, data: ChargeIn) -> ChargeOut:
        charge = Charge(id=data.charge_id or data.invoice_id, invoice_id=data.invoice_id, client_id=data.client_id,
                        client=data.client, payment_method_id=data.payment_method_id, amount=data.amount,
                        currency=data.currency, description=data.description)
        result = (await ctx.push("charge", [charge]))[charge.id]
        if result.outcome == "failed" or not result.external_id:
            code, _, message = (result.error or "").partition(": ")
            if not message:
                code, message = "charge_failed", result.error or "the charge failed"
            status = 402 if code in CARD_ERRORS else 409 if code == "charge_exists" else 422
            raise HubError(message, code=code, status=status)
        intent = await _call(connection_sdk(self.config, ctx).v1.payment_intents.retrieve_async(result.external_id))
        return ChargeOut(charge_id=charge.id, payment_intent_id=intent.id, status=intent.status)

    async def list_payment_methods(self, ctx: ConnectionContext, data: PaymentMethodsIn) -> PaymentMethodsOut:
        mapped = await ctx.external_ids("client", [data.client_id])
        if data.client_id not in mapped:
            return PaymentMethodsOut(payment_methods=[])
        service = connection_sdk(self.config, ctx).v1.customers.payment_methods
        found = []
        for kind in ("card", "us_bank_account"):
            params: dict[str, Any] = {"type": kind, "limit": 100}
            while True:
                page = await _call(service.list_async(mapped[data.client_id], params=params))
                found.extend(msgspec.convert(payment_method_summary(plain(pm)), PaymentMethod) for pm in page.data)
                if not page.has_more or not page.data:
                    break
                params["starting_after"] = page.data[-1].id
        return PaymentMethodsOut(payment_methods=found)

    async def create_account_link(self, ctx: ConnectionContext, data: AccountLinkIn) -> AccountLinkOut:
        """Platform mode: a link to Stripe's hosted onboarding for the tenant's connected account (also
        while the connection is pending: that is what finishes it)."""
        if ctx.metadata.get("mode") != "platform":
            raise Conflict("this connection uses its own Stripe key: there is no onboarding", code="not_platform")
        if not self.config.platform_key:
            raise Conflict("the operator has not configured the Stripe platform key", code="provider_not_configured")
        params = {"account": ctx.account_id, "type": "account_onboarding", "return_url": data.return_url,
                  "refresh_url": data.refresh_url or data.return_url}
        link = await _call(sdk(self.config, ctx.http, self.config.platform_key).v1.account_links.create_async(
            params=params, options={"idempotency_key": idempotency_key(ctx, "account_link",
                                                                       params | {"request": str(uuid.uuid4())})}))
        return AccountLinkOut(url=link.url, expires_at=datetime.fromtimestamp(link.expires_at).astimezone())

    async def get_account(self, ctx: ConnectionContext, data: Input) -> AccountOut:
        account = plain(await _call(connection_sdk(self.config, ctx).v1.accounts.retrieve_current_async()))
        profile = account.get("business_profile") or {}
        return AccountOut(account_id=account["id"], name=profile.get("name"),
                          charges_enabled=bool(account.get("charges_enabled")))


async def _call(awaitable):
    try:
        return await awaitable
    except stripe.StripeError as exc:
        raise translate(exc) from None
