"""Plugin loading and the registry's rules."""

from __future__ import annotations

import importlib.metadata
import logging
import types

import msgspec
import pytest

from hub import AccountInfo, ApiKeyAuth, ProviderInfo, hookimpl
from hub.config import Settings
from hub.errors import PluginError
from hub.handlers import Action
from hub.plugins import load_plugins
from tests.testprovider import plugin as test_plugin


def plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def provider(slug: str, **fields) -> ProviderInfo:
    return ProviderInfo(slug=slug, title=slug.title(), category="testing", auth_kind="api_key", **fields)


async def _accept(http, fields):
    return AccountInfo(id="x")


def keyed(slug: str) -> ApiKeyAuth:
    return ApiKeyAuth(slug, fields=test_plugin.KeyFields, check=_accept)


def provider_plugin(name: str, slug: str, **fields) -> types.ModuleType:
    """A complete minimal plugin: one API-key provider and its strategy."""
    return plugin(name, hub_register_providers=lambda register: register(provider(slug, **fields)),
                  hub_register_auth=lambda register: register(keyed(slug)))


def load(*plugins: tuple[str, object], **settings):
    return load_plugins(Settings(**settings), entry_points=False, extra=plugins)


def test_the_test_plugin_registers_every_kind_of_object():
    registry, _ = load(("testprovider", test_plugin))
    assert set(registry.providers) == {"testoauth", "testkeys"}
    assert set(registry.auth) == {"testoauth", "testkeys"}
    assert ("testoauth", "echo") in registry.actions
    assert ("testoauth", "client") in registry.mappers
    assert ("testoauth", "client", "outbound") in registry.syncs
    assert ("testoauth", "payment", "inbound") in registry.syncs
    assert "testoauth" in registry.verifiers
    assert registry.plugins["testprovider"].providers == ["testoauth", "testkeys"]


def test_duplicate_provider_slug_from_two_plugins_is_refused():
    first = plugin("one", hub_register_providers=lambda register: register(provider("acme")))
    second = plugin("two", hub_register_providers=lambda register: register(provider("acme")))
    with pytest.raises(PluginError, match="already registered by plugin 'one'"):
        load(("one", first), ("two", second))


def test_double_registration_by_one_plugin_is_refused():
    def twice(register):
        register(provider("acme"))
        register(provider("acme"))

    with pytest.raises(PluginError, match="registered twice"):
        load(("one", plugin("one", hub_register_providers=twice)))


def test_replace_true_overrides_another_plugins_action_on_purpose_in_any_load_order():
    async def other_echo(ctx, data):
        return data

    replacement = Action(provider="testoauth", name="echo", input=test_plugin.EchoIn, output=test_plugin.EchoIn,
                         handler=other_echo)
    accidental = plugin("acc", hub_register_actions=lambda register: register(replacement))
    deliberate = plugin("del", hub_register_actions=lambda register: register(replacement, replace=True))
    with pytest.raises(PluginError, match="pass replace=True"):
        load(("testprovider", test_plugin), ("acc", accidental))
    for order in ((("testprovider", test_plugin), ("del", deliberate)),
                  (("del", deliberate), ("testprovider", test_plugin))):
        registry, _ = load(*order)
        assert registry.actions[("testoauth", "echo")] is replacement
        assert registry.owner(replacement) == "del"


def test_registration_for_an_unknown_provider_is_refused():
    stray = plugin("stray", hub_register_actions=lambda register: register(
        Action(provider="nope", name="x", input=test_plugin.EchoIn, output=test_plugin.EchoIn, handler=None)))
    with pytest.raises(PluginError, match="unknown provider 'nope'"):
        load(("stray", stray))


def test_wrong_object_type_is_refused():
    wrong = plugin("wrong", hub_register_providers=lambda register: register({"slug": "x"}))
    with pytest.raises(PluginError, match="not a ProviderInfo"):
        load(("wrong", wrong))


def test_misspelled_hook_fails_loudly():
    typo = types.ModuleType("typo")
    typo.hub_register_provider = hookimpl(lambda register: None)  # missing "s"
    with pytest.raises(Exception, match="hub_register_provider"):
        load(("typo", typo))


def test_registering_after_start_up_is_refused():
    kept = []
    keeper = plugin("keeper", hub_register_providers=lambda register: kept.append(register))
    load(("keeper", keeper))
    with pytest.raises(PluginError, match="after start-up"):
        kept[0](provider("late"))


def test_a_plugin_whose_hook_raises_is_skipped_with_a_warning(caplog):
    def broken(register):
        register(keyed("half"))  # registered before the failure: must not survive either
        raise RuntimeError("boom")

    bad = plugin("bad", hub_register_providers=lambda register: register(provider("half")),
                 hub_register_auth=broken, hub_event=lambda event: None)
    with caplog.at_level(logging.WARNING, logger="hub.plugins"):
        registry, pm = load(("bad", bad), ("testprovider", test_plugin))
    assert "plugin 'bad' failed in hub_register_auth and is skipped: RuntimeError: boom" in caplog.text
    assert "half" not in registry.providers and "half" not in registry.auth
    assert "bad" not in registry.plugins and pm.get_plugin("bad") is None
    assert "testoauth" in registry.providers


def test_wrapper_hookimpls_are_refused():
    module = types.ModuleType("wrapping")

    def wrapping(register):
        yield

    module.hub_register_providers = hookimpl(wrapper=True)(wrapping)
    with pytest.raises(PluginError, match="is a wrapper"):
        load(("wrapping", module))


def test_every_provider_needs_its_matching_auth_strategy():
    lonely = plugin("lonely", hub_register_providers=lambda register: register(provider("lonely")))
    with pytest.raises(PluginError, match="'lonely' has no auth strategy"):
        load(("lonely", lonely))
    mismatched = plugin("mm", hub_register_providers=lambda register: register(
        ProviderInfo(slug="mm", title="MM", category="testing", auth_kind="oauth2")),
        hub_register_auth=lambda register: register(keyed("mm")))
    with pytest.raises(PluginError, match="declares auth_kind 'oauth2' but registered a api_key strategy"):
        load(("mm", mismatched))


def test_settings_type_must_build_from_no_settings():
    class Needy(msgspec.Struct):
        region: str

    with pytest.raises(PluginError, match="give every field a default"):
        load(("needy", provider_plugin("needy", "needy", settings=Needy)))


def test_slugs_must_be_url_safe():
    with pytest.raises(PluginError, match="must match"):
        load(("bad", provider_plugin("bad", "Bad Slug/1")))


class _EntryPoint:
    def __init__(self, name: str, value: str, loader):
        self.name, self.value, self._loader, self.dist = name, value, loader, None

    def load(self):
        return self._loader()


def _fake_entry_points(monkeypatch, *eps):
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [ep for ep in eps] if group == "hub" else [])


def test_plugin_that_fails_to_import_is_skipped_with_a_warning(monkeypatch, caplog):
    def explode():
        raise ImportError("No module named 'vendor_sdk'")

    _fake_entry_points(
        monkeypatch,
        _EntryPoint("broken", "hub_broken.plugin", explode),
        _EntryPoint("testprovider", "tests.testprovider.plugin", lambda: test_plugin),
    )
    with caplog.at_level(logging.WARNING, logger="hub.plugins"):
        registry, _ = load_plugins(Settings())
    assert "testoauth" in registry.providers
    assert "plugin 'broken' (hub_broken.plugin) failed to import" in caplog.text
    assert "vendor_sdk" in caplog.text


def test_hub_plugins_allowlist_limits_what_loads(monkeypatch, caplog):
    loaded = []

    def loader(name):
        def load_():
            loaded.append(name)
            return provider_plugin(name, name)
        return load_

    _fake_entry_points(
        monkeypatch, _EntryPoint("alpha", "a", loader("alpha")), _EntryPoint("beta", "b", loader("beta"))
    )
    with caplog.at_level(logging.WARNING, logger="hub.plugins"):
        registry, _ = load_plugins(Settings.from_env({"HUB_PLUGINS": "beta, gamma"}))
    assert set(registry.providers) == {"beta"}
    assert loaded == ["beta"]  # alpha was never even imported
    assert "HUB_PLUGINS names 'gamma', which is not installed" in caplog.text


def test_each_plugin_record_names_its_distribution_version_and_implemented_hooks():
    import hub_quickbooks.plugin

    registry, _ = load(("testprovider", test_plugin), ("quickbooks", hub_quickbooks.plugin))
    test_record, qbo = registry.plugins["testprovider"], registry.plugins["quickbooks"]
    assert (test_record.distribution, test_record.version) == (None, None)  # not an installed distribution
    assert test_record.hooks == ["hub_register_providers", "hub_register_auth", "hub_register_syncs",
                                 "hub_register_webhook_verifiers", "hub_register_entity_mappers",
                                 "hub_register_actions"]
    assert (qbo.distribution, qbo.version) == ("hub-quickbooks", "0.1.0")
    assert "hub_event" in qbo.hooks and "hub_register_syncs" in qbo.hooks
    only_providers = plugin("bare", hub_register_providers=lambda register: None)
    assert load(("bare", only_providers))[0].plugins["bare"].hooks == ["hub_register_providers"]
