"""Plugin loading and the registry's rules."""

from __future__ import annotations

import importlib.metadata
import logging
import types

import pytest

from hub import ProviderInfo, hookimpl
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


def provider(slug: str) -> ProviderInfo:
    return ProviderInfo(slug=slug, title=slug.title(), category="testing", auth_kind="none")


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


def test_replace_true_overrides_another_plugins_action_on_purpose():
    async def other_echo(ctx, data):
        return data

    replacement = Action(provider="testoauth", name="echo", input=test_plugin.EchoIn, output=test_plugin.EchoIn,
                         handler=other_echo)
    accidental = plugin("acc", hub_register_actions=lambda register: register(replacement))
    deliberate = plugin("del", hub_register_actions=lambda register: register(replacement, replace=True))
    with pytest.raises(PluginError, match="pass replace=True"):
        load(("testprovider", test_plugin), ("acc", accidental))
    registry, _ = load(("testprovider", test_plugin), ("del", deliberate))
    assert registry.actions[("testoauth", "echo")] is replacement


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


def test_a_hook_that_raises_names_the_plugin():
    def broken(register):
        raise RuntimeError("boom")

    with pytest.raises(PluginError, match="plugin 'bad' failed in hub_register_providers: RuntimeError: boom"):
        load(("bad", plugin("bad", hub_register_providers=broken)))


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
            return plugin(name, hub_register_providers=lambda register: register(provider(name)))
        return load_

    _fake_entry_points(
        monkeypatch, _EntryPoint("alpha", "a", loader("alpha")), _EntryPoint("beta", "b", loader("beta"))
    )
    with caplog.at_level(logging.WARNING, logger="hub.plugins"):
        registry, _ = load_plugins(Settings.from_env({"HUB_PLUGINS": "beta, gamma"}))
    assert set(registry.providers) == {"beta"}
    assert loaded == ["beta"]  # alpha was never even imported
    assert "HUB_PLUGINS names 'gamma', which is not installed" in caplog.text
