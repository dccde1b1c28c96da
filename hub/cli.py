"""The ``hub`` command."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import msgspec

from hub.config import Settings
from hub.errors import HubError, PluginError
from hub.logs import configure_logging

T = TypeVar("T")


def _settings() -> Settings:
    return Settings.from_env()


def _hub(**kwargs: Any):
    from hub.runtime import Hub

    settings = _settings()
    if settings.broker_url and not settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        raise click.ClickException("HUB_BROKER_URL must be a redis:// URL (or unset for the in-process worker)")
    try:
        return Hub.create(settings, **kwargs)
    except (PluginError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


async def _ensure_schema(hub) -> None:
    """The embedded database is migrated on use; a server database must be migrated on purpose."""
    from hub.db.migrate import current_revision, head_revision, upgrade_async

    if hub.settings.is_embedded_database:
        await upgrade_async(hub.engine)
    elif await current_revision(hub.engine) != head_revision():
        raise click.ClickException("the database schema is not current: run `hub migrate` first")


def _run(work: Callable[[Any], Awaitable[T]], *, schema: bool = True) -> T:
    """Run ``work(hub)`` on a fresh hub and close it; hub and database errors become clean CLI errors."""
    from sqlalchemy.exc import OperationalError

    hub = _hub()

    async def main() -> T:
        try:
            if schema:
                await _ensure_schema(hub)
            return await work(hub)
        finally:
            await hub.aclose()

    try:
        return asyncio.run(main())
    except HubError as exc:
        raise click.ClickException(f"{exc.message} ({exc.code})") from None
    except OperationalError as exc:
        raise click.ClickException(f"the database is unreachable: {type(exc.orig).__name__}") from None


def _in_session(work: Callable[[Any], Awaitable[T]]) -> T:
    """``_run`` for work that needs one unit of work: ``work(session)``."""

    async def run(hub):
        async with hub.session() as session:
            return await work(session)

    return _run(run)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2))


def _uuid(ctx: click.Context, param: click.Parameter, value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter("not a UUID") from None


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.option("--log-format", type=click.Choice(["json", "text"]), envvar="HUB_LOG_FORMAT",
              help="json: one object a line with request, tenant and job ids (the default unless on a terminal).")
def main(verbose: bool, log_format: str | None) -> None:
    """The integration hub. Configuration comes from HUB_* environment variables (see README)."""
    configure_logging(verbose, log_format)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--migrate/--no-migrate", default=None,
              help="Bring the schema to head on start (default: on for the embedded SQLite database).")
@click.option("--demo", is_flag=True,
              help="Demo mode: every installed plugin on its local simulator, a demo tenant connected to each, "
                   "and a walk-through of curl commands. Uses a throwaway home; connects only to 127.0.0.1.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, migrate: bool | None, demo: bool) -> None:
    """Run the HTTP API."""
    from hub import serving

    if demo:
        from hub.demo import Demo

        serving.tune_interpreter()
        try:
            Demo(host=host, port=port).run(verbose=bool(ctx.parent and ctx.parent.params.get("verbose")))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc} (--port)") from None
        except (PluginError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        return
    from hub.api.app import create_app
    from hub.jobs.worker import background_for

    hub = _hub()
    settings = hub.settings
    if migrate is None:
        migrate = settings.is_embedded_database
    app = create_app(hub, migrate=migrate, owns_hub=True, background=background_for(settings))
    if settings.admin_token is None:
        click.echo(f"admin token: {settings.home / 'admin_token'}", err=True)
    click.echo(f"providers: {', '.join(sorted(hub.registry.providers)) or 'none installed'}", err=True)
    serving.run(app, host, port)


@main.command()
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Threads per process.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve Prometheus metrics on this port (process N of --processes on PORT+N).")
def worker(processes: int, threads: int, metrics_port: int | None) -> None:
    """Run jobs from HUB_BROKER_URL's queue (syncs, deliveries), on any machine."""
    import multiprocessing

    from hub.jobs.worker import run_worker

    settings = _settings()
    if settings.broker_url is None:
        raise click.ClickException("HUB_BROKER_URL is unset: `hub serve` runs the jobs itself (embedded worker)")
    _hub()  # fail here, clearly, on bad plugins or configuration
    if processes == 1:
        _serve_metrics(metrics_port)
        run_worker(settings, _hub, threads)
        return
    import signal

    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_worker_process, daemon=False,
                                args=(threads, None if metrics_port is None else metrics_port + n))
                for n in range(processes)]
    for child in children:
        child.start()

    def stop_children(signum, frame) -> None:  # each child finishes its messages and exits
        for child in children:
            if child.is_alive():
                child.terminate()

    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    for child in children:
        child.join()


def _worker_process(threads: int, metrics_port: int | None) -> None:
    from hub.jobs.worker import run_worker

    configure_logging()
    _serve_metrics(metrics_port)
    run_worker(_settings(), _hub, threads)


def _serve_metrics(port: int | None) -> None:
    if port is not None:
        from prometheus_client import start_http_server

        start_http_server(port, addr="0.0.0.0")
        click.echo(f"metrics on :{port}/metrics", err=True)


@main.command()
def migrate() -> None:
    """Bring the database schema to the latest revision."""
    from hub.db.migrate import upgrade_async

    _run(lambda hub: upgrade_async(hub.engine), schema=False)
    click.echo("database is at the latest revision")


@main.command()
def plugins() -> None:
    """Installed plugins, their versions, and what each provides."""
    hub = _hub()
    registry = hub.registry
    if not registry.plugins:
        click.echo("no provider plugins installed (pip install ./plugins/<name>)")
    for record in registry.plugins.values():
        version = f" ({record.distribution} {record.version})" if record.distribution else " (not installed)"
        click.echo(f"{record.name}{version}")
        click.echo(f"  hooks: {', '.join(record.hooks) or '-'}")
        for slug in record.providers:
            info = registry.providers[slug]
            click.echo(f"  {slug}: {info.title} ({info.category}, auth {info.auth_kind})")
            syncs = ", ".join(f"{s.entity} {s.direction}" for s in registry.syncs_for(slug))
            actions = ", ".join(a.name for a in registry.actions_for(slug))
            click.echo(f"    syncs: {syncs or '-'}")
            click.echo(f"    actions: {actions or '-'}")
            click.echo(f"    webhooks: {'yes' if slug in registry.verifiers else 'no'}")


@main.group()
def plugin() -> None:
    """Write provider plugins."""


@plugin.command("new")
@click.argument("name")
@click.option("--path", "path", type=click.Path(file_okay=False), default=None,
              help="Where to write it (default: plugins/NAME under the current directory).")
def plugin_new(name: str, path: str | None) -> None:
    """A new provider plugin NAME (its slug): pyproject with the entry point, plugin, client, mappers,
    webhooks, a simulator and tests that run the conformance suite. It passes its tests as generated."""
    from pathlib import Path

    from hub.scaffold import render

    target = Path(path) if path else Path("plugins") / name
    try:
        files = render(name, target)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {len(files)} files to {target}")
    click.echo(f"next: pip install -e '{target}[test]' && (cd {target} && pytest)")


@main.group()
def tenants() -> None:
    """Create and list tenants."""


@tenants.command("create")
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True, help="The tenant's default IANA time zone.")
def tenants_create(name: str, timezone: str) -> None:
    """Create a tenant; prints its id and a new API key (shown once) as JSON."""
    from hub import tenants as svc

    async def work(session):
        tenant = await svc.create_tenant(session, name, {"timezone": timezone})
        key = await svc.create_api_key(session, tenant.id, "default")
        return {"tenant": svc.tenant_out(tenant), "api_key": key}

    _echo_json(_in_session(work))


@tenants.command("list")
def tenants_list() -> None:
    """All tenants, as JSON."""
    from hub import tenants as svc

    async def work(session):
        return [svc.tenant_out(t) for t in await svc.list_tenants(session)]

    _echo_json(_in_session(work))


@main.group("api-keys")
def api_keys() -> None:
    """Issue, list and revoke tenants' API keys."""


@api_keys.command("create")
@click.option("--tenant", "tenant_id", required=True, callback=_uuid, help="Tenant id.")
@click.option("--name", default=None, help="A name to recognise the key by.")
def api_keys_create(tenant_id: uuid.UUID, name: str | None) -> None:
    """Issue a new API key (shown once)."""
    from hub import tenants as svc

    async def work(session):
        return await svc.create_api_key(session, tenant_id, name)

    _echo_json(_in_session(work))


@api_keys.command("list")
@click.option("--tenant", "tenant_id", required=True, callback=_uuid, help="Tenant id.")
def api_keys_list(tenant_id: uuid.UUID) -> None:
    """A tenant's keys: prefixes, names, last use; never the keys themselves."""
    from hub import tenants as svc

    async def work(session):
        await svc.get_tenant(session, tenant_id)
        return [svc.api_key_out(k) for k in await svc.list_api_keys(session, tenant_id)]

    _echo_json(_in_session(work))


@api_keys.command("revoke")
@click.argument("key_id", callback=_uuid)
def api_keys_revoke(key_id: uuid.UUID) -> None:
    """Revoke an API key by its id."""
    from hub import tenants as svc

    async def work(session):
        return svc.api_key_out(await svc.revoke_api_key(session, key_id))

    _echo_json(_in_session(work))


@main.command()
@click.argument("provider")
@click.argument("entity")
@click.option("--tenant", "tenant_id", required=True, callback=_uuid, help="Tenant id.")
@click.option("--file", "records_file", type=click.File("rb"), default=None,
              help="JSON array of records to push (outbound). Without it, pull from the provider (inbound).")
@click.option("--full", is_flag=True, help="Inbound: read everything again instead of continuing from the cursor.")
def sync(provider: str, entity: str, tenant_id: uuid.UUID, records_file, full: bool) -> None:
    """Run a sync and show its progress; exits 1 when records failed or the run did not complete."""
    from hub.sync.run_cli import run_sync_command

    records = None
    if records_file is not None:
        try:
            records = msgspec.json.decode(records_file.read(), type=list[dict])
        except msgspec.DecodeError as exc:
            raise click.BadParameter(f"not a JSON array of objects: {exc}", param_hint="--file") from None
    kind = "full" if full else "incremental"
    run = _run(lambda hub: run_sync_command(hub, tenant_id, provider, entity, records, kind))
    _echo_json(run)
    if run.status != "completed":
        sys.exit(1)


@main.group()
def jobs() -> None:
    """Background jobs: see what failed, and retry it."""


@jobs.command("list")
@click.option("--status", type=click.Choice(["pending", "running", "done", "failed"]), default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
def jobs_list(status: str | None, limit: int) -> None:
    """Jobs, newest first, as JSON."""
    from sqlalchemy import select

    from hub.db.models import Job
    from hub.jobs.schemas import job_out

    async def work(session):
        stmt = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if status:
            stmt = stmt.where(Job.status == status)
        return [job_out(j) for j in (await session.scalars(stmt)).all()]

    _echo_json(_in_session(work))


@jobs.command("retry")
@click.argument("job_id", callback=_uuid)
def jobs_retry(job_id: uuid.UUID) -> None:
    """Give a failed job a fresh set of attempts; a worker (or `hub serve`) picks it up."""
    from hub.jobs import outbox
    from hub.jobs.schemas import job_out

    async def work(session):
        return job_out(await outbox.retry(session, job_id))

    _echo_json(_in_session(work))


@main.group()
def webhooks() -> None:
    """Inbound provider webhooks: the inbox, reprocessing, and a signed test delivery."""


@webhooks.command("inbox")
@click.option("--status", type=click.Choice(["pending", "processed", "failed", "unrouted"]), default=None)
@click.option("--provider", default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
def webhooks_inbox(status: str | None, provider: str | None, limit: int) -> None:
    """Inbound webhooks of every tenant (and the unrouted), newest first, as JSON."""
    from hub.webhooks.inbox import inbox_out, list_inbox

    async def work(session):
        rows = await list_inbox(session, tenant_id=None, status=status, provider=provider, before=None,
                                limit=limit)
        return [inbox_out(r) for r in rows]

    _echo_json(_in_session(work))


@webhooks.command("reprocess")
@click.argument("inbox_id", callback=_uuid)
def webhooks_reprocess(inbox_id: uuid.UUID) -> None:
    """Queue a stored webhook for processing again (an unrouted one is routed first)."""
    from hub.webhooks.inbox import inbox_out
    from hub.webhooks.process import reprocess

    async def work(session):
        return inbox_out(await reprocess(session, inbox_id))

    _echo_json(_in_session(work))


@webhooks.command("rejections")
def webhooks_rejections() -> None:
    """How many webhooks each provider had refused for a bad signature."""
    from hub.webhooks.inbox import rejection_counts

    async def work(session):
        return await rejection_counts(session)

    _echo_json(_in_session(work))


@webhooks.command("send-test")
@click.argument("provider")
@click.argument("event_type")
@click.option("--url", default=None, help="The running hub's base URL (default: HUB_PUBLIC_URL).")
def webhooks_send_test(provider: str, event_type: str, url: str | None) -> None:
    """Post a correctly signed sample PROVIDER webhook of EVENT_TYPE to a running hub, as the provider
    would (signed with the secrets this environment configures), and print the hub's answer."""
    import httpx

    hub = _hub()
    try:
        verifier = hub.registry.verifiers.get(provider)
        if verifier is None:
            raise click.ClickException(f"no installed plugin receives {provider} webhooks")
        if verifier.sample is None or verifier.per_connection:
            raise click.ClickException(f"the {provider} plugin cannot sign a sample webhook")
        path = f"/v1/webhooks/{provider}"
        # Signed for the URL the hub checks against (HUB_PUBLIC_URL), sent to wherever it runs.
        request = verifier.sample(event_type, hub.settings.public_url + path)
    finally:
        asyncio.run(hub.aclose())
    target = (url or hub.settings.public_url).rstrip("/") + path
    try:
        response = httpx.post(target, content=request.body, headers=request.headers, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"could not reach {target}: {type(exc).__name__}") from None
    click.echo(f"{response.status_code} {response.text}")
    if not response.is_success:
        sys.exit(1)


@main.group()
def keys() -> None:
    """Encryption keys for secrets at rest."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random key, to put first in HUB_ENCRYPTION_KEYS."""
    from hub.vault import generate_key

    click.echo(generate_key())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every secret with the first key of HUB_ENCRYPTION_KEYS (safe while the hub serves).

    Put the new key first and keep the old ones after it; once this finishes, the old keys can go."""
    from hub.keys import rotate_secrets

    count = _run(rotate_secrets)
    click.echo(f"re-encrypted {count} secret(s) with the first key")


if __name__ == "__main__":
    main()
