"""Hub records <-> Stripe objects (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec

from hub.entities import Client, Entity, Id, Text

ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                          "xaf", "xof", "xpf"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
"""Stripe's currencies whose smallest unit is not a hundredth of the major one."""

Currency = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{3}$")]
MinorAmount = Annotated[int, msgspec.Meta(ge=1, le=99_999_999)]
"""An amount in the currency's smallest unit (cents for usd), as Stripe takes it."""


class Charge(Entity, kw_only=True):
    """A charge of a saved payment method, pushed like any outbound record: its ``id`` (the tenant's) and
    content give the Stripe request its idempotency key, so a pushed charge is made once, however often its
    job runs. A declined charge is a failed item; charging again takes a new ``id``."""

    invoice_id: Id
    client_id: Id
    payment_method_id: Annotated[str, msgspec.Meta(pattern=r"^pm_[A-Za-z0-9_]+$")]
    amount: MinorAmount
    currency: Currency = "usd"
    description: Text | None = None
    client: Client | None = None
    """The client, for its Stripe customer to be created on first use."""

    def __post_init__(self) -> None:
        if self.client is not None and self.client.id != self.client_id:
            raise ValueError("client.id must equal client_id")


def to_major(amount: int, currency: str) -> Decimal:
    """Stripe's smallest-unit integer as a decimal in major units (1999 usd -> 19.99, 500 jpy -> 500)."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return Decimal(amount)
    places = 3 if currency in THREE_DECIMAL else 2
    return Decimal(amount).scaleb(-places)


def client_to_customer(client: Client, ctx: Any) -> dict[str, Any]:
    customer: dict[str, Any] = {"name": client.display_name,
                                "metadata": {"tenant_id": str(ctx.tenant_id), "client_id": client.id}}
    if client.email:
        customer["email"] = client.email
    if client.phone:
        customer["phone"] = client.phone
    address = client.billing_address
    if address is not None:
        customer["address"] = {k: v for k, v in {
            "line1": address.street, "city": address.city, "state": address.state, "postal_code": address.zip,
            "country": address.country}.items() if v}
    return customer


def customer_to_client(customer: Any, ctx: Any) -> dict[str, Any]:
    metadata = customer.get("metadata") or {}
    return {"id": metadata.get("client_id") or customer["id"], "company_name": customer.get("name"),
            "email": customer.get("email")}


def charge_to_intent(charge: Charge, ctx: Any, customer: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": charge.amount, "currency": charge.currency, "customer": customer,
        "payment_method": charge.payment_method_id, "off_session": True, "confirm": True,
        "metadata": {"tenant_id": str(ctx.tenant_id), "invoice_id": charge.invoice_id, "charge_id": charge.id},
    }
    if charge.description:
        params["description"] = charge.description
    return params


def payment_record(intent: dict[str, Any], created: int, timezone: str) -> dict[str, Any]:
    """A succeeded payment intent as the core's ``payment`` record."""
    when = datetime.fromtimestamp(created, UTC).astimezone(ZoneInfo(timezone))
    metadata = intent.get("metadata") or {}
    return {
        "id": intent["id"], "invoice_id": metadata.get("invoice_id"),
        "amount": str(to_major(intent.get("amount_received") or intent["amount"], intent["currency"])),
        "currency": intent["currency"].upper(), "payment_date": when.date().isoformat(),
        "payment_method": "stripe", "reference_number": intent.get("latest_charge") or intent["id"],
        "external_id": intent["id"],
    }


def payment_method_summary(pm: Any) -> dict[str, Any]:
    """Cards and bank accounts in one shape: brand, last4 and expiry, or bank name and last4."""
    kind = pm["type"]
    if kind == "card":
        card = pm.get("card") or {}
        return {"id": pm["id"], "type": "card", "brand": card.get("brand"), "last4": card.get("last4"),
                "exp_month": card.get("exp_month"), "exp_year": card.get("exp_year"), "bank_name": None}
    bank = pm.get("us_bank_account") or {}
    return {"id": pm["id"], "type": "bank_account", "brand": None, "last4": bank.get("last4") or "****",
            "exp_month": None, "exp_year": None, "bank_name": bank.get("bank_name") or "Bank account"}
