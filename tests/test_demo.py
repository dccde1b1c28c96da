"""Demo mode (``hub serve --demo``): it comes up with every installed plugin connected to its simulator, and
every step of the walk-through it prints succeeds, leading to the signed webhooks it promises."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest

from hub.demo import Demo, installed_adapters
from hub.webhooks.ssrf import AddressGuard, UnsafeUrl


@pytest.fixture(scope="module")
def demo():
    lines: list[str] = []
    with Demo(port=0, echo=lines.append) as running:
        running.lines = lines
        yield running


def test_every_installed_plugin_is_connected_to_its_simulator(demo):
    connections = httpx.get(f"{demo.url}/v1/connections", headers={"Authorization": f"Bearer {demo.api_key}"})
    assert connections.status_code == 200, connections.text
    status = {c["provider"]: c["status"] for c in connections.json()}
    assert set(demo.adapters) == {"quickbooks", "twilio", "docusign", "stripe", "google_calendar", "google_drive"}
    assert status == {name: "connected" for name in demo.adapters}, status
    assert not demo.skipped


def test_every_step_of_the_walkthrough_succeeds(demo):
    steps = demo.steps()
    assert {provider for provider, _ in steps} == set(demo.adapters), "a plugin has no walk-through"
    text = demo.walkthrough()
    for provider, step in steps:
        assert demo.curl(provider, step) in text
        method, url, headers, body = demo.request_of(provider, step)
        seen = len(demo.console.received)
        response = httpx.request(method, url, headers=headers, json=body, timeout=60)
        assert response.status_code < 300, f"{step.title}: {response.status_code} {response.text}"
        for event_type in step.events:
            demo.console.wait_for(event_type, after=seen, data=step.data.get(event_type), timeout=60)
    assert all(d["verified"] for d in demo.console.deliveries()), "a delivery's signature did not hold"


def test_the_walkthrough_names_the_key_and_the_receiver(demo):
    text = demo.walkthrough()
    assert f'KEY="Authorization: Bearer {demo.api_key}"' in text
    assert f"{demo.console.url}/receiver" in text


def test_the_demo_hub_connects_to_nothing_but_this_machine(demo):
    """Plugins' calls go through the guard in loopback mode; a literal public or private address is refused
    before any connection, and a name other than localhost is not even looked up."""
    assert demo.hub.settings.loopback_only
    client = demo.hub.http.client
    for url in ("http://93.184.215.14/", "http://10.0.0.1/", "https://api.stripe.com/v1/charges"):
        with pytest.raises(UnsafeUrl):
            asyncio.run(_get(client, url))


async def _get(client, url):
    return await client.get(url)


def test_the_loopback_guard_refuses_without_resolving():
    looked_up = []

    async def resolver(host, port):
        looked_up.append(host)
        return ["127.0.0.1"]

    guard = AddressGuard(loopback_only=True, resolver=resolver)
    for host in ("api.stripe.com", "8.8.8.8", "10.0.0.1", "169.254.169.254"):
        with pytest.raises(UnsafeUrl):
            asyncio.run(guard.addresses(host, 443))
    assert looked_up == []
    assert asyncio.run(guard.addresses("127.0.0.1", 80)) == ["127.0.0.1"]
    assert asyncio.run(guard.addresses("::1", 80)) == ["::1"]
    assert asyncio.run(guard.addresses("localhost", 80)) == ["127.0.0.1"]


def test_every_plugin_publishes_a_demo_adapter():
    assert set(installed_adapters(["quickbooks", "twilio", "docusign", "stripe", "google_calendar",
                                   "google_drive", "not-installed"])) == {
        "quickbooks", "twilio", "docusign", "stripe", "google_calendar", "google_drive"}


def test_hub_serve_demo_prints_the_walkthrough(tmp_path):
    """The command itself, as a newcomer runs it: it serves, and prints the key and the curl commands."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {"HUB_LOG_FORMAT": "text"}
    process = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--demo", "--port", "0"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.startswith("curl -s http") and "/receiver" in line:
                break
        text = "".join(output)
        assert 'KEY="Authorization: Bearer hub_' in text, text
        assert "# " in text and "curl -s -X POST" in text, text
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
    assert not (tmp_path / ".hub").exists(), "demo mode wrote to the working directory's home"
