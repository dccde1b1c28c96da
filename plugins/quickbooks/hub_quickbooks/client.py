"""The QuickBooks Online Accounting API for one connection (company = ``realmId``), over the hub's
throttled, retrying ``ctx.http``. Errors become ``QuickBooksFault`` carrying Intuit's Fault messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub import ConnectionContext, NotConnected, ProviderError
from hub_quickbooks.config import MINOR_VERSION, Hosts

QUERY_PAGE = 1000
"""QuickBooks returns at most 1,000 rows per query."""
IDS_PER_QUERY = 100
BATCH_SCOPE = "batch"
"""The scope of batch requests, which QuickBooks limits on their own (``RateLimit(scope=...)``)."""


def fault_errors(body: Any) -> list[dict[str, str]]:
    """Intuit's error list, from either spelling it uses (``Fault.Error`` and, on 401s, ``fault.error``)."""
    if not isinstance(body, dict):
        return []
    fault = body.get("Fault") or body.get("fault") or {}
    errors = (fault.get("Error") or fault.get("error") or []) if isinstance(fault, dict) else []
    return [
        {"code": str(e.get("code") or ""), "message": str(e.get("Message") or e.get("message") or ""),
         "detail": str(e.get("Detail") or e.get("detail") or "")}
        for e in errors if isinstance(e, dict)
    ]


def fault_text(errors: Sequence[dict[str, str]]) -> str:
    """``Message (code): Detail`` of the first error, as an accountant would want to read it."""
    if not errors:
        return "QuickBooks returned an error without details"
    first = errors[0]
    text = first["message"] or "QuickBooks error"
    if first["code"]:
        text += f" ({first['code']})"
    if first["detail"] and first["detail"] != first["message"]:
        text += f": {first['detail']}"
    return text[:1000]


class QuickBooksFault(ProviderError):
    def __init__(self, status: int, errors: list[dict[str, str]], what: str) -> None:
        super().__init__(f"QuickBooks {what} failed (HTTP {status}): {fault_text(errors)}",
                         code="quickbooks_fault", details=errors)
        self.http_status = status
        self.errors = errors

    @property
    def codes(self) -> set[str]:
        return {e["code"] for e in self.errors}


def quote(value: str) -> str:
    """A string literal in QuickBooks' query language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class QuickBooksApi:
    def __init__(self, ctx: ConnectionContext, hosts: Hosts) -> None:
        if not ctx.account_id:
            raise NotConnected("the QuickBooks connection has no company (realmId)")
        self.ctx = ctx
        self.base = f"{hosts.api}/v3/company/{ctx.account_id}"

    async def request(self, method: str, path: str, *, what: str, params: dict[str, str] | None = None,
                      json: Any = None, idempotent: bool | None = None, scope: str | None = None) -> dict[str, Any]:
        token = await self.ctx.access_token()
        response = await self.ctx.http.request(
            method, f"{self.base}/{path}", params={"minorversion": MINOR_VERSION, **(params or {})}, json=json,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}, idempotent=idempotent,
            scope=scope,
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            raise QuickBooksFault(response.status_code, fault_errors(body), what)
        return body

    async def company_info(self) -> dict[str, Any]:
        body = await self.request("GET", f"companyinfo/{self.ctx.account_id}", what="company info")
        return body["CompanyInfo"]

    async def query(self, statement: str) -> dict[str, Any]:
        return (await self.query_with_time(statement))[0]

    async def query_with_time(self, statement: str) -> tuple[dict[str, Any], str]:
        """The ``QueryResponse`` and the server's time of the answer."""
        body = await self.request("GET", "query", params={"query": statement}, what="query")
        if not isinstance(body.get("time"), str):
            raise ProviderError("QuickBooks answered a query without a time")
        return body.get("QueryResponse") or {}, body["time"]

    async def query_all(self, entity: str, where: str = "") -> list[dict[str, Any]]:
        """Every row of ``select * from <entity> [where ...]``, 1,000 per request."""
        rows: list[dict[str, Any]] = []
        while True:
            page = (await self.query(
                f"select * from {entity}{f' where {where}' if where else ''} orderby Id "
                f"startposition {len(rows) + 1} maxresults {QUERY_PAGE}")).get(entity, [])
            rows += page
            if len(page) < QUERY_PAGE:
                return rows

    async def by_ids(self, entity: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The current objects with these ids (one query per 100 ids)."""
        ids = list(dict.fromkeys(ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ", ".join(quote(i) for i in ids[start:start + IDS_PER_QUERY])
            rows = (await self.query(f"select * from {entity} where Id in ({chunk}) "
                                     f"maxresults {QUERY_PAGE}")).get(entity, [])
            found.update((row["Id"], row) for row in rows)
        return found

    async def batch(self, items: list[dict[str, Any]], requestid: str) -> dict[str, dict[str, Any]]:
        """One batch request (at most 30 items); ``requestid`` makes a repeat answer the first response.
        Returns bId -> that item's response."""
        body = await self.request("POST", "batch", params={"requestid": requestid}, json={"BatchItemRequest": items},
                                  what="batch", scope=BATCH_SCOPE)
        return {str(r.get("bId")): r for r in body.get("BatchItemResponse") or []}

    async def create(self, entity: str, payload: dict[str, Any], requestid: str) -> dict[str, Any]:
        body = await self.request("POST", entity.lower(), params={"requestid": requestid}, json=payload,
                                  what=f"{entity} create")
        return body[entity]

    async def cdc(self, entities: Sequence[str], since: str) -> tuple[dict[str, list[dict[str, Any]]], str]:
        """Objects of ``entities`` changed (or deleted) since ``since``, and the server's time of the answer."""
        body = await self.request("GET", "cdc", params={"entities": ",".join(entities), "changedSince": since},
                                  what="change data capture")
        changed: dict[str, list[dict[str, Any]]] = {entity: [] for entity in entities}
        for response in body.get("CDCResponse") or []:
            for part in response.get("QueryResponse") or []:
                for entity in entities:
                    changed[entity] += part.get(entity) or []
        if not isinstance(body.get("time"), str):
            raise ProviderError("QuickBooks change data capture answered without a time")
        return changed, body["time"]
