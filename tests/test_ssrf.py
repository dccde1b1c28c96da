"""The guard against server-side request forgery, at create time and at send time.

No test here can open a connection, even with the guard broken: host names resolve through ``FakeDns``
and every connection the delivery client would open goes to ``RecordingBackend``, which writes down
where it was asked to connect and raises instead of connecting.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import timedelta

import httpcore
import msgspec
import pytest

from hub.testing.clock import Clock
from hub.webhooks.delivery import Outbound, deliver_due
from hub.webhooks.ssrf import is_public

PUBLIC_V4 = "93.184.216.34"


class FakeDns:
    def __init__(self, answers: dict[str, list[str] | list[list[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        answer = self.answers.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if answer and isinstance(answer[0], list):  # successive answers: the last one repeats
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer


class RecordingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connects.append((host, port))
        raise httpcore.ConnectError("recorded; no connection opened")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)


DNS = {
    "hooks.example": [PUBLIC_V4],
    "loopback.example": ["127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
    "mixed.example": [PUBLIC_V4, "10.0.0.7"],
    "metadata.example": ["169.254.169.254"],
    "v6.example": ["2606:2800:220:1:248:1893:25c8:1946"],
}


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns({host: list(addresses) for host, addresses in DNS.items()})


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


@pytest.fixture
def guarded(hub, dns, backend):
    """The hub with the guard on (the default) and the network replaced below it."""
    assert hub.settings.allow_private_webhook_urls is False
    hub.webhooks = Outbound(hub.settings, resolver=dns, backend=backend)
    return hub


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.8.8", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "255.255.255.255", "224.0.0.1", "240.0.0.1", "192.0.2.1", "198.18.0.1", "::1", "::",
    "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "2002:7f00:1::", "64:ff9b::a00:1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1",
])
def test_addresses_that_are_not_global_unicast_are_refused(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [PUBLIC_V4, "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8", "2002:808:808::"])
def test_global_unicast_addresses_are_allowed(address):
    assert is_public(ipaddress.ip_address(address))


REFUSED = [
    "http://127.0.0.1/hooks", "http://10.0.0.1/hooks", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hooks", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0:8000/", "http://100.64.0.1/",
    "http://[fd00:ec2::254]/", "http://loopback.example/hooks", "https://localhost:8443/",
    "http://mixed.example/", "http://metadata.example/",
]


async def test_private_loopback_and_metadata_urls_are_refused_at_create_time(client, guarded, tenant, dns, backend):
    for url in REFUSED:
        response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=tenant.headers)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "webhook_url_not_allowed", url
    unknown = await client.post("/v1/webhook-endpoints", json={"url": "http://nowhere.example/"},
                                headers=tenant.headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "webhook_url_unresolvable"
    assert (await client.get("/v1/webhook-endpoints", headers=tenant.headers)).json() == []
    assert set(dns.asked) == {"loopback.example", "localhost", "mixed.example", "metadata.example",
                              "nowhere.example"}  # IP literals are checked as they are
    for url in ("https://hooks.example/in", "http://v6.example:8080/in"):
        ok = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=tenant.headers)
        assert ok.status_code == 201, ok.text
    assert backend.connects == []


async def test_changing_the_url_to_a_private_one_is_refused(client, guarded, tenant, backend):
    created = (await client.post("/v1/webhook-endpoints", json={"url": "https://hooks.example/in"},
                                 headers=tenant.headers)).json()
    for url in ("http://127.0.0.1/", "http://loopback.example/"):
        response = await client.patch(f"/v1/webhook-endpoints/{created['id']}", json={"url": url},
                                      headers=tenant.headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "webhook_url_not_allowed"
    assert (await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=tenant.headers)).json()["url"] == (
        "https://hooks.example/in")


async def test_the_guard_runs_again_at_send_time_and_connects_only_to_the_checked_address(
        client, guarded, tenant, dns, backend):
    clock = guarded.clock = Clock()
    created = (await client.post("/v1/webhook-endpoints", json={"url": "https://hooks.example/in"},
                                 headers=tenant.headers)).json()
    await client.post("/v1/events", json={"type": "invoice.paid", "data": {}}, headers=tenant.headers)

    await deliver_due(guarded)
    assert backend.connects == [(PUBLIC_V4, 443)]  # the resolved, checked address; never the name again

    dns.answers["hooks.example"] = ["127.0.0.1"]  # DNS changed since the endpoint was created
    clock.advance(timedelta(seconds=10))
    await deliver_due(guarded)

    assert backend.connects == [(PUBLIC_V4, 443)]
    [delivery] = (await client.get(f"/v1/webhook-endpoints/{created['id']}/deliveries",
                                   headers=tenant.headers)).json()
    first, second = delivery["attempt_log"]
    assert first["error"].startswith("ConnectError") and first["status_code"] is None
    assert second["error"].startswith("refused: hooks.example resolves to 127.0.0.1")
    assert delivery["status"] == "pending" and delivery["attempts"] == 2


async def test_a_name_that_rebinds_between_check_and_send_is_refused(client, guarded, tenant, dns, backend):
    dns.answers["rebind.example"] = [[PUBLIC_V4], ["169.254.169.254"]]  # public first, metadata after
    created = await client.post("/v1/webhook-endpoints", json={"url": "http://rebind.example/"},
                                headers=tenant.headers)
    assert created.status_code == 201
    await client.post("/v1/events", json={"type": "job.created", "data": {}}, headers=tenant.headers)

    report = await deliver_due(guarded)

    assert backend.connects == []
    assert report.outcomes[0].error.startswith("refused: rebind.example resolves to 169.254.169.254")


async def test_the_operator_can_allow_private_addresses(client, hub, tenant, dns, backend):
    hub.webhooks = Outbound(msgspec.structs.replace(hub.settings, allow_private_webhook_urls=True), resolver=dns,
                            backend=backend)
    created = await client.post("/v1/webhook-endpoints", json={"url": "http://10.0.0.1:8080/in"},
                                headers=tenant.headers)
    assert created.status_code == 201
    await client.post("/v1/events", json={"type": "job.created", "data": {}}, headers=tenant.headers)
    await deliver_due(hub)
    assert backend.connects == [("10.0.0.1", 8080)]
