"""docs/plugin_hooks.md cannot drift from the plugin contract: every hook in hub/hookspecs.py has a
section headed by its exact signature, and every ```python example is a plugin that the real loader
loads and whose registrations land in the registry."""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
import types
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from hub import HubEvent, hookspecs
from hub.api.providers import provider_out
from hub.config import Settings
from hub.plugins import load_plugins

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugin_hooks.md"
TEXT = DOC.read_text(encoding="utf-8")
HOOK_HEADING = re.compile(r"^## (?P<name>\w+)\((?P<args>[^)]*)\)\s*$")
PROVIDERS_HOOK = "hub_register_providers"
AUTH_HOOK = "hub_register_auth"
# Where each registration hook's objects land in the Registry; hub_event registers nothing.
TABLES = {
    "hub_register_providers": "providers",
    "hub_register_auth": "auth",
    "hub_register_syncs": "syncs",
    "hub_register_webhook_verifiers": "verifiers",
    "hub_register_entity_mappers": "mappers",
    "hub_register_actions": "actions",
}
SETTINGS = Settings(environ={
    "ACME_CLIENT_ID": "acme-client", "ACME_CLIENT_SECRET": "acme-secret", "ACME_WEBHOOK_SECRET": "whsec",
})


def hook_signatures() -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(fn).parameters)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "hub_spec")
    }


def headings() -> dict[str, list[tuple[int, list[str]]]]:
    """Hook-shaped '## name(args)' headings: name -> [(line, args)]."""
    found: dict[str, list[tuple[int, list[str]]]] = {}
    for number, line in enumerate(TEXT.splitlines(), 1):
        if match := HOOK_HEADING.match(line):
            args = [a.strip() for a in match["args"].split(",") if a.strip()]
            found.setdefault(match["name"], []).append((number, args))
    return found


def fenced_blocks(language: str) -> list[tuple[int, str]]:
    """(first line of code, code) of every ```<language> block."""
    blocks, current, start, opened = [], None, 0, ""
    for number, line in enumerate(TEXT.splitlines(), 1):
        stripped = line.strip()
        if current is None:
            if stripped.startswith("```"):
                current, start, opened = [], number + 1, stripped[3:].strip()
        elif stripped == "```":
            if opened == language:
                blocks.append((start, "\n".join(current) + "\n"))
            current = None
        else:
            current.append(line)
    assert current is None, f"{DOC.name}: a code fence opened at line {start - 1} is never closed"
    return blocks


def section_of(line: int) -> str | None:
    """The hook whose section holds ``line`` (None: an intro section)."""
    current = None
    for number, text in enumerate(TEXT.splitlines(), 1):
        if number > line:
            break
        if text.startswith("## "):
            match = HOOK_HEADING.match(text)
            current = match["name"] if match else None
    return current


PYTHON_BLOCKS = fenced_blocks("python")
HOOKS = hook_signatures()


def test_the_contract_and_this_test_know_the_same_hooks():
    assert set(HOOKS) == set(TABLES) | {"hub_event"}


def test_every_hook_has_a_section():
    missing = sorted(set(HOOKS) - set(headings()))
    assert not missing, f"{DOC.name} has no '## <hook>(' section for: {', '.join(missing)}"


def test_every_hook_heading_names_a_declared_hook():
    unknown = sorted(name for name in headings() if name.startswith("hub_") and name not in HOOKS)
    assert not unknown, f"{DOC.name} documents hooks hub/hookspecs.py does not declare: {', '.join(unknown)}"


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_section_signature_matches_the_hookspec(hook):
    sections = headings().get(hook, [])
    assert len(sections) == 1, f"{hook} needs exactly one section, found {len(sections)}"
    line, args = sections[0]
    expected = HOOKS[hook]
    assert args == expected, (
        f"{DOC.name}:{line} says {hook}({', '.join(args)}), the hookspec is ({', '.join(expected)})"
    )


def test_the_page_has_an_example_for_every_hook():
    documented = {section_of(line) for line, _ in PYTHON_BLOCKS}
    assert set(HOOKS) <= documented, f"hooks without an example: {sorted(set(HOOKS) - documented)}"


def example_module(name: str, line: int, code: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The block as an importable module; tracebacks point at the page's own line numbers."""
    module = types.ModuleType(name)
    module.__file__ = str(DOC)
    monkeypatch.setitem(sys.modules, name, module)  # msgspec resolves a Struct's types through sys.modules
    exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), module.__dict__)
    return module


def implemented_hooks(module: types.ModuleType) -> set[str]:
    return {name for name, obj in vars(module).items() if callable(obj) and getattr(obj, "hub_impl", None) is not None}


def foundation_examples(monkeypatch: pytest.MonkeyPatch, but: int) -> list[tuple[str, types.ModuleType]]:
    """The providers and auth examples (every provider needs its strategy), except the one at line ``but``."""
    return [
        (f"docs_example_foundation{line}", example_module(f"docs_example_foundation{line}", line, code, monkeypatch))
        for line, code in PYTHON_BLOCKS
        if section_of(line) in (PROVIDERS_HOOK, AUTH_HOOK) and line != but
    ]


@pytest.mark.parametrize(("line", "code"), PYTHON_BLOCKS, ids=[f"line{line}" for line, _ in PYTHON_BLOCKS])
async def test_example_loads_and_registers(line, code, monkeypatch):
    name = f"docs_example_line{line}"
    example = example_module(name, line, code, monkeypatch)
    hooks = implemented_hooks(example)
    assert hooks, f"{DOC.name}:{line}: the example implements no hook"
    companions = foundation_examples(monkeypatch, but=line)

    registry, _ = load_plugins(SETTINGS, entry_points=False, extra=[*companions, (name, example)])

    for hook in hooks - {"hub_event"}:
        owned = [key for key, obj in getattr(registry, TABLES[hook]).items() if registry.owner(obj) == name]
        assert owned, f"{DOC.name}:{line}: {hook} registered nothing"
    if "hub_event" in hooks:
        observers = registry.event_observers
        assert name in {impl.plugin_name for impl in observers.get_hookimpls()}
        event = HubEvent(id="evt_1", type="payment.succeeded", tenant_id=uuid.uuid4(), provider="acme",
                         data={"amount": 1200}, occurred_at=datetime.now(UTC))
        context = SimpleNamespace(tenant_id=event.tenant_id, config=SETTINGS, connection=_no_connection)
        for result in observers(event=event, context=context):
            if inspect.isawaitable(result):
                await result
    # What GET /v1/providers publishes (settings, credential fields and action schemas) must render.
    for info in registry.providers.values():
        msgspec.json.encode(provider_out(SimpleNamespace(registry=registry), info))


async def _no_connection(provider: str) -> None:
    return None


def test_pyproject_example_declares_a_hub_entry_point():
    blocks = fenced_blocks("toml")
    assert blocks, f"{DOC.name} shows no pyproject.toml"
    for line, code in blocks:
        entry_points = tomllib.loads(code)["project"]["entry-points"]["hub"]
        assert entry_points, f"{DOC.name}:{line}: no entry point in the group 'hub'"
        for slug, target in entry_points.items():
            assert re.fullmatch(r"hub_\w+\.plugin", target), f"{slug} = {target!r} is not 'hub_<name>.plugin'"


def test_the_testing_guide_names_every_fixture_and_adapter_method_of_the_kit():
    import hub.testing.fixtures as fixtures
    from hub.testing.adapter import ProviderAdapter

    guide = (Path(__file__).resolve().parents[1] / "docs" / "testing_your_plugin.md").read_text()
    names = [name for name, obj in vars(fixtures).items()
             if hasattr(obj, "_pytestfixturefunction") or type(obj).__name__ == "FixtureFunctionDefinition"]
    assert {"hub", "client", "tenant", "jobs", "clock", "webhook_receiver"} <= set(names)
    for name in names:
        assert f"`{name}`" in guide, f"docs/testing_your_plugin.md does not describe the fixture {name}"
    for name, _ in inspect.getmembers(ProviderAdapter):
        if not name.startswith("_"):
            assert f"`{name}" in guide, f"docs/testing_your_plugin.md does not describe ProviderAdapter.{name}"
    assert "docs/writing_a_plugin.md" in (Path(__file__).resolve().parents[1] / "README.md").read_text()
