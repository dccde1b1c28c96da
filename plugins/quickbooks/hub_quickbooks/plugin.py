"""Hook implementations only: what QuickBooks Online brings to the hub."""

from __future__ import annotations

import logging
from datetime import timedelta

from hub import (
    Action,
    EntityMapper,
    InboundSync,
    OutboundSync,
    ProviderInfo,
    ValidationFailed,
    WebhookVerifier,
    hookimpl,
)
from hub.entities import Invoice
from hub_quickbooks import actions, mappers, webhooks
from hub_quickbooks.auth import IntuitOAuth2
from hub_quickbooks.config import RATE_LIMITS, SCOPE, SLUG, Hosts, QuickBooksSettings
from hub_quickbooks.syncs import BATCH_SIZE, Inbound, Outbound

log = logging.getLogger("hub_quickbooks")

AUTO_SYNC = {"client.created": "client", "client.updated": "client", "vendor.created": "vendor",
             "vendor.updated": "vendor", "invoice.created": "invoice"}


@hookimpl
def hub_register_providers(register):
    register(ProviderInfo(
        slug=SLUG, title="QuickBooks Online", category="accounting", auth_kind="oauth2",
        description="Clients, vendors and invoices to QuickBooks; payments, changes and the chart of accounts back.",
        scopes=(SCOPE,), settings=QuickBooksSettings, webhooks=True,
        rate_limits=RATE_LIMITS,
        docs_url="https://developer.intuit.com/app/developer/qbo/docs/get-started",
    ))


@hookimpl
def hub_register_auth(register, config):
    register(IntuitOAuth2(Hosts.from_environ(config.environ), config.environ.get("QUICKBOOKS_CLIENT_ID"),
                          config.environ.get("QUICKBOOKS_CLIENT_SECRET")))


@hookimpl
def hub_register_entity_mappers(register):
    register(EntityMapper(provider=SLUG, entity="client", to_provider=mappers.client_to_customer,
                          from_provider=mappers.customer_to_client))
    register(EntityMapper(provider=SLUG, entity="vendor", to_provider=mappers.vendor_to_qbo,
                          from_provider=mappers.qbo_to_vendor))
    register(EntityMapper(provider=SLUG, entity="invoice", to_provider=mappers.invoice_to_qbo,
                          from_provider=mappers.qbo_to_invoice))
    register(EntityMapper(provider=SLUG, entity="payment", from_provider=mappers.qbo_to_payment))
    register(EntityMapper(provider=SLUG, entity="account", from_provider=mappers.qbo_to_account))


@hookimpl
def hub_register_syncs(register, config):
    hosts = Hosts.from_environ(config.environ)
    for entity in ("client", "vendor", "invoice"):
        register(OutboundSync(provider=SLUG, entity=entity, push=Outbound(hosts, entity), batch_size=BATCH_SIZE))
    for entity, every in (("payment", timedelta(hours=1)), ("client", None), ("vendor", None),
                          ("invoice", None), ("account", timedelta(days=1))):
        register(InboundSync(provider=SLUG, entity=entity, pull=Inbound(hosts, entity), every=every,
                             schema=mappers.Account if entity == "account" else None))


@hookimpl
def hub_register_webhook_verifiers(register, config):
    tokens = webhooks.verifier_tokens(config.environ)
    register(WebhookVerifier(provider=SLUG, verify=webhooks.make_verify(tokens), parse=webhooks.parse,
                             handle=webhooks.handle, sample=webhooks.make_sample(tokens)))


@hookimpl
def hub_register_actions(register, config):
    hosts = Hosts.from_environ(config.environ)
    register(Action(provider=SLUG, name="create_invoice", input=Invoice, output=actions.CreateInvoiceOut,
                    handler=actions.create_invoice,
                    description="Create or update the invoice in QuickBooks (its client first, if QuickBooks "
                                "lacks it)."))
    register(Action(provider=SLUG, name="get_accounts", input=actions.GetAccountsIn, output=actions.AccountsOut,
                    handler=actions.make_get_accounts(hosts), description="The chart of accounts."))
    register(Action(provider=SLUG, name="get_company_info", input=actions.NoInput, output=actions.CompanyInfoOut,
                    handler=actions.make_get_company_info(hosts), description="The connected company."))


@hookimpl
async def hub_event(event, context):
    """The settings panel's auto-sync: a tenant's own ``client.created`` (...) event pushes that record."""
    entity = AUTO_SYNC.get(event.type)
    if entity is None or event.provider is not None:
        return
    ctx = await context.connection(SLUG)
    if ctx is None or not getattr(ctx.settings, f"auto_sync_{entity}s"):
        return
    record = event.data.get(entity, event.data) if isinstance(event.data, dict) else event.data
    try:
        results = await ctx.push(entity, [record])
    except ValidationFailed as exc:  # the event will not get better on a retry
        log.warning("event %s: not a %s record QuickBooks can take: %s", event.id, entity, exc.message)
        return
    for result in results.values():
        if result.outcome == "failed":
            log.warning("event %s: QuickBooks refused %s %s: %s", event.id, entity, result.internal_id, result.error)
