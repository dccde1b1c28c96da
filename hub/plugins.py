"""Plugin loading and the registry.

``load_plugins()`` is called by the app, worker and CLI factories — never at import time. It loads the
entry-point group ``hub`` (each entry point's name is the provider slug), honours the ``HUB_PLUGINS``
allowlist, runs ``check_pending()`` so a misspelled hook fails loudly, and resolves every registration
into a ``Registry`` once; requests and jobs only read the registry.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import msgspec
import pluggy

from hub import hookspecs
from hub.auth import ApiKeyAuth, OAuth2
from hub.config import Settings
from hub.errors import PluginError
from hub.handlers import Action, EntityMapper, InboundSync, OutboundSync, WebhookVerifier
from hub.types import ProviderInfo

log = logging.getLogger("hub.plugins")

ENTRY_POINT_GROUP = "hub"


@dataclass
class PluginRecord:
    name: str
    distribution: str | None = None
    version: str | None = None
    providers: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    """The hooks the plugin implements, in the order of ``hub/hookspecs.py``."""


def _distribution_of(obj: object) -> tuple[str | None, str | None]:
    """The installed distribution of a plugin module loaded directly (not through its entry point): the one
    whose ``hub`` entry point names that module, if it is installed."""
    if not isinstance(obj, ModuleType):
        return None, None
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.value == obj.__name__ and ep.dist is not None:
            return ep.dist.name, ep.dist.version
    return None, None


_HOOK_ORDER = [name for name in vars(hookspecs) if name.startswith("hub_")]


class Registry:
    """Everything the loaded plugins registered, keyed for lookup. Refuses duplicates unless a
    registration says ``replace=True``."""

    def __init__(self) -> None:
        self.providers: dict[str, ProviderInfo] = {}
        self.auth: dict[str, OAuth2 | ApiKeyAuth] = {}
        self.syncs: dict[tuple[str, str, str], OutboundSync | InboundSync] = {}
        self.verifiers: dict[str, WebhookVerifier] = {}
        self.mappers: dict[tuple[str, str], EntityMapper] = {}
        self.actions: dict[tuple[str, str], Action] = {}
        self.plugins: dict[str, PluginRecord] = {}
        self.event_observers: Any = None
        self.observers: dict[str, Any] = {}
        """Plugin name -> its ``hub_event`` implementation; each event runs one job per observer."""
        self._owners: dict[tuple[str, Any], str] = {}
        self.frozen = False

    def _put(self, table: dict, kind: str, key: Any, obj: Any, plugin: str, replace: bool) -> None:
        if self.frozen:
            raise PluginError(f"the registry is frozen; plugin {plugin!r} cannot add {kind} {key!r} now")
        if kind != "provider":
            slug = key[0] if isinstance(key, tuple) else key
            if slug not in self.providers:
                raise PluginError(f"plugin {plugin!r} registers {kind} {key!r} for unknown provider {slug!r}")
        if key in table and not replace:
            owner = self._owners[(kind, key)]
            what = "registered twice" if owner == plugin else f"already registered by plugin {owner!r}"
            raise PluginError(
                f"{kind} {key!r} from plugin {plugin!r} is {what}; pass replace=True to override it on purpose"
            )
        table[key] = obj
        self._owners[(kind, key)] = plugin

    def add_provider(self, info: ProviderInfo, plugin: str, replace: bool = False) -> None:
        if not isinstance(info, ProviderInfo):
            raise PluginError(f"plugin {plugin!r} registered {info!r}, not a ProviderInfo")
        if not _SLUG.match(info.slug):
            raise PluginError(f"plugin {plugin!r}: provider slug {info.slug!r} must match {_SLUG.pattern}")
        if info.settings is not None:
            try:
                msgspec.convert({}, info.settings)
            except (msgspec.ValidationError, ValueError, TypeError) as exc:
                raise PluginError(f"provider {info.slug!r}: its settings type must build from no settings "
                                  f"(give every field a default): {exc}") from None
        for name in info.record_lists:
            if not _SLUG.match(name.replace("-", "_")) or name in _CONNECTION_PATHS:
                raise PluginError(f"provider {info.slug!r}: record list {name!r} must be a lower-case name "
                                  f"(letters, digits, - and _) other than {', '.join(sorted(_CONNECTION_PATHS))}")
        previous = self._owners.get(("provider", info.slug))
        self._put(self.providers, "provider", info.slug, info, plugin, replace)
        if previous is not None and previous != plugin:
            self.plugins[previous].providers.remove(info.slug)
        record = self.plugins.setdefault(plugin, PluginRecord(plugin))
        if info.slug not in record.providers:
            record.providers.append(info.slug)

    def add_auth(self, strategy: OAuth2 | ApiKeyAuth, plugin: str, replace: bool = False) -> None:
        self._check_type(strategy, (OAuth2, ApiKeyAuth), plugin)
        self._put(self.auth, "auth", strategy.provider, strategy, plugin, replace)

    def add_sync(self, handler: OutboundSync | InboundSync, plugin: str, replace: bool = False) -> None:
        self._check_type(handler, (OutboundSync, InboundSync), plugin)
        key = (handler.provider, handler.entity, handler.direction)
        self._put(self.syncs, "sync", key, handler, plugin, replace)

    def add_verifier(self, verifier: WebhookVerifier, plugin: str, replace: bool = False) -> None:
        self._check_type(verifier, (WebhookVerifier,), plugin)
        self._put(self.verifiers, "webhook verifier", verifier.provider, verifier, plugin, replace)

    def add_mapper(self, mapper: EntityMapper, plugin: str, replace: bool = False) -> None:
        self._check_type(mapper, (EntityMapper,), plugin)
        self._put(self.mappers, "entity mapper", (mapper.provider, mapper.entity), mapper, plugin, replace)

    def add_action(self, action: Action, plugin: str, replace: bool = False) -> None:
        self._check_type(action, (Action,), plugin)
        self._put(self.actions, "action", (action.provider, action.name), action, plugin, replace)

    @staticmethod
    def _check_type(obj: Any, types: tuple[type, ...], plugin: str) -> None:
        if not isinstance(obj, types):
            names = " or ".join(t.__name__ for t in types)
            raise PluginError(f"plugin {plugin!r} registered {type(obj).__name__}, expected {names}")

    def owner(self, obj: Any) -> str | None:
        """The plugin that registered ``obj`` (None if it is not in the registry)."""
        for table, kind in ((self.providers, "provider"), (self.auth, "auth"), (self.syncs, "sync"),
                            (self.verifiers, "webhook verifier"), (self.mappers, "entity mapper"),
                            (self.actions, "action")):
            for key, registered in table.items():
                if registered is obj:
                    return self._owners[(kind, key)]
        return None

    def provider(self, slug: str) -> ProviderInfo | None:
        return self.providers.get(slug)

    def actions_for(self, slug: str) -> list[Action]:
        return [a for (p, _), a in self.actions.items() if p == slug]

    def syncs_for(self, slug: str) -> list[OutboundSync | InboundSync]:
        return [s for (p, _, _), s in self.syncs.items() if p == slug]


# Order matters: providers first, so every later registration can be checked against a known slug.
_REGISTRATION_HOOKS = (
    ("hub_register_providers", "add_provider"),
    ("hub_register_auth", "add_auth"),
    ("hub_register_entity_mappers", "add_mapper"),
    ("hub_register_syncs", "add_sync"),
    ("hub_register_webhook_verifiers", "add_verifier"),
    ("hub_register_actions", "add_action"),
)
_SLUG = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_CONNECTION_PATHS = frozenset({"authorize", "actions", "syncs", "mappings"})
"""Paths under /v1/connections/{provider}/ the core serves itself: no record list may take their name."""


class _Staging:
    """The ``register`` callback a plugin receives: it records, the loader applies."""

    def __init__(self, hook: str, plugin: str) -> None:
        self.hook = hook
        self.plugin = plugin
        self.items: list[tuple[Any, bool]] = []
        self.closed = False

    def __call__(self, obj: Any, *, replace: bool = False) -> None:
        if self.closed:
            raise PluginError(f"plugin {self.plugin!r} registered {obj!r} after start-up; register inside the hook")
        self.items.append((obj, replace))


def _entry_point_plugins(allow: tuple[str, ...] | None) -> list[tuple[str, ModuleType, PluginRecord]]:
    loaded = []
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for missing in sorted(set(allow or ()) - {ep.name for ep in found}):
        log.warning("HUB_PLUGINS names %r, which is not installed", missing)
    for ep in found:
        if allow is not None and ep.name not in allow:
            continue
        dist = ep.dist
        record = PluginRecord(ep.name, dist.name if dist else None, dist.version if dist else None)
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the hub down
            log.warning("plugin %r (%s) failed to import and is skipped: %s: %s",
                        ep.name, ep.value, type(exc).__name__, exc)
            continue
        loaded.append((ep.name, module, record))
    return loaded


def _stage(pm: pluggy.PluginManager, name: str, settings: Settings) -> dict[str, list] | None:
    """Run one plugin's registration hooks. A plugin that raises is skipped with a warning (None)."""
    staged: dict[str, list] = {}
    for hook_name, _ in _REGISTRATION_HOOKS:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name != name:
                continue
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(f"plugin {name!r}: {hook_name} is a wrapper; registration hooks take none")
            register = _Staging(hook_name, name)
            kwargs = {"register": register, "config": settings}
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as exc:
                log.warning("plugin %r failed in %s and is skipped: %s: %s", name, hook_name, type(exc).__name__, exc)
                return None
            finally:
                register.closed = True
            staged.setdefault(hook_name, []).extend(register.items)
    return staged


def _check_consistency(registry: Registry) -> None:
    for slug, info in registry.providers.items():
        strategy = registry.auth.get(slug)
        if strategy is None:
            raise PluginError(f"provider {slug!r} has no auth strategy (register one in hub_register_auth)")
        if strategy.kind != info.auth_kind:
            raise PluginError(f"provider {slug!r} declares auth_kind {info.auth_kind!r} but registered "
                              f"a {strategy.kind} strategy")


def load_plugins(
    settings: Settings,
    *,
    entry_points: bool = True,
    extra: Iterable[tuple[str, object]] = (),
) -> tuple[Registry, pluggy.PluginManager]:
    """Load plugins and resolve their registrations into a Registry.

    ``extra`` adds (name, module-or-object) plugins directly — how tests load a plugin that is not installed.
    """
    pm = pluggy.PluginManager("hub")
    pm.add_hookspecs(hookspecs)
    records: dict[str, PluginRecord] = {}
    candidates = _entry_point_plugins(settings.plugins) if entry_points else []
    candidates += [(name, obj, PluginRecord(name, *_distribution_of(obj))) for name, obj in extra]
    for name, obj, record in candidates:
        if pm.get_plugin(name) is not None or pm.is_registered(obj):
            raise PluginError(f"plugin {name!r} is loaded twice")
        pm.register(obj, name=name)
        implemented = {caller.name for caller in pm.get_hookcallers(obj) or ()}
        record.hooks = [hook for hook in _HOOK_ORDER if hook in implemented]
        records[name] = record
    pm.check_pending()

    staged = {name: _stage(pm, name, settings) for name in list(records)}
    for name in [name for name, items in staged.items() if items is None]:
        pm.unregister(name=name)  # its hub_event observer goes too
        del records[name], staged[name]

    registry = Registry()
    registry.plugins = records
    for hook_name, adder in _REGISTRATION_HOOKS:
        add = getattr(registry, adder)
        # Ordinary registrations first, overrides after, so `replace=True` wins whatever the load order.
        for want_replace in (False, True):
            for plugin, per_hook in staged.items():
                for obj, replace in per_hook.get(hook_name, []):
                    if replace == want_replace:
                        add(obj, plugin, replace)
    _check_consistency(registry)
    registry.event_observers = pm.hook.hub_event
    registry.observers = {impl.plugin_name: impl for impl in pm.hook.hub_event.get_hookimpls()}
    registry.frozen = True
    return registry, pm
