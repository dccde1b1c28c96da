"""Actions: ``create_invoice`` (pushes the invoice, and its client first when QuickBooks lacks it, saving
both mappings as a sync would), ``get_accounts`` (the chart of accounts) and ``get_company_info``."""

from __future__ import annotations

import msgspec

from hub import ConnectionContext, ValidationFailed
from hub.entities import Invoice
from hub_quickbooks.client import QuickBooksApi
from hub_quickbooks.config import Hosts
from hub_quickbooks.mappers import Account


class CreateInvoiceOut(msgspec.Struct, kw_only=True):
    invoice_id: str
    quickbooks_invoice_id: str
    outcome: str
    """``created``, ``updated``, or ``unchanged`` when QuickBooks already has this version."""
    quickbooks_customer_id: str | None = None


class GetAccountsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    active_only: bool = True


class AccountsOut(msgspec.Struct, kw_only=True):
    accounts: list[Account]


class NoInput(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CompanyInfoOut(msgspec.Struct, kw_only=True):
    realm_id: str
    company_name: str | None
    legal_name: str | None = None
    country: str | None = None
    email: str | None = None


async def create_invoice(ctx: ConnectionContext, data: Invoice) -> CreateInvoiceOut:
    result = (await ctx.push("invoice", [data]))[data.id]
    if result.outcome == "failed" or not result.external_id:
        raise ValidationFailed(f"QuickBooks did not take the invoice: {result.error}", code="quickbooks_rejected")
    customer = (await ctx.external_ids("client", [data.client_id])).get(data.client_id)
    return CreateInvoiceOut(invoice_id=data.id, quickbooks_invoice_id=result.external_id, outcome=result.outcome,
                            quickbooks_customer_id=customer)


def make_get_accounts(hosts: Hosts):
    async def get_accounts(ctx: ConnectionContext, data: GetAccountsIn) -> AccountsOut:
        rows = await QuickBooksApi(ctx, hosts).query_all("Account", "Active = true" if data.active_only else "")
        return AccountsOut(accounts=[msgspec.convert(ctx.from_provider("account", row), Account) for row in rows])

    return get_accounts


def make_get_company_info(hosts: Hosts):
    async def get_company_info(ctx: ConnectionContext, data: NoInput) -> CompanyInfoOut:
        info = await QuickBooksApi(ctx, hosts).company_info()
        return CompanyInfoOut(realm_id=ctx.account_id or "", company_name=info.get("CompanyName"),
                              legal_name=info.get("LegalName"), country=info.get("Country"),
                              email=(info.get("Email") or {}).get("Address"))

    return get_company_info
