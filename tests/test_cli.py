"""The ``hub`` command, run as operators run it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hub.cli import main


@pytest.fixture
def fresh_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    # None unsets a variable the developer's own shell may have set.
    return {"HUB_HOME": str(tmp_path / "home"), "HUB_PLUGINS": "", "HUB_ENCRYPTION_KEYS": None,
            "HUB_DATABASE_URL": None if database_url.startswith("sqlite") else database_url}


@pytest.fixture
def cli_env(fresh_env: dict[str, str]) -> dict[str, str]:
    assert "latest revision" in run(fresh_env, "migrate").output
    return fresh_env


def run(env: dict[str, str], *args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_server_database_must_be_migrated_on_purpose(fresh_env):
    if fresh_env["HUB_DATABASE_URL"] is None:
        assert run(fresh_env, "tenants", "list").stdout.strip() == "[]"  # embedded: migrated on use
        return
    result = run(fresh_env, "tenants", "list", ok=False)
    assert result.exit_code == 1 and "run `hub migrate` first" in result.output


def test_tenants_api_keys_and_key_rotation(cli_env):
    created = json.loads(run(cli_env, "tenants", "create", "Acme Builders", "--timezone", "America/Chicago").stdout)
    tenant_id = created["tenant"]["id"]
    assert created["tenant"]["settings"] == {"timezone": "America/Chicago"}
    assert created["api_key"]["key"].startswith("hub_")

    listed = json.loads(run(cli_env, "tenants", "list").stdout)
    assert [t["id"] for t in listed] == [tenant_id]

    second = json.loads(run(cli_env, "api-keys", "create", "--tenant", tenant_id, "--name", "ci").stdout)
    keys = json.loads(run(cli_env, "api-keys", "list", "--tenant", tenant_id).stdout)
    assert {k["name"] for k in keys} == {"default", "ci"}
    assert all("key" not in k and "key_hash" not in k for k in keys)  # never the key itself

    revoked = json.loads(run(cli_env, "api-keys", "revoke", second["api_key"]["id"]).stdout)
    assert revoked["revoked_at"] is not None
    assert "re-encrypted 0 secret(s)" in run(cli_env, "keys", "rotate").stdout


def test_clear_errors_and_exit_codes(cli_env):
    bad_zone = run(cli_env, "tenants", "create", "X", "--timezone", "Nowhere/Else", ok=False)
    assert bad_zone.exit_code == 1 and "unknown IANA time zone" in bad_zone.output
    bad_id = run(cli_env, "api-keys", "list", "--tenant", "not-a-uuid", ok=False)
    assert bad_id.exit_code == 2 and "not a UUID" in bad_id.output
    missing = run(cli_env, "api-keys", "list", "--tenant", "00000000-0000-0000-0000-000000000000", ok=False)
    assert missing.exit_code == 1 and "no such tenant" in missing.output


def test_unreachable_database_is_a_clear_error(tmp_path):
    env = {"HUB_HOME": str(tmp_path), "HUB_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = run(env, "tenants", "list", ok=False)
    assert result.exit_code == 1 and "database is unreachable" in result.output


def test_plugins_lists_what_is_installed(tmp_path):
    result = run({"HUB_HOME": str(tmp_path), "HUB_PLUGINS": ""}, "plugins")
    assert "no provider plugins installed" in result.output
    installed = run({"HUB_HOME": str(tmp_path), "HUB_PLUGINS": "quickbooks"}, "plugins").output.splitlines()
    assert installed[:2] == ["quickbooks (hub-quickbooks 0.1.0)",
                             "  hooks: hub_register_providers, hub_register_auth, hub_register_syncs, "
                             "hub_register_webhook_verifiers, hub_register_entity_mappers, hub_register_actions, "
                             "hub_event"]
    assert "  quickbooks: QuickBooks Online (accounting, auth oauth2)" in installed


def test_keys_generate_prints_a_usable_key():
    from hub.vault import Vault

    key = CliRunner().invoke(main, ["keys", "generate"]).stdout.strip()
    assert Vault([key]).decrypt(Vault([key]).encrypt("x", "id"), "id") == "x"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_on_embedded_defaults_with_no_configuration(tmp_path):
    """The README's first command: nothing configured, SQLite under HUB_HOME, schema migrated on start."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {"HUB_HOME": str(tmp_path / ".hub")}
    process = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline, "hub serve did not come up"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {"status": "ready"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/providers").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/schema/openapi.json").json()["info"]["title"] == "Integration hub"
        assert (tmp_path / ".hub" / "hub.db").exists()
        assert (tmp_path / ".hub" / "admin_token").stat().st_mode & 0o777 == 0o600
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert "admin token:" in output


async def test_sync_command_pushes_a_file_with_progress_and_exit_codes(client, hub, tenant, provider, settings,
                                                                       tmp_path, monkeypatch):
    """`hub sync` on the embedded default drives the run itself; exit 1 when a record failed."""
    import asyncio

    import hub.cli as cli
    from hub.runtime import Hub
    from tests.conftest import ENCRYPTION_KEY, make_hub
    from tests.flows import connect

    await connect(client, tenant)
    env = {"HUB_HOME": str(settings.home), "HUB_DATABASE_URL": settings.database_url,
           "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY, "TESTPROVIDER_URL": provider.url, "HUB_BROKER_URL": None}
    monkeypatch.setattr(cli, "_hub", lambda **kw: make_hub(cli._settings()))  # the test plugin, as if installed
    records = tmp_path / "clients.json"
    records.write_text(json.dumps([{"id": f"c{i}", "company_name": f"Co {i}"} for i in range(40)]))

    result = await asyncio.to_thread(CliRunner().invoke, main, ["sync", "testoauth", "client", "--tenant",
                                                               str(tenant.id), "--file", str(records)], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["status"], summary["created"]) == ("completed", 40)
    assert "processed 40" in result.stderr and len(provider.state.customers) == 40

    records.write_text(json.dumps([{"id": "c0", "company_name": "REJECT this"}]))
    failed = await asyncio.to_thread(CliRunner().invoke, main, ["sync", "testoauth", "client", "--tenant",
                                                               str(tenant.id), "--file", str(records)], env=env)
    assert failed.exit_code == 1 and json.loads(failed.stdout)["failed"] == 1

    records.write_text("{not json")
    bad = await asyncio.to_thread(CliRunner().invoke, main, ["sync", "testoauth", "client", "--tenant",
                                                            str(tenant.id), "--file", str(records)], env=env)
    assert bad.exit_code == 2 and "not a JSON array" in bad.output
    assert isinstance(hub, Hub)


def test_worker_needs_a_broker_url(tmp_path):
    result = run({"HUB_HOME": str(tmp_path), "HUB_PLUGINS": "", "HUB_BROKER_URL": None}, "worker", ok=False)
    assert result.exit_code == 1 and "hub serve` runs the jobs itself" in result.output


def test_a_broker_url_that_is_not_redis_is_refused_up_front(tmp_path):
    result = run({"HUB_HOME": str(tmp_path), "HUB_PLUGINS": "", "HUB_BROKER_URL": "amqp://x"}, "tenants", "list",
                 ok=False)
    assert result.exit_code == 1 and "must be a redis:// URL" in result.output


def test_webhooks_send_test_posts_a_signed_sample_that_a_running_hub_accepts(live_hub, settings, monkeypatch):
    import hub.cli as cli
    from tests.conftest import ENCRYPTION_KEY, WEBHOOK_SECRETS, make_hub

    env = {"HUB_HOME": str(settings.home), "HUB_DATABASE_URL": settings.database_url,
           "HUB_ENCRYPTION_KEYS": ENCRYPTION_KEY, "TESTOAUTH_WEBHOOK_SECRETS": WEBHOOK_SECRETS,
           "HUB_PUBLIC_URL": settings.public_url, "HUB_BROKER_URL": None}
    monkeypatch.setattr(cli, "_hub", lambda **kw: make_hub(cli._settings()))  # the test plugin, as if installed

    sent = run(env, "webhooks", "send-test", "testoauth", "payment.created", "--url", live_hub.url)

    assert sent.output.startswith('200 {"received":true}')
    [row] = json.loads(run(env, "webhooks", "inbox").output)
    assert (row["provider"], row["event_type"], row["status"]) == ("testoauth", "payment.created", "unrouted")
    refused = run(env | {"TESTOAUTH_WEBHOOK_SECRETS": "not-what-the-hub-has"}, "webhooks", "send-test", "testoauth",
                  "payment.created", "--url", live_hub.url, ok=False)
    assert refused.exit_code == 1 and refused.output.startswith("401 ")
    deadline = time.monotonic() + 10  # counted with the live hub's next intake write
    while json.loads(run(env, "webhooks", "rejections").output) != {"testoauth": 1}:
        assert time.monotonic() < deadline, "the rejection was not counted"
        time.sleep(0.05)
    unknown = run(env, "webhooks", "send-test", "nosuch", "x", "--url", live_hub.url, ok=False)
    assert unknown.exit_code == 1 and "no installed plugin receives nosuch webhooks" in unknown.output
    reprocess = run(env, "webhooks", "reprocess", row["id"], ok=False)
    assert reprocess.exit_code == 1 and "routes to no connection (webhook_unrouted)" in reprocess.output
