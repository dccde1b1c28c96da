"""Outbound: clients, vendors and invoices to QuickBooks through the batch API (30 per request), updates with
the SyncToken kept on the mapping (a stale one is refetched and the item retried once), every batch with a
``requestid`` derived from its items' idempotency keys. Inbound: customers, vendors, invoices, payments and
accounts, a full read by query pages, then changes by CDC from the cursor the engine keeps."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hub import ConnectionContext, InboundRecord, NewEvent, OutboundItem, Page, PushResult
from hub_quickbooks.client import QUERY_PAGE, QuickBooksApi, QuickBooksFault, fault_errors, fault_text, quote
from hub_quickbooks.config import Hosts
from hub_quickbooks.mappers import linked_invoices

BATCH_SIZE = 30
STALE_OBJECT = "5010"
CDC_LOOKBACK = timedelta(days=29)
"""QuickBooks' CDC looks back at most 30 days; older cursors start over with a full read."""
CDC_MAX = 1000
"""CDC answers at most 1,000 objects; a full answer may be cut short, so the changes are then paged by query."""
OVERLAP = timedelta(seconds=60)
"""Each change read starts this long before the previous answer's time, so a change being committed while
it was read is not missed; what is read twice is stored once (unchanged)."""
QBO_TYPES = {"client": "Customer", "vendor": "Vendor", "invoice": "Invoice", "payment": "Payment",
             "account": "Account"}


def batch_requestid(keys: Sequence[str], salt: str = "") -> str:
    """A batch's ``requestid`` (at most 36 characters): the same items with the same content are the same
    request, so a repeated job gets QuickBooks' first answer instead of creating anything twice."""
    return hashlib.sha256(("|".join(keys) + salt).encode()).hexdigest()[:36]


def _failed(item: OutboundItem, error: str) -> PushResult:
    return PushResult(internal_id=item.internal_id, external_id=item.external_id, outcome="failed", error=error)


class Outbound:
    """The push of one entity (``client`` -> Customer, ``vendor`` -> Vendor, ``invoice`` -> Invoice)."""

    def __init__(self, hosts: Hosts, entity: str) -> None:
        self.hosts, self.entity, self.qbo = hosts, entity, QBO_TYPES[entity]

    async def __call__(self, ctx: ConnectionContext, items: Sequence[OutboundItem]) -> list[PushResult]:
        api = QuickBooksApi(ctx, self.hosts)
        results: dict[str, PushResult] = {}
        payloads: dict[str, dict[str, Any]] = {}
        for item in items:
            try:
                payloads[item.internal_id] = ctx.to_provider(self.entity, item.record)
            except (ValueError, TypeError, KeyError) as exc:
                results[item.internal_id] = _failed(item, f"could not map the {self.entity}: {exc}")
        if self.entity == "invoice":
            await self._resolve_customers(ctx, items, payloads, results)
        todo = [i for i in items if i.internal_id not in results]
        for start in range(0, len(todo), BATCH_SIZE):
            results.update(await self._push_batch(ctx, api, todo[start:start + BATCH_SIZE], payloads))
        return [results[item.internal_id] for item in items]

    async def _resolve_customers(self, ctx: ConnectionContext, items: Sequence[OutboundItem],
                                 payloads: dict[str, dict[str, Any]], results: dict[str, PushResult]) -> None:
        """Each invoice's ``CustomerRef`` from its client's mapping; a client QuickBooks has not seen is pushed
        first (``ctx.push`` saves its mapping) when the invoice carries it."""
        wanted = {i.record.client_id for i in items if i.internal_id in payloads}
        customers = await ctx.external_ids("client", wanted)
        missing = {i.record.client.id: i.record.client for i in items
                   if i.record.client_id not in customers and i.record.client is not None}
        problems: dict[str, str] = {}
        if missing:
            for client_id, pushed in (await ctx.push("client", list(missing.values()))).items():
                if pushed.outcome != "failed" and pushed.external_id:
                    customers[client_id] = pushed.external_id
                else:
                    problems[client_id] = pushed.error or "failed"
        for item in items:
            if item.internal_id not in payloads:
                continue
            client_id = item.record.client_id
            if client_id in customers:
                payloads[item.internal_id]["CustomerRef"] = {"value": customers[client_id]}
            elif client_id in problems:
                results[item.internal_id] = _failed(item, f"its client {client_id} could not be synced first: "
                                                          f"{problems[client_id]}")
            else:
                results[item.internal_id] = _failed(
                    item, f"its client {client_id} is not in QuickBooks: sync the client first or send the invoice "
                          "with its client")

    async def _push_batch(self, ctx: ConnectionContext, api: QuickBooksApi, batch: Sequence[OutboundItem],
                          payloads: dict[str, dict[str, Any]]) -> dict[str, PushResult]:
        tokens = {i.external_id: i.metadata.get("SyncToken") for i in batch if i.external_id}
        unknown = [eid for eid, token in tokens.items() if token is None]
        if unknown:  # mapped before SyncTokens were kept: read them (one query)
            tokens.update((eid, obj["SyncToken"]) for eid, obj in (await api.by_ids(self.qbo, unknown)).items())
        results, stale = await self._send(api, batch, payloads, tokens, salt="")
        if stale:
            current = await api.by_ids(self.qbo, [i.external_id for i in stale])
            fresh = {i.external_id: current[i.external_id]["SyncToken"] for i in stale if i.external_id in current}
            retried, still_stale = await self._send(api, stale, payloads, fresh,
                                                    salt=":" + ",".join(sorted(f"{k}={v}" for k, v in fresh.items())))
            results.update(retried)
            for item in still_stale:
                results[item.internal_id] = _failed(item, "Stale Object Error (5010): the object changed in "
                                                          "QuickBooks again while it was being updated")
        return results

    async def _send(self, api: QuickBooksApi, batch: Sequence[OutboundItem], payloads: dict[str, dict[str, Any]],
                    tokens: dict[str, Any], salt: str) -> tuple[dict[str, PushResult], list[OutboundItem]]:
        requests = []
        for n, item in enumerate(batch):
            body = dict(payloads[item.internal_id])
            if item.external_id:
                body |= {"Id": item.external_id, "SyncToken": tokens.get(item.external_id), "sparse": True}
            requests.append({"bId": str(n), "operation": "update" if item.external_id else "create", self.qbo: body})
        try:
            answers = await api.batch(requests, batch_requestid([i.idempotency_key for i in batch], salt))
        except QuickBooksFault as fault:
            if fault.http_status >= 500 or fault.http_status in (401, 403, 429):
                raise  # QuickBooks or the grant is in trouble, not these records: the job retries the batch
            return {i.internal_id: _failed(i, fault_text(fault.errors)) for i in batch}, []
        results: dict[str, PushResult] = {}
        stale: list[OutboundItem] = []
        for n, item in enumerate(batch):
            answer = answers.get(str(n))
            obj = (answer or {}).get(self.qbo)
            if isinstance(obj, dict) and obj.get("Id"):
                results[item.internal_id] = PushResult(
                    internal_id=item.internal_id, external_id=str(obj["Id"]),
                    outcome="updated" if item.external_id else "created",
                    metadata={"SyncToken": str(obj.get("SyncToken"))})
                continue
            errors = fault_errors({"Fault": (answer or {}).get("Fault")})
            if item.external_id and any(e["code"] == STALE_OBJECT for e in errors) and not salt:
                stale.append(item)
            else:
                results[item.internal_id] = _failed(item, fault_text(errors) if answer else "QuickBooks answered "
                                                                                            "nothing for this item")
        return results, stale


# -- inbound ------------------------------------------------------------------------------------------------

def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since_after(server_time: str) -> str:
    return (_parse_time(server_time) - OVERLAP).isoformat()


class Inbound:
    """The pull of one entity. Cursor states (JSON): ``{"since": t}`` reads changes by CDC from ``t``;
    ``{"page": n, "t0": t, "where_since": s|null}`` is a read by query pages in progress (a full read,
    or changes too many for one CDC answer), after which changes are read from ``t0``."""

    def __init__(self, hosts: Hosts, entity: str) -> None:
        self.hosts, self.entity, self.qbo = hosts, entity, QBO_TYPES[entity]

    async def __call__(self, ctx: ConnectionContext, cursor: str | None) -> Page:
        if self.entity == "payment" and not ctx.settings.import_payments:
            return Page(records=[], cursor=cursor)
        api = QuickBooksApi(ctx, self.hosts)
        state = json.loads(cursor) if cursor else {}
        if "since" in state and _parse_time(state["since"]) > datetime.now(UTC) - CDC_LOOKBACK:
            changed, server_time = await api.cdc([self.qbo], state["since"])
            rows = changed[self.qbo]
            if len(rows) < CDC_MAX:
                live = [r for r in rows if r.get("status") != "Deleted"]
                deleted = [str(r["Id"]) for r in rows if r.get("status") == "Deleted"]
                return Page(records=await self.records(ctx, live), deleted=deleted,
                            cursor=json.dumps({"since": _since_after(server_time)}))
            state = {"page": 1, "t0": None, "where_since": state["since"]}  # too many: page through them
        elif "page" not in state:
            state = {"page": 1, "t0": None, "where_since": None}
        return await self._query_page(ctx, api, state)

    async def _query_page(self, ctx: ConnectionContext, api: QuickBooksApi, state: dict[str, Any]) -> Page:
        where = f" where MetaData.LastUpdatedTime >= {quote(state['where_since'])}" if state.get("where_since") else ""
        response, server_time = await api.query_with_time(
            f"select * from {self.qbo}{where} orderby Id startposition {state['page']} maxresults {QUERY_PAGE}")
        rows = response.get(self.qbo) or []
        t0 = state.get("t0") or server_time
        if len(rows) < QUERY_PAGE:
            return Page(records=await self.records(ctx, rows), cursor=json.dumps({"since": _since_after(t0)}))
        following = {**state, "page": state["page"] + len(rows), "t0": t0}
        return Page(records=await self.records(ctx, rows), cursor=json.dumps(following), has_more=True)

    async def records(self, ctx: ConnectionContext, rows: list[dict[str, Any]]) -> list[InboundRecord]:
        if not rows:
            return []
        data = {str(row["Id"]): ctx.from_provider(self.entity, row) for row in rows}
        if self.entity in ("client", "vendor", "invoice"):  # the hub's own id where the record came from the hub
            own = await ctx.internal_ids(self.entity, list(data))
            for external_id, record in data.items():
                record["id"] = own.get(external_id, record["id"])
        if self.entity == "invoice":
            clients = await ctx.internal_ids("client", [d["client_id"] for d in data.values() if d.get("client_id")])
            for record in data.values():
                record["client_id"] = clients.get(record.get("client_id"), record.get("client_id"))
        if self.entity == "payment":
            return await self._payments(ctx, rows, data)
        return [InboundRecord(external_id=eid, data=record) for eid, record in data.items()]

    async def _payments(self, ctx: ConnectionContext, rows: list[dict[str, Any]],
                        data: dict[str, dict[str, Any]]) -> list[InboundRecord]:
        """Each payment linked to the hub's invoice through the invoice mapping (one lookup for the page), and
        its ``payment.received`` event, recorded the first time the hub stores it."""
        links = {str(row["Id"]): linked_invoices(row) for row in rows}
        invoices = await ctx.internal_ids("invoice", [qbo_id for pairs in links.values() for qbo_id, _ in pairs])
        out = []
        for external_id, record in data.items():
            applied = [{"invoice_id": invoices.get(qbo_id), "quickbooks_invoice_id": qbo_id, "amount": amount}
                       for qbo_id, amount in links[external_id]]
            invoice_id = next((a["invoice_id"] for a in applied if a["invoice_id"]), None)
            if invoice_id:
                record["invoice_id"] = invoice_id
            event = NewEvent(type="payment.received", data={
                "payment_id": external_id, "invoice_id": invoice_id, "amount": record.get("amount"),
                "currency": record.get("currency"), "method": record.get("payment_method"),
                "payment_date": record.get("payment_date"), "reference_number": record.get("reference_number"),
                "applied_to": applied,
            })
            out.append(InboundRecord(external_id=external_id, data=record, new_events=[event]))
        return out

