"""Hook implementations only: what Stripe brings to the hub."""

from __future__ import annotations

import logging

from hub import Action, ApiKeyAuth, EntityMapper, OutboundSync, ProviderInfo, RateLimit, WebhookVerifier, hookimpl
from hub.entities import Client
from hub_stripe import actions, mappers, webhooks
from hub_stripe.client import SLUG, Credentials, StripeConfig, check_own_key, create_connected_account
from hub_stripe.syncs import Pushes

RATE_LIMITS = (RateLimit(requests=100, per_seconds=1),)
"""Stripe's documented live-mode limit: 100 read and 100 write requests per second per account."""


@hookimpl
def hub_register_providers(register):
    # The SDK logs every request's URL and response body (client secrets among them) at INFO/DEBUG; the
    # hub logs each Stripe request itself, without query, headers or body.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    register(ProviderInfo(
        slug=SLUG, title="Stripe", category="payments", auth_kind="api_key",
        description="Card and bank payments for tenants' invoices: customers, payment and setup intents, charges "
                    "of saved payment methods exactly once, and payment webhooks; tenants connect their own "
                    "Stripe account or are onboarded as connected accounts of the operator's platform.",
        webhooks=True, rate_limits=RATE_LIMITS, docs_url="https://docs.stripe.com/api",
    ))


@hookimpl
def hub_register_auth(register, config):
    stripe_config = StripeConfig.from_environ(config.environ)

    async def check(http, credentials: Credentials, tenant_id):
        if credentials.platform:
            return await create_connected_account(stripe_config, http, credentials, tenant_id)
        return await check_own_key(stripe_config, http, credentials)

    register(ApiKeyAuth(SLUG, fields=Credentials, check=check))


@hookimpl
def hub_register_entity_mappers(register):
    register(EntityMapper(provider=SLUG, entity="client", to_provider=mappers.client_to_customer,
                          from_provider=mappers.customer_to_client))
    register(EntityMapper(provider=SLUG, entity="charge", to_provider=lambda charge, ctx: mappers.charge_to_intent(
        charge, ctx, customer="")))


@hookimpl
def hub_register_syncs(register, config):
    pushes = Pushes(StripeConfig.from_environ(config.environ))
    register(OutboundSync(provider=SLUG, entity="client", push=pushes.customers))
    register(OutboundSync(provider=SLUG, entity="charge", push=pushes.charges, schema=mappers.Charge))


@hookimpl
def hub_register_webhook_verifiers(register, config):
    stripe_config = StripeConfig.from_environ(config.environ)
    register(WebhookVerifier(provider=SLUG, verify=webhooks.make_verify(stripe_config), parse=webhooks.parse,
                             handle=webhooks.handle, sample=webhooks.make_sample(stripe_config)))


@hookimpl
def hub_register_actions(register, config):
    run = actions.Actions(StripeConfig.from_environ(config.environ))
    for name, input, output, description, pending_ok in (
        ("create_customer", Client, actions.CustomerOut,
         "The client's Stripe customer (email, name, metadata with tenant and client ids), created once.", False),
        ("create_payment_intent", actions.PaymentIntentIn, actions.PaymentIntentOut,
         "A payment intent for an invoice (amount in the smallest currency unit, automatic payment methods); "
         "returns its client secret for the payment form.", False),
        ("create_setup_intent", actions.SetupIntentIn, actions.SetupIntentOut,
         "A setup intent to save the client's card or US bank account for later charges.", False),
        ("charge_payment_method", actions.ChargeIn, actions.ChargeOut,
         "Charge a saved payment method off-session, exactly once per charge id.", False),
        ("list_payment_methods", actions.PaymentMethodsIn, actions.PaymentMethodsOut,
         "The client's saved cards (brand, last4, expiry) and bank accounts (bank name, last4).", False),
        ("create_account_link", actions.AccountLinkIn, actions.AccountLinkOut,
         "Platform mode: a link to Stripe's onboarding for the tenant's connected account.", True),
        ("get_account", actions.Input, actions.AccountOut, "The Stripe account the connection reaches.", False),
    ):
        register(Action(provider=SLUG, name=name, input=input, output=output, handler=getattr(run, name),
                        description=description, pending_ok=pending_ok))
