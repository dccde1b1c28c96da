"""Hub records <-> QuickBooks objects (the field mappings of the origin's guide). Pure functions: a third
party replaces one with ``register(EntityMapper(provider="quickbooks", ...), replace=True)``.

References to other objects (an invoice's ``CustomerRef``, a payment's invoice) are mapping lookups, not
mapper work: the syncs add and resolve them in batches."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from hub import ConnectionContext
from hub.entities import Address, Client, Invoice, Vendor


class Account(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """A chart-of-accounts entry, the inbound ``account`` entity (for cost-code mapping)."""

    id: str
    name: str
    type: str
    active: bool
    sub_type: str | None = None
    number: str | None = None
    classification: str | None = None


def number(value: Decimal | None) -> int | float | None:
    """A JSON number for an amount (QuickBooks takes numbers, not strings)."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _address(address: Address | None) -> dict[str, str] | None:
    if address is None:
        return None
    out = {"Line1": address.street, "City": address.city, "CountrySubDivisionCode": address.state,
           "PostalCode": address.zip, "Country": address.country}
    return {k: v for k, v in out.items() if v} or None


def _address_from(payload: dict[str, Any] | None) -> dict[str, str] | None:
    if not payload:
        return None
    out = {"street": payload.get("Line1"), "city": payload.get("City"),
           "state": payload.get("CountrySubDivisionCode"), "zip": payload.get("PostalCode"),
           "country": payload.get("Country")}
    return {k: v for k, v in out.items() if v} or None


def _contact(payload: dict[str, Any], email: str | None, phone: str | None) -> dict[str, Any]:
    if email:
        payload["PrimaryEmailAddr"] = {"Address": email}
    if phone:
        payload["PrimaryPhone"] = {"FreeFormNumber": phone}
    return payload


def client_to_customer(client: Client, ctx: ConnectionContext) -> dict[str, Any]:
    payload: dict[str, Any] = {"DisplayName": client.display_name[:500]}
    for key, value in (("CompanyName", client.company_name), ("GivenName", client.first_name),
                       ("FamilyName", client.last_name)):
        if value:
            payload[key] = value
    if bill := _address(client.billing_address):
        payload["BillAddr"] = bill
    return _contact(payload, client.email, client.phone)


def customer_to_client(customer: dict[str, Any], ctx: ConnectionContext) -> dict[str, Any]:
    given, family = customer.get("GivenName"), customer.get("FamilyName")
    data = {
        "id": customer["Id"],
        "company_name": customer.get("CompanyName") or (None if given or family else customer.get("DisplayName")),
        "first_name": given, "last_name": family,
        "email": (customer.get("PrimaryEmailAddr") or {}).get("Address"),
        "phone": (customer.get("PrimaryPhone") or {}).get("FreeFormNumber"),
        "billing_address": _address_from(customer.get("BillAddr")),
    }
    return {k: v for k, v in data.items() if v is not None}


def vendor_to_qbo(vendor: Vendor, ctx: ConnectionContext) -> dict[str, Any]:
    payload: dict[str, Any] = {"DisplayName": vendor.company_name[:500], "CompanyName": vendor.company_name}
    for key, value in (("GivenName", vendor.contact_first_name), ("FamilyName", vendor.contact_last_name),
                       ("TaxIdentifier", vendor.tax_id)):
        if value:
            payload[key] = value
    if bill := _address(vendor.address):
        payload["BillAddr"] = bill
    return _contact(payload, vendor.email, vendor.phone)


def qbo_to_vendor(vendor: dict[str, Any], ctx: ConnectionContext) -> dict[str, Any]:
    data = {
        "id": vendor["Id"], "company_name": vendor.get("CompanyName") or vendor.get("DisplayName"),
        "contact_first_name": vendor.get("GivenName"), "contact_last_name": vendor.get("FamilyName"),
        "email": (vendor.get("PrimaryEmailAddr") or {}).get("Address"),
        "phone": (vendor.get("PrimaryPhone") or {}).get("FreeFormNumber"),
        # QuickBooks masks a stored tax id when it is read back: keep it only if it is not masked.
        "tax_id": tax if (tax := vendor.get("TaxIdentifier")) and "X" not in tax.upper() else None,
        "address": _address_from(vendor.get("BillAddr")),
    }
    return {k: v for k, v in data.items() if v is not None}


def invoice_to_qbo(invoice: Invoice, ctx: ConnectionContext) -> dict[str, Any]:
    """Everything but ``CustomerRef``, which the invoice sync resolves through the client's mapping."""
    payload: dict[str, Any] = {
        "TxnDate": invoice.invoice_date.isoformat(),
        "Line": [
            {"LineNum": n, "Amount": number(line.amount), "Description": line.description,
             "DetailType": "SalesItemLineDetail",
             "SalesItemLineDetail": {"Qty": number(line.quantity), "UnitPrice": number(line.unit_price)}}
            for n, line in enumerate(invoice.line_items, start=1)
        ],
    }
    if invoice.due_date:
        payload["DueDate"] = invoice.due_date.isoformat()
    if invoice.invoice_number:
        payload["DocNumber"] = invoice.invoice_number[:21]
    job = invoice.job_name or invoice.job_id
    payload["PrivateNote"] = f"Job: {job}"[:4000] if job else "Job: N/A"
    return payload


def qbo_to_invoice(invoice: dict[str, Any], ctx: ConnectionContext) -> dict[str, Any]:
    """``client_id`` is QuickBooks' customer id here; the invoice pull swaps in the hub's id where mapped."""
    lines = [
        {"description": line.get("Description") or "", "amount": str(line.get("Amount", 0)),
         "quantity": str((line.get("SalesItemLineDetail") or {}).get("Qty", 1)),
         "unit_price": str((line.get("SalesItemLineDetail") or {}).get("UnitPrice", line.get("Amount", 0)))}
        for line in invoice.get("Line") or [] if line.get("DetailType") == "SalesItemLineDetail"
    ]
    data = {
        "id": invoice["Id"], "client_id": (invoice.get("CustomerRef") or {}).get("value"),
        "invoice_number": invoice.get("DocNumber"), "invoice_date": invoice.get("TxnDate"),
        "due_date": invoice.get("DueDate"), "currency": (invoice.get("CurrencyRef") or {}).get("value") or "USD",
        "line_items": lines,
    }
    return {k: v for k, v in data.items() if v is not None}


def qbo_to_payment(payment: dict[str, Any], ctx: ConnectionContext) -> dict[str, Any]:
    """``invoice_id`` is left out here; the payment pull links the hub's invoice through the mapping."""
    data = {
        "id": payment["Id"], "external_id": payment["Id"], "amount": str(payment.get("TotalAmt", 0)),
        "currency": (payment.get("CurrencyRef") or {}).get("value") or "USD",
        "payment_date": payment.get("TxnDate"),
        "payment_method": (payment.get("PaymentMethodRef") or {}).get("name"),
        "reference_number": payment.get("PaymentRefNum"),
    }
    return {k: v for k, v in data.items() if v is not None}


def linked_invoices(payment: dict[str, Any]) -> list[tuple[str, str]]:
    """(QuickBooks invoice id, amount applied to it) for each invoice a payment pays."""
    return [
        (str(linked["TxnId"]), str(line.get("Amount", 0)))
        for line in payment.get("Line") or []
        for linked in line.get("LinkedTxn") or [] if linked.get("TxnType") == "Invoice" and linked.get("TxnId")
    ]


def qbo_to_account(account: dict[str, Any], ctx: ConnectionContext) -> dict[str, Any]:
    data = {
        "id": account["Id"], "name": account.get("Name") or account.get("FullyQualifiedName") or account["Id"],
        "type": account.get("AccountType") or "", "sub_type": account.get("AccountSubType"),
        "number": account.get("AcctNum"), "active": account.get("Active", True),
        "classification": account.get("Classification"),
    }
    return {k: v for k, v in data.items() if v is not None}
