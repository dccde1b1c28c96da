"""The hosted connect page: ``/connect/{token}``, where a tenant's user connects and disconnects the providers
a connect session allows (``POST /v1/connect-sessions`` makes the link). Server-rendered HTML with plain
forms; no JavaScript anywhere. Every action goes through the same code as the tenant API's: OAuth through
``start_authorization``, API keys through ``connect_with_credentials`` and disconnecting through ``disconnect``.

CSRF: the forms carry no token of their own. A form can only be posted to a URL holding the session's
unguessable token (the capability), which a cross-site page cannot know; the page never leaks it through
a Referer (``Referrer-Policy: no-referrer``), cannot be framed, and a POST the browser marks as cross-site
(``Sec-Fetch-Site``) is refused anyway. No cookie authenticates anything here, so there is no ambient
credential for a forged request to ride on.

The OAuth return: the provider sends the user to the hub's callback, which redirects to the return URL the
flow was started with. That URL must not hold the page's token (the OAuth state row keeps it in clear), so
it is ``/connect/return/{session id}``, and the token rides in a cookie scoped to that one path, which
takes the user back to ``/connect/{token}`` with the outcome.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router

from hub import connections as svc
from hub.api.deps import HubDep
from hub.auth import ApiKeyAuth, OAuth2
from hub.connect_forms import FormErrors, FormField, description_of, errors_from, fields_of, parse
from hub.connect_sessions import LinkGone, session_for_token
from hub.db.models import Connection, ConnectSession, Tenant
from hub.errors import HubError
from hub.oauth import start_authorization
from hub.runtime import Hub

log = logging.getLogger("hub.api")

RETURN_COOKIE = "hub_connect"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the page's URL holds its token
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
_OAUTH_ERRORS = {
    "access_denied": "You did not allow the hub to use {title}. Connect again when you are ready.",
    "state_expired": "Connecting {title} took too long. Please try again.",
    "state_used": "That {title} sign-in was already used. Please connect again.",
    "grant_rejected": "{title} did not accept the connection. Please try again.",
}


def _csp(form_targets: tuple[str, ...] = ()) -> str:
    # form-action also binds the redirect that follows a form's POST, so an OAuth provider's consent page
    # must be allowed as a target of the Connect button.
    targets = " ".join(("'self'", *form_targets))
    return ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'; "
            f"form-action {targets}")


async def _security_headers(response: Response) -> Response:
    for name, value in (_HEADERS | {"Content-Security-Policy": _csp()}).items():
        response.headers.setdefault(name, value)
    return response


@dataclass
class FieldView:
    """One input as the template draws it; ``value`` is never set for a secret."""

    field: FormField
    id: str
    value: Any = None
    error: str | None = None

    @property
    def text(self) -> str:
        if self.field.secret or self.value is None or isinstance(self.value, bool):
            return ""
        return " ".join(map(str, self.value)) if isinstance(self.value, list) else str(self.value)

    @property
    def described_by(self) -> str:
        return " ".join(i for i, on in ((f"{self.id}-help", self.field.help), (f"{self.id}-error", self.error)) if on)


@dataclass
class ProviderCard:
    slug: str
    title: str
    description: str
    auth_kind: str
    status: str
    """connected, pending, error or not_connected."""
    account_name: str | None
    last_error: str | None
    oauth_ready: bool
    fields: list[FieldView] = field(default_factory=list)
    credentials_help: str | None = None
    open_form: bool = False

    @property
    def initials(self) -> str:
        words = self.title.replace("-", " ").split()
        return "".join(w[0] for w in words[:2]).upper() or self.slug[:2].upper()

    @property
    def status_label(self) -> str:
        return {"connected": "Connected", "pending": "Pending", "error": "Needs attention"}.get(
            self.status, "Not connected")


@dataclass
class Banner:
    kind: str
    """``success`` or ``error``."""
    message: str


def _form_fields(hub: Hub, slug: str) -> list[FormField]:
    strategy = hub.registry.auth.get(slug)
    if not isinstance(strategy, ApiKeyAuth):
        return []
    info = hub.registry.provider(slug)
    return fields_of(strategy.fields, "credentials") + fields_of(info.settings if info else None, "settings")


def _field_views(slug: str, fields: list[FormField], conn: Connection | None,
                 typed: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None) -> list[FieldView]:
    views = []
    saved = conn.settings if conn is not None else {}
    for f in fields:
        if f.secret:
            value = None
        elif typed is not None:
            value = typed.get(f.key, "") if f.kind != "checkbox" else bool(typed.get(f.key))
        elif f.group == "settings":
            value = saved.get(f.name, f.default)
        else:
            value = f.default
        views.append(FieldView(f, id=f"{slug}-{f.group}-{f.name}".replace("_", "-"), value=value,
                               error=(errors or {}).get(f.key)))
    return views


async def _connections(hub: Hub, row: ConnectSession) -> dict[str, Connection]:
    async with hub.session(row.tenant_id) as db:
        return {c.provider: c for c in await svc.list_connections(db, row.tenant_id)}


def _card(hub: Hub, slug: str, conn: Connection | None) -> ProviderCard | None:
    info = hub.registry.provider(slug)
    if info is None:  # uninstalled since the session was made
        return None
    strategy = hub.registry.auth.get(slug)
    status = conn.status if conn is not None and conn.status in ("connected", "pending", "error") else "not_connected"
    card = ProviderCard(
        slug=slug, title=info.title, description=info.description, auth_kind=info.auth_kind, status=status,
        account_name=conn.external_account_name or conn.external_account_id if conn and status != "not_connected"
        else None,
        last_error=conn.last_error if conn is not None and status == "error" else None,
        oauth_ready=isinstance(strategy, OAuth2) and strategy.configured,
    )
    card.fields = _field_views(slug, _form_fields(hub, slug), conn)
    card.credentials_help = description_of(strategy.fields) if isinstance(strategy, ApiKeyAuth) else None
    card.open_form = status != "connected"
    return card


def _banner(cards: list[ProviderCard], query: Mapping[str, str]) -> Banner | None:
    """What the redirect back to the page reports. The query is only a hint: a success is shown only when
    the connection really is in that state."""
    card = next((c for c in cards if c.slug == query.get("provider")), None)
    status = query.get("status")
    if card is None or status not in ("connected", "disconnected", "error"):
        return None
    if status == "connected" and card.status in ("connected", "pending"):
        account = f" ({card.account_name})" if card.account_name else ""
        waiting = " and waiting for the provider to finish" if card.status == "pending" else ""
        return Banner("success", f"{card.title} connected{account}{waiting}.")
    if status == "disconnected" and card.status == "not_connected":
        return Banner("success", f"{card.title} disconnected.")
    if status == "error":
        code = query.get("error", "")
        template = _OAUTH_ERRORS.get(code, "{title} could not be connected (" + (code or "unknown error") + ").")
        return Banner("error", template.format(title=card.title))
    return None


async def _render_page(hub: Hub, token: str, row: ConnectSession, *, query: Mapping[str, str] | None = None,
                       failed: tuple[str, FormErrors, Mapping[str, str]] | None = None,
                       banner: Banner | None = None, status_code: int = 200) -> Template:
    connections = await _connections(hub, row)
    cards = [c for c in (_card(hub, slug, connections.get(slug)) for slug in row.providers) if c is not None]
    summary: list[tuple[str, str]] = []
    if failed is not None:
        slug, errors, typed = failed
        for card in cards:
            if card.slug == slug:
                card.fields = _field_views(slug, _form_fields(hub, slug), connections.get(slug), typed, errors.fields)
                card.open_form = True
                first = next((v.id for v in card.fields if v.error), f"provider-{slug}")
                summary = [(f"#{first}", m if m.startswith(card.title) else f"{card.title}: {m}")
                           for m in errors.general] or [
                    (f"#{v.id}", f"{card.title}: {v.field.label}: {v.error}") for v in card.fields if v.error]
    async with hub.session(row.tenant_id) as db:
        tenant = await db.get(Tenant, row.tenant_id)
    oauth_origins = tuple(sorted({
        "{0.scheme}://{0.netloc}".format(urlsplit(s.authorize_url))
        for s in (hub.registry.auth.get(c.slug) for c in cards) if isinstance(s, OAuth2)
    }))
    return Template(
        "connect/page.html", status_code=status_code,
        headers={"Content-Security-Policy": _csp(oauth_origins)},
        context={"token": token, "cards": cards, "tenant_name": tenant.name if tenant else "",
                 "return_url": row.return_url, "banner": banner or _banner(cards, query or {}),
                 "summary": summary, "expires_at": row.expires_at},
    )


def _gone(status_code: int) -> Template:
    return Template("connect/gone.html", status_code=status_code, context={"status_code": status_code})


async def _open(hub: Hub, token: str) -> ConnectSession | Template:
    try:
        row = await session_for_token(hub, token)
    except LinkGone:
        return _gone(410)
    return row if row is not None else _gone(404)


async def _open_for(hub: Hub, token: str, provider: str) -> ConnectSession | Template:
    """The open session of a link, for one of the providers it offers (else the page saying why not)."""
    row = await _open(hub, token)
    if isinstance(row, Template):
        return row
    return row if provider in row.providers and hub.registry.provider(provider) is not None else _gone(404)


def _refuse_cross_site(request: Request) -> None:
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(status_code=403, detail="a form on another site cannot post to this page")


def _back(hub: Hub, token: str, **outcome: str) -> Redirect:
    return Redirect(f"{hub.settings.public_url}/connect/{token}?{urlencode(outcome)}", status_code=303)


@get("/{token:str}", name="connect_page")
async def connect_page(request: Request, hub: HubDep, token: FromPath[str]) -> Template:
    row = await _open(hub, token)
    if isinstance(row, Template):
        return row
    return await _render_page(hub, token, row, query=dict(request.query_params))


@post("/{token:str}/{provider:str}/connect", status_code=303)
async def connect_provider(request: Request, hub: HubDep, token: FromPath[str], provider: FromPath[str]) -> Response:
    _refuse_cross_site(request)
    row = await _open_for(hub, token, provider)
    if isinstance(row, Template):
        return row
    if isinstance(hub.registry.auth.get(provider), OAuth2):
        return await _start_oauth(hub, token, row, provider)
    return await _connect_with_form(request, hub, token, row, provider)


async def _start_oauth(hub: Hub, token: str, row: ConnectSession, provider: str) -> Response:
    try:
        async with hub.session(row.tenant_id) as db:
            url, _ = await start_authorization(
                hub, db, row.tenant_id, provider, f"{hub.settings.public_url}/connect/return/{row.id}", None)
    except HubError as exc:
        return await _render_page(hub, token, row, banner=Banner("error", exc.message), status_code=exc.status)
    remaining = int((row.expires_at - hub.clock()).total_seconds())
    return Redirect(url, status_code=303, cookies=[Cookie(
        key=RETURN_COOKIE, value=token, path=f"/connect/return/{row.id}", max_age=max(remaining, 1),
        httponly=True, secure=hub.settings.public_url.startswith("https://"), samesite="lax",
    )])


async def _connect_with_form(request: Request, hub: HubDep, token: str, row: ConnectSession, provider: str
                             ) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    fields = _form_fields(hub, provider)
    try:
        values = parse(fields, form)
    except FormErrors as errors:
        return await _render_page(hub, token, row, failed=(provider, errors, form), status_code=422)
    async with hub.session(row.tenant_id) as db:  # read apart: no transaction is held while the provider is called
        existing = await svc.list_connections(db, row.tenant_id)
    saved = next((c.settings for c in existing if c.provider == provider), {})
    settings = {**saved, **values["settings"]} if any(f.group == "settings" for f in fields) else None
    try:
        async with hub.session(row.tenant_id) as db:
            await svc.connect_with_credentials(hub, db, row.tenant_id, provider, values["credentials"], settings)
    except HubError as exc:
        return await _render_page(hub, token, row, failed=(provider, errors_from(exc, fields, values), form),
                                  status_code=exc.status)
    return _back(hub, token, status="connected", provider=provider)


@get("/{token:str}/{provider:str}/disconnect")
async def confirm_disconnect(hub: HubDep, token: FromPath[str], provider: FromPath[str]) -> Template:
    row = await _open_for(hub, token, provider)
    if isinstance(row, Template):
        return row
    title = hub.registry.provider(provider).title
    return Template("connect/disconnect.html", context={"token": token, "slug": provider, "title": title})


@post("/{token:str}/{provider:str}/disconnect", status_code=303)
async def disconnect_provider(request: Request, hub: HubDep, token: FromPath[str], provider: FromPath[str]) -> Response:
    _refuse_cross_site(request)
    row = await _open_for(hub, token, provider)
    if isinstance(row, Template):
        return row
    try:
        async with hub.session(row.tenant_id) as db:
            conn = await svc.get_connection(db, row.tenant_id, provider)
            await svc.disconnect(hub, db, conn)
    except HubError as exc:
        return await _render_page(hub, token, row, banner=Banner("error", exc.message), status_code=exc.status)
    return _back(hub, token, status="disconnected", provider=provider)


@get("/return/{session_id:uuid}")
async def oauth_return(request: Request, hub: HubDep, session_id: FromPath[uuid.UUID]) -> Response:
    token = request.cookies.get(RETURN_COOKIE, "")
    row = await _open(hub, token)
    if isinstance(row, Template):
        return row
    if row.id != session_id:
        return _gone(404)
    outcome = {k: request.query_params[k] for k in ("status", "provider", "error") if k in request.query_params}
    return _back(hub, token, **outcome)


def _html_error(_: Request, exc: Exception) -> Template:
    status = exc.status_code if isinstance(exc, HTTPException) else getattr(exc, "status", 500)
    if status >= 500:
        log.error("connect page: unhandled %s", type(exc).__name__, exc_info=exc)
    return _gone(status if 400 <= status < 500 else 500)


def connect_router() -> Router:
    return Router(
        path="/connect",
        route_handlers=[
            connect_page, connect_provider, confirm_disconnect, disconnect_provider, oauth_return,
            create_static_files_router(path="/assets", directories=[STATIC_DIR], name="connect_assets",
                                       include_in_schema=False),
        ],
        after_request=_security_headers,
        exception_handlers={HTTPException: _html_error, HubError: _html_error, Exception: _html_error},
        include_in_schema=False,
    )
