"""Schemathesis against the published OpenAPI document: no generated input may cause a 5xx, and every
error is the one JSON error shape."""

from __future__ import annotations

import httpx

from tests.conftest import ADMIN_TOKEN

EXAMPLES_PER_OPERATION = 25  # per operation and database: about 40 s each on this suite's CI


def test_no_generated_request_causes_a_server_error(live_hub):
    import schemathesis  # here, not at the top: only the worker that runs this test pays for the import

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    created = httpx.post(f"{live_hub.url}/v1/admin/tenants", json={"name": "Fuzz Co"}, headers=admin)
    tenant = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
    schema = schemathesis.openapi.from_url(f"{live_hub.url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    failures: list[str] = []
    for operation in operations:
        fuzz(operation, live_hub.url, admin if operation.path.startswith("/v1/admin") else tenant, failures)
    assert not failures, "\n".join(failures[:10])


def fuzz(operation, base_url: str, auth: dict[str, str], failures: list[str]) -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case):
        response = case.call(base_url=base_url, headers=auth)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}")
        elif response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), response.text

    check()


async def test_a_nul_character_in_a_query_is_a_400_on_every_backend(client, tenant):
    # PostgreSQL refuses NUL in text; SQLite compares it. Neither may turn it into a 500.
    for url in ("/v1/syncs?provider=a%00b", "/v1/webhook-inbox?provider=%00", "/v1/events?type=x%00"):
        response = await client.get(url, headers=tenant.headers)
        assert response.status_code in (200, 400), (url, response.text)
        if response.status_code == 400:
            assert response.json()["error"]["code"] == "invalid_request"


async def test_a_date_time_out_of_range_or_without_offset_is_not_a_500(client, tenant):
    out_of_range = "0001-01-01T00:00:00%2B01:00"
    for url in (f"/v1/webhook-inbox?before={out_of_range}", "/v1/webhook-inbox?before=2026-01-01T00:00:00"):
        response = await client.get(url, headers=tenant.headers)
        assert response.status_code in (200, 400), (url, response.text)
    bad = await client.get(f"/v1/webhook-inbox?before={out_of_range}", headers=tenant.headers)
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_datetime")
