"""The conformance suite every provider plugin runs, with one line in its tests::

    from hub.testing.conformance import conformance_suite
    from hub_acme.testing import AcmeAdapter

    TestAcmeConformance = conformance_suite(AcmeAdapter())

The adapter (a ``ProviderAdapter`` subclass the plugin writes) says how to start the plugin's simulator,
how to point the plugin at it, how to connect, what sample records and webhooks look like. Every check
runs against the real hub (``hub.testing.fixtures``: SQLite, and PostgreSQL with
``HUB_TEST_DATABASE_URL``) and the simulator over real HTTP. A check that does not apply to the plugin
(no webhooks, API-key auth without refresh ...) is skipped with the reason, never passed silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import select, update

from hub.auth import ApiKeyAuth, OAuth2
from hub.entities import ENTITIES
from hub.handlers import InboundSync, OutboundSync
from hub.testing.adapter import ProviderAdapter, seen_secrets
from hub.testing.flows import connect_oauth
from hub.testing.jobs import run_jobs

__all__ = ["ProviderAdapter", "conformance_suite", "seen_secrets"]



def conformance_suite(adapter: ProviderAdapter) -> type:
    """A pytest test class running every conformance check against ``adapter``'s provider."""
    return type(f"Conformance_{adapter.provider}", (_Suite,), {
        "adapter": adapter, "__test__": True, "pytestmark": [pytest.mark.only_on(database=adapter.databases)]})


async def _connection(client, tenant, provider: str) -> dict[str, Any] | None:
    response = await client.get(f"/v1/connections/{provider}", headers=tenant.headers)
    return response.json() if response.status_code == 200 else None


async def _context(hub, tenant_id, provider: str):
    from hub.connections import connection_context, get_connection

    async with hub.session(tenant_id) as session:
        return await connection_context(hub, session, await get_connection(session, tenant_id, provider))


async def _sync(client, hub, tenant, provider: str, entity: str, **body) -> dict[str, Any]:
    started = await client.post(f"/v1/connections/{provider}/syncs", json={"entity": entity, **body},
                                headers=tenant.headers)
    assert started.status_code == 202, started.text
    await run_jobs(hub)
    run = (await client.get(f"/v1/syncs/{started.json()['id']}", headers=tenant.headers)).json()
    assert run["status"] == "completed", run
    return run


async def _records(client, tenant, provider: str, entity: str) -> dict[str, Any]:
    page = (await client.get(f"/v1/records/{provider}/{entity}?limit=1000", headers=tenant.headers)).json()
    return {r["external_id"]: r["data"] for r in page["items"]}


@contextmanager
def _captured_logs() -> Iterator[list[str]]:
    """Every log record, formatted with its arguments, while the block runs, as the hub configures logging:
    the HTTP libraries it quiets (``hub.logs.QUIET_LOGGERS``: they would log the test's own browser-side
    requests, query strings and all) only from WARNING up."""
    from hub.logs import QUIET_LOGGERS

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.split(".")[0] in QUIET_LOGGERS and record.levelno < logging.WARNING:
                return
            lines.append(self.format(record) + " " + repr(getattr(record, "__dict__", {})))

    root, handler = logging.getLogger(), Keep(logging.DEBUG)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class _Suite:
    __test__ = False
    adapter: ProviderAdapter

    # -- wiring: the kit's fixtures, pointed at this provider's simulator ------------------------------
    @pytest.fixture
    def simulator(self):
        with self.adapter.simulator() as sim:
            yield sim

    @pytest.fixture
    def hub_plugins(self):
        return [self.adapter.plugin]

    @pytest.fixture
    def hub_environ(self, simulator):
        return self.adapter.environ(simulator)

    @property
    def slug(self) -> str:
        return self.adapter.provider

    def _info(self, hub):
        info = hub.registry.providers.get(self.slug)
        assert info is not None, f"the plugin registers no provider {self.slug!r}"
        return info

    # -- the provider's declaration --------------------------------------------------------------------
    async def test_provider_info_is_complete_and_everything_declared_has_a_schema(self, client):
        response = await client.get(f"/v1/providers/{self.slug}")
        assert response.status_code == 200, response.text
        info = response.json()
        for field in ("title", "category", "description", "auth_kind"):
            assert info[field], f"ProviderInfo.{field} is empty"
        assert info["docs_url"] and info["docs_url"].startswith("https://"), "ProviderInfo.docs_url is missing"
        assert info["syncs"] or info["actions"], "the provider registers neither a sync nor an action"
        if info["auth_kind"] == "oauth2":
            assert info["oauth_configured"], "the OAuth client is not configured by the adapter's environ"
            assert info["scopes"], "an OAuth provider declares the scopes it asks for"
        else:
            assert info["credential_fields_schema"], "an API-key provider publishes its credential fields"
        for action in info["actions"]:
            assert action["input_schema"] and action["output_schema"], action["name"]
            assert action["description"], f"action {action['name']} has no description"

    async def test_every_sync_entity_has_a_schema_and_its_mapper(self, hub):
        handlers = [h for h in hub.registry.syncs.values() if h.provider == self.slug]
        if not handlers:
            pytest.skip(f"{self.slug} registers no syncs")
        for handler in handlers:
            schema = handler.schema or ENTITIES.get(handler.entity)
            assert schema is not None, f"{handler.entity} is no core entity and its sync passes no schema="
            msgspec.json.schema(schema)
            mapper = hub.registry.mappers.get((self.slug, handler.entity))
            if isinstance(handler, OutboundSync):
                assert mapper is not None and mapper.to_provider, f"outbound {handler.entity} has no to_provider"
        info = self._info(hub)
        assert info.webhooks == (self.slug in hub.registry.verifiers), \
            "ProviderInfo.webhooks and the registered webhook verifier disagree"

    # -- connecting ------------------------------------------------------------------------------------
    async def test_connect_succeeds(self, client, hub, tenant, simulator):
        await self.adapter.connect(client, tenant, simulator)
        connection = await _connection(client, tenant, self.slug)
        assert connection["status"] == "connected"
        assert connection["external_account_id"], "AccountInfo.id is empty"

    async def test_bad_credentials_fail_cleanly_and_store_nothing(self, client, hub, tenant, simulator, settings,
                                                                    hub_factory):
        if isinstance(hub.registry.auth[self.slug], ApiKeyAuth):
            bad = self.adapter.bad_credentials(simulator)
            assert bad is not None, "the adapter gives no bad_credentials() for this API-key provider"
            response = await client.put(f"/v1/connections/{self.slug}", json={"credentials": bad},
                                        headers=tenant.headers)
            assert response.status_code in (400, 401, 403, 422), response.text
            assert response.json()["error"]["code"], response.text
        else:
            environ = self.adapter.wrong_client_environ(simulator)
            if environ is None:
                pytest.skip("the adapter gives no wrong_client_environ() to try a refused OAuth client")
            # The same database, served by a hub whose OAuth client secret the provider refuses.
            from litestar.testing import AsyncTestClient

            from hub.api.app import create_app
            from hub.testing.app import PUBLIC_URL

            wrong = hub_factory(msgspec.structs.replace(settings, environ=environ))
            try:
                async with AsyncTestClient(create_app(wrong), base_url=PUBLIC_URL) as wrong_client:
                    outcome = await connect_oauth(wrong_client, tenant, self.slug)
            finally:
                await wrong.aclose()
            assert outcome["status"] == ["error"], outcome
        connection = await _connection(client, tenant, self.slug)
        assert connection is None or connection["status"] != "connected", connection
        await self._assert_no_secrets_stored(hub)

    async def test_a_denied_consent_fails_cleanly_and_stores_nothing(self, client, hub, tenant, simulator):
        if not isinstance(hub.registry.auth[self.slug], OAuth2):
            pytest.skip(f"{self.slug} connects with API keys: there is no consent to deny")
        outcome = await connect_oauth(client, tenant, self.slug, decision="deny")
        assert outcome["status"] == ["error"] and outcome["error"] == ["access_denied"], outcome
        assert await _connection(client, tenant, self.slug) is None
        await self._assert_no_secrets_stored(hub)

    async def _assert_no_secrets_stored(self, hub) -> None:
        from hub.db.models import Connection

        async with hub.session() as session:
            rows = (await session.scalars(select(Connection).where(Connection.provider == self.slug))).all()
        assert all(r.access_token_enc is None and r.refresh_token_enc is None and r.credentials_enc is None
                   for r in rows), "a failed connect left secrets stored"

    # -- tokens ----------------------------------------------------------------------------------------
    async def test_token_refresh_works_and_is_single_flight(self, client, hub, tenant, simulator):
        if not isinstance(hub.registry.auth[self.slug], OAuth2):
            pytest.skip(f"{self.slug} connects with API keys: no token to refresh")
        from hub.db.models import Connection

        await self.adapter.connect(client, tenant, simulator)
        ctx = await _context(hub, tenant.id, self.slug)
        old = await ctx.access_token()
        simulator.expire_tokens()
        async with hub.session() as session:
            await session.execute(update(Connection).where(Connection.id == ctx.connection_id)
                                  .values(token_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
        before = self.adapter.refresh_calls(simulator)
        tokens = await asyncio.gather(*(ctx.access_token() for _ in range(8)))
        assert self.adapter.refresh_calls(simulator) - before == 1, "eight callers made more than one refresh"
        assert len(set(tokens)) == 1 and tokens[0] != old
        if self.adapter.probe is not None:
            await self._probe(hub, tenant)  # the provider takes the new token

    # -- inbound ---------------------------------------------------------------------------------------
    def _inbound(self, hub) -> list[InboundSync]:
        handlers = [h for h in hub.registry.syncs.values() if h.provider == self.slug and isinstance(h, InboundSync)]
        if not handlers:
            pytest.skip(f"{self.slug} has no inbound syncs")
        return handlers

    async def test_two_full_inbound_reads_give_the_same_records(self, client, hub, tenant, simulator):
        handlers = self._inbound(hub)
        await self.adapter.connect(client, tenant, simulator)
        self.adapter.seed_inbound(simulator)
        seen_any = False
        for handler in handlers:
            first = await _sync(client, hub, tenant, self.slug, handler.entity, type="full")
            records = await _records(client, tenant, self.slug, handler.entity)
            second = await _sync(client, hub, tenant, self.slug, handler.entity, type="full")
            assert await _records(client, tenant, self.slug, handler.entity) == records, handler.entity
            assert (second["created"], second["updated"]) == (0, 0), (handler.entity, first, second)
            seen_any = seen_any or bool(records)
        assert seen_any, "seed_inbound() put nothing the inbound syncs read"

    async def test_an_inbound_read_from_the_latest_cursor_yields_nothing_new(self, client, hub, tenant, simulator):
        handlers = self._inbound(hub)
        await self.adapter.connect(client, tenant, simulator)
        self.adapter.seed_inbound(simulator)
        for handler in handlers:
            await _sync(client, hub, tenant, self.slug, handler.entity, type="full")
            records = await _records(client, tenant, self.slug, handler.entity)
            again = await _sync(client, hub, tenant, self.slug, handler.entity, type="incremental")
            assert (again["created"], again["updated"]) == (0, 0), (handler.entity, again)
            assert await _records(client, tenant, self.slug, handler.entity) == records

    # -- outbound --------------------------------------------------------------------------------------
    async def test_an_outbound_sync_is_idempotent(self, client, hub, tenant, simulator):
        outbound = {h.entity for h in hub.registry.syncs.values()
                    if h.provider == self.slug and isinstance(h, OutboundSync)}
        if not outbound:
            pytest.skip(f"{self.slug} has no outbound syncs")
        samples = self.adapter.outbound_samples()
        assert set(samples) == outbound, f"outbound_samples() covers {set(samples)}, the plugin pushes {outbound}"
        await self.adapter.connect(client, tenant, simulator)
        for entity, records in samples.items():
            assert records, f"no sample records for {entity}"
            first = await _sync(client, hub, tenant, self.slug, entity, records=records)
            assert (first["created"], first["failed"]) == (len(records), 0), (entity, first)
            calls = self.adapter.provider_calls(simulator)
            second = await _sync(client, hub, tenant, self.slug, entity, records=records)
            assert (second["unchanged"], second["created"], second["updated"]) == (len(records), 0, 0), second
            assert self.adapter.provider_calls(simulator) == calls, f"an unchanged {entity} re-sync called the provider"
            mappings = (await client.get(f"/v1/connections/{self.slug}/mappings?entity={entity}&limit=1000",
                                         headers=tenant.headers)).json()["items"]
            assert len({m["external_id"] for m in mappings}) == len(records)
            remote = self.adapter.remote_count(simulator, entity)
            assert remote in (None, len(records)), f"the provider holds {remote} {entity} objects, not {len(records)}"

    # -- webhooks --------------------------------------------------------------------------------------
    async def test_webhooks_good_accepted_tampered_or_wrong_secret_rejected_redelivery_once(
            self, client, hub, tenant, simulator):
        if self.slug not in hub.registry.verifiers:
            pytest.skip(f"{self.slug} takes no webhooks")
        from hub.db.models import WebhookInbox

        await self.adapter.connect(client, tenant, simulator)
        connection = await _connection(client, tenant, self.slug)
        good = self.adapter.webhook(simulator, connection, secret="good")
        wrong = self.adapter.webhook(simulator, connection, secret="wrong")
        assert good is not None and wrong is not None, "the adapter builds no webhooks for a provider that takes them"
        path = self.adapter.webhook_path(connection)

        async def inbox() -> list:
            async with hub.session() as session:
                return list(await session.scalars(select(WebhookInbox).where(WebhookInbox.provider == self.slug)))

        body, headers = good
        refused = [wrong]
        if body:  # a provider that sends no body (Google's push notifications) has none to tamper with
            tampered = bytearray(body)
            tampered[len(tampered) // 2] ^= 0x01
            refused.insert(0, (bytes(tampered), headers))
        for refused_body, refused_headers in refused:
            response = await client.post(path, content=refused_body, headers=refused_headers)
            assert response.status_code == 401, response.text
        assert await inbox() == [], "a refused webhook was stored"

        for _ in range(2):  # the provider redelivers what it thinks was not acknowledged
            response = await client.post(path, content=body, headers=headers)
            assert 200 <= response.status_code < 300, response.text
        await run_jobs(hub)
        rows = await inbox()
        assert rows and len(rows) == len({r.dedup_key for r in rows}), "the redelivery was stored twice"
        assert {r.status for r in rows} == {"processed"}, [(r.status, r.last_error) for r in rows]
        assert all(r.attempts == 1 for r in rows), "an event was processed more than once"

    # -- logs ------------------------------------------------------------------------------------------
    async def test_no_secret_appears_in_logs(self, client, hub, tenant, simulator):
        with _captured_logs() as lines:
            await self.adapter.connect(client, tenant, simulator)
            if isinstance(hub.registry.auth[self.slug], OAuth2):
                from hub.db.models import Connection

                simulator.expire_tokens()
                async with hub.session() as session:
                    await session.execute(update(Connection).values(
                        token_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
            if self.adapter.probe is not None:
                await self._probe(hub, tenant)
            self.adapter.seed_inbound(simulator)
            for handler in [h for h in hub.registry.syncs.values() if h.provider == self.slug]:
                if isinstance(handler, InboundSync):
                    await _sync(client, hub, tenant, self.slug, handler.entity, type="full")
            for entity, records in self.adapter.outbound_samples().items():
                await _sync(client, hub, tenant, self.slug, entity, records=records)
            connection = await _connection(client, tenant, self.slug)
            for secret in ("good", "wrong"):
                hook = self.adapter.webhook(simulator, connection, secret=secret)
                if hook is not None:
                    await client.post(self.adapter.webhook_path(connection), content=hook[0], headers=hook[1])
            await run_jobs(hub)
        secrets = [s for s in self.adapter.secrets(simulator) if s and len(s) >= 8]
        assert secrets, "the adapter names no secrets() to look for"
        text = "\n".join(lines)
        assert lines, "nothing was logged at all: the check would prove nothing"
        leaked = [s[:4] + "..." for s in secrets if s in text]
        assert not leaked, f"secrets in the logs: {leaked}"

    # -- rate limits -----------------------------------------------------------------------------------
    async def _probe(self, hub, tenant) -> None:
        name, data = self.adapter.probe
        action = hub.registry.actions[(self.slug, name)]
        await action.handler(await _context(hub, tenant.id, self.slug), msgspec.convert(data, action.input))

    async def test_the_declared_rate_limits_are_respected(self, client, hub, tenant, simulator):
        limits = [limit for limit in self._info(hub).rate_limits if limit.scope is None]
        if not limits:
            pytest.skip(f"{self.slug} declares no rate limits")
        if self.adapter.probe is None:
            pytest.skip("the adapter names no probe action to exercise the limits with")
        await self.adapter.connect(client, tenant, simulator)
        await self._probe(hub, tenant)  # a first call (a token refresh, a lookup) outside the measure
        checked = False
        concurrency = min((limit.concurrency for limit in limits if limit.concurrency), default=None)
        if concurrency is not None:
            simulator.latency, simulator.max_in_flight = 0.1, 0
            await asyncio.gather(*(self._probe(hub, tenant) for _ in range(concurrency * 3)))
            simulator.latency = 0.0
            assert simulator.max_in_flight <= concurrency, \
                f"{simulator.max_in_flight} requests in flight at once; the provider allows {concurrency}"
            checked = True
        quick = [limit for limit in limits if limit.requests <= 50 and limit.per_seconds <= 5]
        for limit in quick:
            await asyncio.sleep(limit.per_seconds)  # a fresh window
            calls, started = self.adapter.provider_calls(simulator), time.monotonic()
            await asyncio.gather(*(self._probe(hub, tenant) for _ in range(limit.requests + 1)))
            made = self.adapter.provider_calls(simulator) - calls
            assert made >= limit.requests + 1
            assert time.monotonic() - started >= limit.per_seconds * 0.95, \
                f"{made} requests went out faster than {limit.requests} per {limit.per_seconds} s"
            checked = True
        if not checked:
            pytest.skip("the declared limits are too wide to exercise in a test (no concurrency limit, and no "
                        "request limit of at most 50 per 5 s)")

    async def test_the_request_count_is_visible_to_the_suite(self, client, hub, tenant, simulator):
        """The adapter's provider_calls() must move when the plugin calls the provider, or the idempotency
        and rate-limit checks would prove nothing."""
        before = self.adapter.provider_calls(simulator)
        await self.adapter.connect(client, tenant, simulator)
        assert self.adapter.provider_calls(simulator) > before

