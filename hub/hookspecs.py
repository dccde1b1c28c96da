"""The plugin contract. Registration hooks receive a ``register`` callback and the hub's ``config``;
the objects registered do the work, so pluggy is never asked to await. An implementation may take
any subset of a hook's arguments. See docs/plugin_hooks.md for examples."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("hub")
hookimpl = pluggy.HookimplMarker("hub")


@hookspec
def hub_register_providers(register, config):
    """Register ``ProviderInfo`` objects: ``register(info)``."""


@hookspec
def hub_register_auth(register, config):
    """Register one auth strategy per provider: ``register(OAuth2(...) | ApiKeyAuth(...), replace=False)``."""


@hookspec
def hub_register_syncs(register, config):
    """Register ``OutboundSync`` / ``InboundSync`` handlers, one per (provider, entity, direction)."""


@hookspec
def hub_register_webhook_verifiers(register, config):
    """Register one ``WebhookVerifier`` per provider."""


@hookspec
def hub_register_entity_mappers(register, config):
    """Register ``EntityMapper`` objects, one per (provider, entity)."""


@hookspec
def hub_register_actions(register, config):
    """Register ``Action`` objects, one per (provider, name)."""


@hookspec
def hub_event(event, context):
    """Observe a normalized ``HubEvent`` (broadcast to every plugin). ``context`` is an ``EventContext``:
    the event's tenant, the hub's config, and ``await context.connection(slug)`` for that tenant's
    connection to any provider. May return an awaitable, which the hub awaits. Observers run in a job
    that is retried, so they must be idempotent."""
