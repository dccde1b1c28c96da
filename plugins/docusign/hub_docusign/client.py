"""The eSignature REST API (v2.1) for one connection, at the account's ``base_uri``, over the hub's throttled,
retrying ``ctx.http``. DocuSign's error bodies (``{"errorCode", "message"}``) become the hub's errors: an
envelope or template that does not exist is ``NotFound``, a request DocuSign refuses is ``ValidationFailed``
with DocuSign's code, its rate limits are a ``ProviderError`` that names when the hour resets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from hub import ConnectionContext, NotConnected, NotFound, ProviderError, ValidationFailed

NOT_FOUND_CODES = frozenset({"ENVELOPE_DOES_NOT_EXIST", "TEMPLATE_NOT_FOUND", "TEMPLATE_ID_INVALID",
                             "INVALID_ENVELOPE_ID", "DOCUMENT_DOES_NOT_EXIST"})
RATE_LIMIT_CODES = frozenset({"HOURLY_APIINVOCATION_LIMIT_EXCEEDED", "BURST_APIINVOCATION_LIMIT_EXCEEDED",
                              "HOURLY_ENVELOPE_POLLING_LIMIT_EXCEEDED", "BURST_ENVELOPE_POLLING_LIMIT_EXCEEDED",
                              "HOURLY_APIINVOCATION_ENVELOPE_LIMIT_EXCEEDED",
                              "BURST_APIINVOCATION_ENVELOPE_LIMIT_EXCEEDED"})
TEMPLATES_PAGE = 100


def error_of(response: httpx.Response) -> tuple[str, str]:
    """(errorCode, message) of a DocuSign error body; empty strings when there is none."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("errorCode") or ""), str(body.get("message") or "")[:500]


def raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    code, message = error_of(response)
    text = f"DocuSign {what} failed (HTTP {response.status_code}{f', {code}' if code else ''})"
    if message:
        text += f": {message}"
    details = {"docusign_error_code": code or None, "http_status": response.status_code}
    if code.upper() in RATE_LIMIT_CODES or response.status_code == 429:
        reset = response.headers.get("x-ratelimit-reset", "")
        if reset.isdigit():
            details["resets_at"] = datetime.fromtimestamp(int(reset), UTC).isoformat()
        raise ProviderError(text, code="docusign_rate_limited", details=details, status=503)
    if code.upper() in NOT_FOUND_CODES or response.status_code == 404:
        raise NotFound(text, code="docusign_not_found", details=details)
    if response.status_code == 401:
        raise ProviderError(text, code="docusign_unauthorized", details=details)
    if 400 <= response.status_code < 500:
        raise ValidationFailed(text, code=f"docusign_{code.lower()}" if code else "docusign_refused",
                               details=details)
    raise ProviderError(text, details=details)


class DocuSignApi:
    def __init__(self, ctx: ConnectionContext) -> None:
        base_uri = ctx.metadata.get("base_uri")
        if not ctx.account_id or not base_uri:
            raise NotConnected("the DocuSign connection has no account or base URI; connect again")
        self.ctx = ctx
        self.base = f"{str(base_uri).rstrip('/')}/restapi/v2.1/accounts/{quote(ctx.account_id, safe='')}"

    async def request(self, method: str, path: str, *, what: str, params: Mapping[str, str] | None = None,
                      json: Any = None, accept: str = "application/json",
                      idempotent: bool | None = None) -> httpx.Response:
        token = await self.ctx.access_token()
        response = await self.ctx.http.request(
            method, f"{self.base}{path}", params=dict(params or {}), json=json, idempotent=idempotent,
            headers={"Authorization": f"Bearer {token}", "Accept": accept},
        )
        raise_for(response, what)
        return response

    async def json(self, method: str, path: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.request(method, path, what=what, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderError(f"DocuSign {what} answered something that is not a JSON object")
        return body

    @staticmethod
    def envelope_path(envelope_id: str) -> str:
        return f"/envelopes/{quote(envelope_id, safe='')}"

    async def create_envelope(self, definition: dict[str, Any]) -> dict[str, Any]:
        # Not retried on a 5xx: DocuSign takes no idempotency key, and a repeat could send the contract twice.
        return await self.json("POST", "/envelopes", what="envelope create", json=definition, idempotent=False)

    async def envelope(self, envelope_id: str) -> dict[str, Any]:
        """The envelope with its recipients and custom fields: one status request."""
        return await self.json("GET", self.envelope_path(envelope_id), what="envelope status",
                               params={"include": "recipients,custom_fields"})

    async def combined_pdf(self, envelope_id: str) -> bytes:
        response = await self.request("GET", f"{self.envelope_path(envelope_id)}/documents/combined",
                                      what="combined document download", accept="application/pdf")
        content = response.content
        if not content.startswith(b"%PDF-"):
            raise ProviderError("DocuSign's combined document is not a PDF")
        return content

    async def void(self, envelope_id: str, reason: str) -> None:
        await self.request("PUT", self.envelope_path(envelope_id), what="envelope void",
                           json={"status": "voided", "voidedReason": reason})

    async def resend(self, envelope_id: str) -> None:
        await self.request("PUT", self.envelope_path(envelope_id), what="envelope resend",
                           params={"resend_envelope": "true"}, json={})

    async def templates(self) -> list[dict[str, Any]]:
        """Every template of the account, a page of 100 at a time."""
        found: list[dict[str, Any]] = []
        while True:
            page = await self.json("GET", "/templates", what="template list",
                                   params={"count": str(TEMPLATES_PAGE), "start_position": str(len(found)),
                                           "include": "recipients"})
            rows = [t for t in page.get("envelopeTemplates") or [] if isinstance(t, dict)]
            found += rows
            total = int(page.get("totalSetSize") or 0)
            if not rows or len(found) >= total or not page.get("nextUri"):
                return found
