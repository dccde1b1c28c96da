"""What an operator watches: Prometheus metrics, JSON log lines with request, tenant and job ids (and no
secrets), and readiness that reflects the database and the broker."""

from __future__ import annotations

import io
import json
import logging
import socket

import msgspec
import pytest
from prometheus_client import REGISTRY

from hub.logs import ContextAndRedact, JsonLines, redact
from hub.testing import run_jobs
from tests.flows import connect


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def action_requests() -> dict[str, float]:
    """``hub_requests_total`` of POSTs to an action that answered 200, by the path label."""
    return {s.labels["path"]: s.value for metric in REGISTRY.collect() if metric.name == "hub_requests"
            for s in metric.samples if s.name == "hub_requests_total" and "/actions/" in s.labels["path"]
            and s.labels["method"] == "POST" and s.labels["status_code"] == "200"}


@pytest.fixture
def log_lines():
    """Everything the hub logs at INFO and above, as the JSON lines ``hub serve`` writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextAndRedact())
    handler.setFormatter(JsonLines())
    hub_logger = logging.getLogger("hub")
    level = hub_logger.level
    hub_logger.addHandler(handler)
    hub_logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        hub_logger.removeHandler(handler)
        hub_logger.setLevel(level)


async def test_metrics_count_requests_by_route_template_provider_calls_jobs_and_synced_records(
        client, hub, tenant, provider):
    await connect(client, tenant)
    before = (sum(action_requests().values()),
              sample("hub_provider_requests_total", provider="testoauth", status="200"),
              sample("hub_jobs_total", kind="sync.run", outcome="done"),
              sample("hub_sync_records_total", provider="testoauth", entity="payment", direction="inbound",
                     outcome="created"))
    provider.state.put_payment("pay_1", "10.00")
    provider.state.put_payment("pay_2", "12.00")

    echoed = await client.post("/v1/connections/testoauth/actions/echo", json={"text": "hi"}, headers=tenant.headers)
    webhooks = sample("hub_requests_total", method="POST", path="/v1/webhooks/{provider}", status_code="404",
                      app_name="hub")
    await client.post("/v1/webhooks/nosuch", content=b"{}")
    await client.post("/v1/webhooks/a/b/c", content=b"{}")  # the mount's, but no route of it
    started = await client.post("/v1/connections/testoauth/syncs", json={"entity": "payment"}, headers=tenant.headers)
    await run_jobs(hub)
    scraped = await client.get("/metrics")

    assert echoed.status_code == 200 and started.status_code == 202, started.text
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    after = (sum(action_requests().values()),
             sample("hub_provider_requests_total", provider="testoauth", status="200"),
             sample("hub_jobs_total", kind="sync.run", outcome="done"),
             sample("hub_sync_records_total", provider="testoauth", entity="payment", direction="inbound",
                    outcome="created"))
    assert after[0] - before[0] == 1
    assert sample("hub_requests_total", method="POST", path="/v1/webhooks/{provider}", status_code="404",
                  app_name="hub") == webhooks + 1  # the webhook receiver's requests, by its route template too
    assert sample("hub_requests_total", method="POST", path="/v1/webhooks", status_code="404", app_name="hub") >= 1
    assert all(s.labels["path"] for m in REGISTRY.collect() if m.name.startswith("hub_requests") for s in m.samples
               if "path" in s.labels)  # never an empty template
    assert 'path="/metrics"' not in (await client.get("/metrics")).text  # scraping makes no series of its own
    assert all("{" in path and "echo" not in path for path in action_requests())  # the route's template
    assert after[1] - before[1] >= 2  # the echo and the payments read
    assert after[2] - before[2] >= 1
    assert after[3] - before[3] == 2
    text = scraped.text
    assert "hub_jobs_waiting{status=\"pending\"}" in text and "hub_webhook_deliveries_waiting" in text
    assert "/v1/connections/testoauth/actions/echo" not in text and str(tenant.id) not in text


async def test_queue_gauges_read_depth_and_age_from_the_jobs_table(client, hub, tenant, provider, clock):
    await connect(client, tenant)
    await client.post("/v1/connections/testoauth/syncs", json={"entity": "payment"}, headers=tenant.headers)
    clock.advance(90)

    text = (await client.get("/metrics")).text

    pending = [line for line in text.splitlines() if line.startswith('hub_jobs_waiting{status="pending"}')]
    assert pending and float(pending[0].split()[-1]) >= 1
    oldest = [line for line in text.splitlines() if line.startswith("hub_jobs_oldest_due_seconds ")]
    assert float(oldest[0].split()[-1]) >= 89


@pytest.mark.only_on(database="sqlite")  # nothing here depends on the database
async def test_each_log_line_of_a_request_carries_its_request_id_and_tenant_and_never_a_secret(
        client, hub, tenant, provider, log_lines):
    await connect(client, tenant)

    response = await client.post("/v1/connections/testoauth/actions/echo", json={"text": "hi"},
                                 headers={**tenant.headers, "X-Request-ID": "req-7f3a"})
    logging.getLogger("hub.provider.testoauth").warning("sdk said: Authorization: Bearer %s", "whsec_abcdef123456XYZ")

    assert response.headers["x-request-id"] == "req-7f3a"
    lines = log_lines()
    calls = [line for line in lines if line.get("provider") == "testoauth" and line.get("status") == 200]
    assert calls, lines
    assert calls[-1]["request_id"] == "req-7f3a" and calls[-1]["tenant_id"] == str(tenant.id)
    assert calls[-1]["level"] == "info" and calls[-1]["logger"] == "hub.http"
    raw = json.dumps(lines)
    assert "whsec_abcdef123456XYZ" not in raw and tenant.key not in raw
    assert any("Bearer [redacted]" in line["message"] for line in lines)


@pytest.mark.only_on(database="sqlite")  # nothing here depends on the database
async def test_a_request_without_a_usable_id_gets_one_of_its_own(client):
    given = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    none = await client.get("/healthz")

    assert given.headers["x-request-id"] != "bad id with spaces"
    assert len(given.headers["x-request-id"]) == 32 and len(none.headers["x-request-id"]) == 32
    assert given.headers["x-request-id"] != none.headers["x-request-id"]


@pytest.mark.only_on(database="sqlite")  # nothing here depends on the database
async def test_a_jobs_log_lines_carry_the_job_and_its_tenant(client, hub, tenant, provider, log_lines):
    await connect(client, tenant)
    await client.post("/v1/connections/testoauth/syncs", json={"entity": "payment"}, headers=tenant.headers)

    await run_jobs(hub)

    finished = [line for line in log_lines() if line["message"].startswith("sync run ")]
    jobs = (await client.get("/v1/jobs", headers=tenant.headers)).json()
    assert finished and finished[-1]["tenant_id"] == str(tenant.id)
    assert finished[-1]["job_id"] in {job["id"] for job in jobs}


@pytest.mark.only_on(database="sqlite")  # nothing here depends on the database
async def test_readiness_reflects_the_broker(client, hub):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket closes
    assert (await client.get("/readyz")).status_code == 200
    hub.settings = msgspec.structs.replace(hub.settings, broker_url=f"redis://127.0.0.1:{port}/0")

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "broker: ConnectionError"}


@pytest.mark.parametrize(("text", "masked"), [
    ("Authorization: bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "Authorization: bearer [redacted]"),
    ("key hub_AbCdEf1234567890xyz rejected", "key hub_[redacted] rejected"),
    ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", "secret whsec_[redacted]"),
    ("refresh_token=1//0abcdefgh&grant_type=x", "refresh_token=[redacted]&grant_type=x"),
    ('{"client_secret": "shh-very-secret"}', '{"client_secret": "[redacted]"}'),
    ("HUB_ENCRYPTION_KEYS is unset: generated a key", "HUB_ENCRYPTION_KEYS is unset: generated a key"),
    ("sync run 7 completed", "sync run 7 completed"),
])
def test_secret_shaped_text_is_masked_and_the_rest_kept(text, masked):
    assert redact(text) == masked
