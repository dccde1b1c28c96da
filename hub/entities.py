"""The tenant's record types, shared by every provider of a category (field names follow the product's
own schema). Outbound records are validated against these on the way in; a plugin receives them typed.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class Entity(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    id: Id
    """The record's id in the tenant's own system (the mapping's internal id)."""


class Address(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    street: Text | None = None
    city: Text | None = None
    state: Text | None = None
    zip: Text | None = None
    country: Text | None = None


class Client(Entity, kw_only=True):
    company_name: Text | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    email: Email | None = None
    phone: Text | None = None
    billing_address: Address | None = None

    def __post_init__(self) -> None:
        if not (self.company_name or self.first_name or self.last_name):
            raise ValueError("a client needs a company_name or a first/last name")

    @property
    def display_name(self) -> str:
        return self.company_name or " ".join(p for p in (self.first_name, self.last_name) if p)


class Vendor(Entity, kw_only=True):
    company_name: Text
    contact_first_name: Text | None = None
    contact_last_name: Text | None = None
    email: Email | None = None
    phone: Text | None = None
    tax_id: Text | None = None
    address: Address | None = None


class InvoiceLine(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    description: Text
    quantity: Decimal = Decimal(1)
    unit_price: Decimal
    amount: Decimal | None = None

    def __post_init__(self) -> None:
        if self.amount is None:
            self.amount = self.quantity * self.unit_price


class Invoice(Entity, kw_only=True):
    client_id: Id
    invoice_number: Text | None = None
    invoice_date: date
    due_date: date | None = None
    job_id: Id | None = None
    job_name: Text | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "USD"
    line_items: Annotated[list[InvoiceLine], msgspec.Meta(min_length=1)]
    client: Client | None = None
    """The invoice's client (its ``id`` is ``client_id``), for a provider that must have the client before
    the invoice: a plugin pushes it first (``ctx.push``) when it is not mapped yet."""

    def __post_init__(self) -> None:
        if self.client is not None and self.client.id != self.client_id:
            raise ValueError("client.id must equal client_id")

    @property
    def total(self) -> Decimal:
        return sum((line.amount or Decimal(0) for line in self.line_items), Decimal(0))


class Payment(Entity, kw_only=True):
    invoice_id: Id | None = None
    amount: Decimal
    currency: str = "USD"
    payment_date: date
    payment_method: Text | None = None
    reference_number: Text | None = None
    external_id: Id | None = None


class ScheduleItem(Entity, kw_only=True):
    title: Text
    description: Text | None = None
    start: datetime
    end: datetime
    all_day: bool = False
    location: Text | None = None
    attendees: list[Email] = []
    job_id: Id | None = None
    job_name: Text | None = None
    timezone: str | None = None
    """IANA zone of the item; when absent the tenant's default zone applies."""
    sync_to_calendar: bool = True

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("end is before start")
        if self.timezone is not None:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA time zone {self.timezone!r}") from None


class Document(Entity, kw_only=True):
    job_id: Id
    name: Text
    mime_type: Text = "application/octet-stream"
    file_id: Id | None = None
    """A file the hub keeps; or the content inline:"""
    content_base64: str | None = None
    version: Text | None = None


ENTITIES: dict[str, type[Entity]] = {
    "client": Client,
    "vendor": Vendor,
    "invoice": Invoice,
    "payment": Payment,
    "schedule_item": ScheduleItem,
    "document": Document,
}

_encoder = msgspec.json.Encoder(order="sorted")


def canonical(record: Entity) -> dict[str, Any]:
    """The record as plain JSON data, in one canonical form (what is stored and hashed)."""
    return msgspec.json.decode(_encoder.encode(record))


def record_hash(record: Entity | dict[str, Any]) -> str:
    return hashlib.sha256(_encoder.encode(record)).hexdigest()
