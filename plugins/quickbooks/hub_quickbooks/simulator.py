"""A local QuickBooks Online: the Accounting API and Intuit's OAuth server over real HTTP on 127.0.0.1.

It follows the documented behaviour the plugin depends on, strictly:

- OAuth2: ``/connect/oauth2`` (consent; redirects with ``code``, ``state`` and ``realmId`` at once, or, to a
  browser (``Accept: text/html``) without ``decision``, first shows a page with Connect and Cancel buttons),
  ``/oauth2/v1/tokens/bearer`` (HTTP Basic client auth; refresh tokens ROTATE: each refresh returns a new
  one and the old one is dead, ``invalid_grant``), ``/v2/oauth2/tokens/revoke`` (JSON body).
- ``/v3/company/{realmId}/``: ``companyinfo``, ``query`` (the SQL subset QuickBooks takes), ``batch``
  (at most 30 items), ``cdc`` (30-day look-back, at most 1,000 objects), ``{entity}`` create/update/delete
  and ``{entity}/{id}`` for Customer, Vendor, Invoice, Payment and Account.
- ``SyncToken``: an update with a stale one is ``Stale Object Error`` (5010); names are unique across
  customers and vendors (6240); an invoice line's amount must equal quantity x unit price (6070).
- ``requestid``: a repeated request id answers the first response again, without doing anything.
- Limits per company: 500 requests/min, 10 in flight, 40 batch requests/min; beyond them, 429.
- Errors are ``Fault`` bodies as Intuit sends them (the 401 one in its lower-case form).
- Webhooks: ``webhook_request`` builds a notification (legacy ``eventNotifications`` or the CloudEvents
  array) signed like Intuit signs (``intuit-signature``: base64 HMAC-SHA256 of the body with the app's
  Verifier Token); ``send_webhook`` posts it.

Used by the plugin's tests, the benchmark and demos: ``with QuickBooksSimulator() as qbo: qbo.url``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from hub.testing.simulator import Fault as PlannedFault
from hub.testing.simulator import Request, Response, Simulator

CLIENT_ID = "ABqbo-sim-client-id"
CLIENT_SECRET = "qbo-sim-client-secret-do-not-log"
VERIFIER_TOKEN = "qbo-sim-verifier-token"
REALM_ID = "9341453050298411"
ENTITIES = ("Customer", "Vendor", "Invoice", "Payment", "Account")
NAME_LISTS = ("Customer", "Vendor")
MAX_BATCH_ITEMS = 30
MAX_QUERY_RESULTS = 1000
CDC_MAX_OBJECTS = 1000
CDC_LOOKBACK = timedelta(days=30)


class Fault(Exception):
    def __init__(self, status: int, code: str, message: str, detail: str = "", type: str = "ValidationFault"):
        self.status, self.code, self.message, self.detail, self.type = status, code, message, detail, type

    def body(self, now: str) -> dict[str, Any]:
        return {"Fault": {"Error": [{"Message": self.message, "Detail": self.detail or self.message,
                                     "code": self.code, "element": ""}], "type": self.type}, "time": now}


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class Company:
    realm_id: str
    name: str
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {e: {} for e in ENTITIES})
    deleted: dict[str, dict[str, str]] = field(default_factory=lambda: {e: {} for e in ENTITIES})
    """Entity -> id -> when it was deleted (CDC reports it)."""
    next_id: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENTITIES, 1))


@dataclass
class SimulatorState:
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    verifier_token: str = VERIFIER_TOKEN
    companies: dict[str, Company] = field(default_factory=dict)
    consent_realm: str = REALM_ID
    """The company a user picks on the consent screen."""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (realm, expiry)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # live refresh token -> realm
    revoked: list[str] = field(default_factory=list)
    access_ttl: int = 3600
    refresh_calls: int = 0
    requests: list[str] = field(default_factory=list)
    """``METHOD /path`` of every API request that was served (not the refused ones)."""
    batch_calls: int = 0
    throttled: int = 0
    """429s answered."""
    replayed: int = 0
    """Requests answered from the ``requestid`` cache."""
    per_minute: int = 500
    concurrent: int = 10
    batch_per_minute: int = 40
    window_seconds: float = 60.0
    latency: float = 0.0
    clock_offset: timedelta = timedelta(0)
    """Move the simulated clock (MetaData times, CDC look-back) forward, e.g. to age a cursor."""
    fail_next: list[int] = field(default_factory=list)
    """Statuses to answer the next API requests with, before doing anything (503 ...)."""
    lock: threading.RLock = field(default_factory=threading.RLock)
    _arrivals: dict[str, deque[float]] = field(default_factory=dict)
    _batch_arrivals: dict[str, deque[float]] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)
    _replies: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)

    # -- the clock ------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + self.clock_offset

    def stamp(self) -> str:
        return self.now().isoformat()

    # -- companies and objects (the "QuickBooks UI" side, for tests) ----------------------------------
    def company(self, realm_id: str = REALM_ID) -> Company:
        with self.lock:
            if realm_id not in self.companies:
                company = self.companies[realm_id] = Company(realm_id, "Sandbox Company_US_1")
                for name, kind, number in (("Checking", "Bank", "1000"), ("Accounts Receivable (A/R)",
                                           "Accounts Receivable", "1200"), ("Services", "Income", "4000"),
                                           ("Job Materials", "Cost of Goods Sold", "5000")):
                    self._create(company, "Account", {"Name": name, "AccountType": kind, "AcctNum": number})
            return self.companies[realm_id]

    def objects(self, entity: str, realm_id: str = REALM_ID) -> dict[str, dict[str, Any]]:
        return self.company(realm_id).objects[entity]

    def make_payment(self, invoice_id: str, amount: Any = None, *, method: str = "Check",
                     ref: str | None = None, realm_id: str = REALM_ID) -> dict[str, Any]:
        """A customer pays an invoice (what an accountant records in QuickBooks)."""
        with self.lock:
            company = self.company(realm_id)
            invoice = company.objects["Invoice"][invoice_id]
            total = _money(invoice["Balance"] if amount is None else amount)
            payment = {"CustomerRef": invoice["CustomerRef"], "TotalAmt": _num(total), "TxnDate": self.now().date()
                       .isoformat(), "PaymentMethodRef": {"value": "1", "name": method},
                       "Line": [{"Amount": _num(total), "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}]}
            if ref:
                payment["PaymentRefNum"] = ref
            return self._create(company, "Payment", payment)

    def edit(self, entity: str, object_id: str, changes: dict[str, Any], realm_id: str = REALM_ID) -> dict[str, Any]:
        """Someone changes an object in QuickBooks: its SyncToken moves on."""
        with self.lock:
            company = self.company(realm_id)
            current = company.objects[entity][object_id]
            return self._update(company, entity, {**current, **changes, "sparse": True})

    # -- webhooks ---------------------------------------------------------------------------------------
    def sign(self, body: bytes) -> str:
        return base64.b64encode(hmac.new(self.verifier_token.encode(), body, hashlib.sha256).digest()).decode()

    def webhook_request(self, changes: list[tuple[str, str, str]], *, realm_id: str = REALM_ID,
                        format: str = "legacy") -> tuple[bytes, dict[str, str]]:
        """(body, headers) of a notification of ``changes`` = [(entity, id, operation)], as Intuit sends it."""
        now = self.stamp()
        if format == "legacy":
            payload: Any = {"eventNotifications": [{"realmId": realm_id, "dataChangeEvent": {"entities": [
                {"name": entity, "id": object_id, "operation": operation, "lastUpdated": now}
                for entity, object_id, operation in changes]}}]}
        else:
            payload = [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": "intuit.qbo",
                        "type": f"qbo.{entity.lower()}.{_past(operation)}.v1", "datacontenttype": "application/json",
                        "time": now, "intuitentityid": object_id, "intuitaccountid": realm_id, "data": {}}
                       for entity, object_id, operation in changes]
        body = json.dumps(payload, separators=(",", ":")).encode()
        return body, {"content-type": "application/json", "intuit-signature": self.sign(body)}

    # -- internals: object life cycle ---------------------------------------------------------------------
    def _create(self, company: Company, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in data.items() if k not in ("Id", "SyncToken", "MetaData", "sparse")}
        self._validate(company, entity, data, None)
        object_id = str(company.next_id[entity])
        company.next_id[entity] += 1
        now = self.stamp()
        obj = {**data, "Id": object_id, "SyncToken": "0", "MetaData": {"CreateTime": now, "LastUpdatedTime": now}}
        if entity in NAME_LISTS + ("Account",):
            obj.setdefault("Active", True)
        self._derive(company, entity, obj)
        company.objects[entity][object_id] = obj
        if entity == "Payment":
            self._apply_payment(company, obj, sign=-1)
        return copy.deepcopy(obj)

    def _update(self, company: Company, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        object_id = str(data.get("Id") or "")
        current = company.objects[entity].get(object_id)
        if current is None:
            raise Fault(400, "610", "Object Not Found",
                        f"Object Not Found : Something you're trying to use has been made inactive. Check the fields "
                        f"with accounts, customers, items, vendors or employees. ({entity} {object_id})")
        if str(data.get("SyncToken")) != current["SyncToken"]:
            raise Fault(400, "5010", "Stale Object Error",
                        "Stale Object Error : You and root were working on this at the same time. root finished "
                        "before you did, so your work was not saved.")
        fields = {k: v for k, v in data.items() if k not in ("Id", "SyncToken", "MetaData", "sparse")}
        merged = {**current, **fields} if data.get("sparse") else {**fields}
        self._validate(company, entity, merged, object_id)
        if entity == "Payment":
            self._apply_payment(company, current, sign=+1)
        obj = {**merged, "Id": object_id, "SyncToken": str(int(current["SyncToken"]) + 1),
               "MetaData": {"CreateTime": current["MetaData"]["CreateTime"], "LastUpdatedTime": self.stamp()}}
        if entity in NAME_LISTS:
            obj.setdefault("Active", True)
        self._derive(company, entity, obj, previous=current)
        company.objects[entity][object_id] = obj
        if entity == "Payment":
            self._apply_payment(company, obj, sign=-1)
        return copy.deepcopy(obj)

    def _delete(self, company: Company, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        if entity in NAME_LISTS + ("Account",):
            raise Fault(400, "6000", "A business validation error has occurred while processing your request",
                        f"Business Validation Error: {entity} objects cannot be deleted; make them inactive.")
        object_id = str(data.get("Id") or "")
        current = company.objects[entity].get(object_id)
        if current is None:
            raise Fault(400, "610", "Object Not Found", f"Object Not Found : {entity} {object_id}")
        if str(data.get("SyncToken")) != current["SyncToken"]:
            raise Fault(400, "5010", "Stale Object Error", "Stale Object Error : the object changed since you read it")
        if entity == "Payment":
            self._apply_payment(company, current, sign=+1)
        del company.objects[entity][object_id]
        company.deleted[entity][object_id] = self.stamp()
        return {"Id": object_id, "status": "Deleted", "domain": "QBO"}

    def _validate(self, company: Company, entity: str, data: dict[str, Any], object_id: str | None) -> None:
        if entity in NAME_LISTS:
            name = (data.get("DisplayName") or "").strip()
            if not name:
                raise Fault(400, "2020", "Required param missing, need to supply the required value for the API",
                            "Required parameter DisplayName is missing in the request")
            for kind in NAME_LISTS:
                for other in company.objects[kind].values():
                    if other.get("DisplayName", "").lower() == name.lower() and not (
                            kind == entity and other["Id"] == object_id):
                        raise Fault(400, "6240", "Duplicate Name Exists Error",
                                    "The name supplied already exists. : Another customer, vendor or employee is "
                                    f"already using this name. Please use a different name. Id={other['Id']}")
        elif entity in ("Invoice", "Payment"):
            customer = (data.get("CustomerRef") or {}).get("value")
            if customer not in company.objects["Customer"]:
                raise Fault(400, "2500", "Invalid Reference Id",
                            f"Invalid Reference Id : Something you're trying to use has been made inactive or "
                            f"deleted. (CustomerRef {customer})")
            if entity == "Invoice":
                if not data.get("Line"):
                    raise Fault(400, "2020", "Required param missing, need to supply the required value for the "
                                "API", "Required parameter Line is missing in the request")
                for line in data["Line"]:
                    detail = line.get("SalesItemLineDetail")
                    if detail and "Qty" in detail and "UnitPrice" in detail and \
                            _money(detail["Qty"]) * _money(detail["UnitPrice"]) != _money(line.get("Amount")):
                        raise Fault(400, "6070", "Amount is not equal to UnitPrice * Qty",
                                    f"Amount is not equal to UnitPrice * Qty. Supplied value:{line.get('Amount')}")
            else:
                for line in data.get("Line") or []:
                    for linked in line.get("LinkedTxn") or []:
                        if linked.get("TxnType") == "Invoice" and linked.get("TxnId") not in \
                                company.objects["Invoice"]:
                            raise Fault(400, "2500", "Invalid Reference Id",
                                        f"Invalid Reference Id : Invoice {linked.get('TxnId')} does not exist")

    def _derive(self, company: Company, entity: str, obj: dict[str, Any], previous: dict | None = None) -> None:
        if entity == "Invoice":
            total = sum((_money(line.get("Amount")) for line in obj["Line"]
                         if line.get("DetailType") != "SubTotalLineDetail"), Decimal(0))
            paid = _money(previous["TotalAmt"]) - _money(previous["Balance"]) if previous else Decimal(0)
            obj["TotalAmt"], obj["Balance"] = _num(total), _num(total - paid)
            obj.setdefault("DocNumber", str(1000 + int(obj["Id"])))
            obj.setdefault("TxnDate", self.now().date().isoformat())
            name = company.objects["Customer"].get(obj["CustomerRef"]["value"], {}).get("DisplayName")
            obj["CustomerRef"] = {"value": obj["CustomerRef"]["value"], **({"name": name} if name else {})}

    def _apply_payment(self, company: Company, payment: dict[str, Any], *, sign: int) -> None:
        """Paying (sign -1) or un-paying (+1) the invoices a payment is linked to: their balance changes, and
        with it their SyncToken, as in QuickBooks."""
        for line in payment.get("Line") or []:
            for linked in line.get("LinkedTxn") or []:
                invoice = company.objects["Invoice"].get(linked.get("TxnId"))
                if linked.get("TxnType") != "Invoice" or invoice is None:
                    continue
                invoice["Balance"] = _num(_money(invoice["Balance"]) + sign * _money(line.get("Amount")))
                invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
                invoice["MetaData"]["LastUpdatedTime"] = self.stamp()

    # -- internals: limits ---------------------------------------------------------------------------------
    def admit(self, realm_id: str, batch: bool) -> bool:
        """Whether a request may run now (it is then in flight), by QuickBooks' limits per company."""
        with self.lock:
            now = time.monotonic()
            arrivals = self._arrivals.setdefault(realm_id, deque())
            batches = self._batch_arrivals.setdefault(realm_id, deque())
            for log in (arrivals, batches):
                while log and log[0] <= now - self.window_seconds:
                    log.popleft()
            if (len(arrivals) >= self.per_minute or self._in_flight.get(realm_id, 0) >= self.concurrent
                    or (batch and len(batches) >= self.batch_per_minute)):
                self.throttled += 1
                return False
            arrivals.append(now)
            if batch:
                batches.append(now)
            self._in_flight[realm_id] = self._in_flight.get(realm_id, 0) + 1
            return True

    def done(self, realm_id: str) -> None:
        with self.lock:
            self._in_flight[realm_id] -= 1


# -- the query language ------------------------------------------------------------------------------------
_QUERY = re.compile(
    r"^\s*select\s+(?P<what>\*|count\(\*\)|[\w.,\s]+?)\s+from\s+(?P<entity>\w+)"
    r"(?:\s+where\s+(?P<where>.+?))?(?:\s+orderby\s+(?P<order>[\w.]+)(?:\s+(?P<dir>asc|desc))?)?"
    r"(?:\s+startposition\s+(?P<start>\d+))?(?:\s+maxresults\s+(?P<max>\d+))?\s*$", re.I | re.S)
_CONDITION = re.compile(r"^\s*(?P<field>[\w.]+)\s*(?P<op><=|>=|!=|=|<|>|\bin\b|\blike\b)\s*(?P<value>.+?)\s*$", re.I)


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        return [_literal(part) for part in re.findall(r"'(?:[^'\\]|\\.)*'|[^,\s]+", text[1:-1])]
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("\\'", "'")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _field(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    return value


def _matches(obj: dict[str, Any], op: str, path: str, wanted: Any) -> bool:
    value = _field(obj, path)
    op = op.lower()
    if op == "in":
        return str(value) in {str(w) for w in wanted}
    if op == "like":
        pattern = "^" + re.escape(str(wanted)).replace("%", ".*") + "$"
        return value is not None and re.match(pattern, str(value), re.I) is not None
    if isinstance(wanted, bool) or isinstance(value, bool):
        return (value if value is not None else True) == wanted if op == "=" else False
    if value is None:
        return False
    left, right = _comparable(value), _comparable(wanted)
    try:
        return {"=": left == right, "!=": left != right, "<": left < right, ">": left > right,
                "<=": left <= right, ">=": left >= right}[op]
    except TypeError:
        return False


def run_query(company: Company, text: str, now: str) -> dict[str, Any]:
    match = _QUERY.match(text)
    entity = match and next((e for e in ENTITIES if e.lower() == match["entity"].lower()), None)
    if not match or entity is None:
        raise Fault(400, "4000", "Error parsing query",
                    f"QueryParserError: Encountered an error or an unsupported entity in: {text[:200]}")
    rows = list(company.objects[entity].values())
    for condition in re.split(r"\s+and\s+", match["where"] or "", flags=re.I) if match["where"] else []:
        parsed = _CONDITION.match(condition)
        if not parsed:
            raise Fault(400, "4000", "Error parsing query", f"QueryParserError: cannot parse {condition[:100]!r}")
        wanted = _literal(parsed["value"])
        rows = [r for r in rows if _matches(r, parsed["op"], parsed["field"], wanted)]
    if match["what"].lower().startswith("count"):
        return {"QueryResponse": {"totalCount": len(rows)}, "time": now}
    order = match["order"] or "Id"
    key = (lambda r: int(r["Id"])) if order == "Id" else (lambda r: _comparable(_field(r, order)) or "")
    rows.sort(key=key, reverse=(match["dir"] or "").lower() == "desc")
    start = max(1, int(match["start"] or 1))
    limit = min(MAX_QUERY_RESULTS, int(match["max"] or 100))
    page = [copy.deepcopy(r) for r in rows[start - 1:start - 1 + limit]]
    body: dict[str, Any] = {"startPosition": start, "maxResults": len(page)}
    if page:
        body[entity] = page
    return {"QueryResponse": body, "time": now}


def _past(operation: str) -> str:
    return {"create": "created", "update": "updated", "delete": "deleted", "merge": "merged",
            "void": "voided"}.get(operation.lower(), operation.lower())


# -- HTTP -------------------------------------------------------------------------------------------------
_API_PATH = re.compile(r"^/v3/company/(?P<realm>[^/]+)/(?P<rest>.+)$")
_THROTTLED = Fault(429, "003001", "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                   "The request limit was reached.", type="SERVICE")


def _consent_page(query: dict[str, str]) -> Response:
    """Intuit's consent screen, reduced to its two buttons: each sends the same query on with ``decision``."""
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in query.items() if k != "decision")
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Connect to QuickBooks</title></head>'
        '<body><main><h1>QuickBooks Online (simulator)</h1>'
        "<p>An app would like to connect to your QuickBooks company.</p>"
        f'<form method="get" action="/connect/oauth2">{hidden}'
        '<button type="submit" name="decision" value="allow">Connect</button> '
        '<button type="submit" name="decision" value="deny">Cancel</button></form></main></body></html>'
    )
    return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Response:
    data = b"" if body is None else json.dumps(body).encode()
    headers = {**(headers or {}), "intuit_tid": uuid.uuid4().hex[:20]}
    if body is not None:
        headers["Content-Type"] = "application/json;charset=UTF-8"
    return Response(status, data, headers)


class QuickBooksSimulator(Simulator):
    """``with QuickBooksSimulator() as qbo:`` serves on ``qbo.url`` (127.0.0.1, a free port) until the block ends.

    ``qbo.state`` is the QuickBooks side (companies, tokens, limits); the fault switches of
    ``hub.testing.simulator.Simulator`` (``throttle_next``, ``fail_next``, ``drop_next``, ``latency``,
    ``expire_tokens``) work on it too, answering in Intuit's shapes.
    """

    def __init__(self, state: SimulatorState | None = None, port: int = 0) -> None:
        super().__init__(port=port)
        self.state = state or SimulatorState()
        self.state.company(REALM_ID)

    @property
    def st(self) -> SimulatorState:
        return self.state

    def send_webhook(self, url: str, changes: list[tuple[str, str, str]], **kwargs: Any):
        """POST a signed notification to ``url`` (a 127.0.0.1 hub) and return the response."""
        import httpx

        body, headers = self.state.webhook_request(changes, **kwargs)
        return httpx.post(url, content=body, headers=headers, timeout=10)

    def expire_tokens(self) -> int:
        with self.state.lock:
            tokens = self.state.access_tokens
            for token, (realm, _) in tokens.items():
                tokens[token] = (realm, 0.0)
            return len(tokens)

    def fault_response(self, request: Request, fault: PlannedFault) -> Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        status = fault.status or 500
        if status == 429:
            return _reply(429, _THROTTLED.body(self.state.stamp()), headers)
        return _reply(status, Fault(status, "10000", "An application error has occurred while processing your "
                                    "request", type="SystemFault").body(self.state.stamp()), headers)

    def _client_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        try:
            given = base64.b64decode(header.removeprefix("Basic ")).decode() if header.startswith("Basic ") else ""
        except ValueError:
            return False
        return hmac.compare_digest(given, f"{self.st.client_id}:{self.st.client_secret}")

    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/connect/oauth2":
            if "decision" not in request.query and "text/html" in request.headers.get("accept", ""):
                return _consent_page(request.query)
            return self._authorize(request.query)
        if request.method == "POST" and request.path == "/oauth2/v1/tokens/bearer":
            return self._token(request, request.form())
        if request.method == "POST" and request.path == "/v2/oauth2/tokens/revoke":
            return self._revoke(request)
        if request.method not in ("GET", "POST"):
            return _reply(405, {"error": "method_not_allowed"})
        return self._api(request)

    # -- OAuth --------------------------------------------------------------------------------------------
    def _authorize(self, query: dict[str, str]) -> Response:
        st = self.st
        if query.get("client_id") != st.client_id or query.get("response_type") != "code":
            return _reply(400, {"error": "invalid_request"})
        redirect = query["redirect_uri"]
        if query.get("decision") == "deny":
            params = {"error": "access_denied", "state": query.get("state", "")}
        else:
            code = "AB" + secrets.token_urlsafe(24)
            with st.lock:
                st.company(st.consent_realm)
                st.codes[code] = {"redirect_uri": redirect, "realm": st.consent_realm}
            params = {"code": code, "state": query.get("state", ""), "realmId": st.consent_realm}
        return _reply(302, headers={"Location": f"{redirect}?{urlencode(params)}"})

    def _token(self, request: Request, form: dict[str, str]) -> Response:
        st = self.st
        if not self._client_ok(request):
            return _reply(401, {"error": "invalid_client"})
        with st.lock:
            if form.get("grant_type") == "authorization_code":
                grant = st.codes.pop(form.get("code", ""), None)
                if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                    return _reply(400, {"error": "invalid_grant"})
                realm = grant["realm"]
            elif form.get("grant_type") == "refresh_token":
                st.refresh_calls += 1
                realm = st.refresh_tokens.pop(form.get("refresh_token", ""), None)  # rotation: the old one dies
                if realm is None:
                    return _reply(400, {"error": "invalid_grant"})
            else:
                return _reply(400, {"error": "unsupported_grant_type"})
            access, refresh = "eyJ" + secrets.token_urlsafe(40), "AB11" + secrets.token_urlsafe(30)
            st.access_tokens[access] = (realm, time.time() + st.access_ttl)
            st.refresh_tokens[refresh] = realm
        return _reply(200, {"token_type": "bearer", "access_token": access, "expires_in": st.access_ttl,
                            "refresh_token": refresh, "x_refresh_token_expires_in": 8_726_400})

    def _revoke(self, request: Request) -> Response:
        st = self.st
        if not self._client_ok(request):
            return _reply(401, {"error": "invalid_client"})
        try:
            token = json.loads(request.body)["token"]
        except (ValueError, KeyError, TypeError):
            return _reply(400, {"error": "invalid_request"})
        with st.lock:
            st.revoked.append(token)
            realm = st.refresh_tokens.pop(token, None) or st.access_tokens.get(token, (None, 0))[0]
            for access, (owner, _) in list(st.access_tokens.items()):  # revoking kills the whole grant
                if owner == realm:
                    del st.access_tokens[access]
        return _reply(200)

    # -- the API --------------------------------------------------------------------------------------------
    def _api(self, request: Request) -> Response:
        st, method, query, body = self.st, request.method, request.query, request.body
        match = _API_PATH.match(request.path)
        if not match:
            return _reply(404, {"error": "not_found"})
        realm, rest = match["realm"], match["rest"].rstrip("/")
        with st.lock:
            owner, expiry = st.access_tokens.get(request.bearer or "", (None, 0.0))
        if owner != realm or expiry <= time.time():
            return _reply(401, {"fault": {"error": [{
                "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                "detail": "Token expired or invalid", "code": "3200"}], "type": "AUTHENTICATION"},
                "time": st.stamp()})
        if not st.admit(realm, batch=rest == "batch"):
            return _reply(429, _THROTTLED.body(st.stamp()))
        try:
            time.sleep(st.latency)
            with st.lock:
                if st.fail_next:
                    status = st.fail_next.pop(0)
                    reply = Fault(status, "10000", "An application error has occurred while processing your "
                                  "request", type="SystemFault").body(st.stamp())
                else:
                    st.requests.append(f"{method} /{rest}")
                    key = (realm, f"{method} {rest}", query["requestid"]) if query.get("requestid") else None
                    if key and key in st._replies:
                        st.replayed += 1
                        status, reply = st._replies[key]
                    else:
                        status, reply = self._serve(st.company(realm), method, rest, query, body)
                        if key and status < 500:
                            st._replies[key] = (status, reply)
        finally:
            st.done(realm)  # finished once its answer exists: the caller may send the next as soon as it has it
        return _reply(status, reply)

    def _serve(self, company: Company, method: str, rest: str, query: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        st = self.st
        now = st.stamp()
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return 400, Fault(400, "2010", "Request has invalid or unsupported property").body(now)
        try:
            if method == "GET" and rest == f"companyinfo/{company.realm_id}":
                return 200, {"CompanyInfo": {"CompanyName": company.name, "LegalName": company.name, "Id": "1",
                                             "SyncToken": "0", "Country": "US"}, "time": now}
            if method == "GET" and rest == "query":
                return 200, run_query(company, query.get("query", ""), now)
            if method == "GET" and rest == "cdc":
                return 200, self._cdc(company, query, now)
            if method == "POST" and rest == "batch":
                return 200, self._batch(company, payload, now)
            entity = next((e for e in ENTITIES if e.lower() == rest.split("/")[0]), None)
            if entity is None:
                return 404, Fault(404, "4000", "Unsupported resource", f"no resource {rest}").body(now)
            if method == "GET" and "/" in rest:
                obj = company.objects[entity].get(rest.split("/", 1)[1])
                if obj is None:
                    raise Fault(400, "610", "Object Not Found", f"Object Not Found : {entity} {rest}")
                return 200, {entity: copy.deepcopy(obj), "time": now}
            if method == "POST" and "/" not in rest:
                return 200, {entity: self._write(company, entity, query.get("operation") or (
                    "update" if payload.get("Id") else "create"), payload), "time": now}
            return 405, Fault(405, "4000", "Method not allowed", f"{method} {rest}").body(now)
        except Fault as fault:
            return fault.status, fault.body(now)

    def _write(self, company: Company, entity: str, operation: str, data: dict[str, Any]) -> dict[str, Any]:
        if entity == "Account" and operation != "create":
            raise Fault(400, "6000", "A business validation error has occurred", "accounts are read-only here")
        if operation == "create":
            return self.st._create(company, entity, data)
        if operation == "update":
            return self.st._update(company, entity, data)
        if operation == "delete":
            return self.st._delete(company, entity, data)
        raise Fault(400, "2010", "Request has invalid or unsupported property", f"operation {operation}")

    def _batch(self, company: Company, payload: dict[str, Any], now: str) -> dict[str, Any]:
        st = self.st
        items = payload.get("BatchItemRequest")
        if not isinstance(items, list) or not items:
            raise Fault(400, "2010", "Request has invalid or unsupported property", "BatchItemRequest is required")
        if len(items) > MAX_BATCH_ITEMS:
            raise Fault(400, "10000", "Batch size exceeds the limit",
                        f"The maximum number of items in a batch is {MAX_BATCH_ITEMS}; the request had {len(items)}")
        st.batch_calls += 1
        out = []
        for item in items:
            b_id = item.get("bId")
            try:
                if "Query" in item:
                    out.append({"bId": b_id, **run_query(company, item["Query"], now)})
                    continue
                entity = next((e for e in ENTITIES if e in item), None)
                if entity is None:
                    raise Fault(400, "2010", "Request has invalid or unsupported property", "no entity in item")
                out.append({"bId": b_id, entity: self._write(company, entity, item.get("operation", "create"),
                                                             item[entity])})
            except Fault as fault:
                out.append({"bId": b_id, "Fault": {"Error": fault.body(now)["Fault"]["Error"],
                                                   "type": fault.type}})
        return {"BatchItemResponse": out, "time": now}

    def _cdc(self, company: Company, query: dict[str, str], now: str) -> dict[str, Any]:
        st = self.st
        try:
            since = datetime.fromisoformat(query.get("changedSince", ""))
        except ValueError:
            raise Fault(400, "2010", "Request has invalid or unsupported property",
                        "changedSince must be a date-time") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        if since < st.now() - CDC_LOOKBACK:
            raise Fault(400, "10001", "Invalid changedSince",
                        "changedSince cannot be more than 30 days in the past")
        names = [e for e in ENTITIES if e.lower() in {n.strip().lower() for n in query.get("entities", "").split(",")}]
        if not names:
            raise Fault(400, "10000", "An application error has occurred", "entities is required")
        responses, budget = [], CDC_MAX_OBJECTS
        for entity in names:
            changed = sorted((o for o in company.objects[entity].values()
                              if datetime.fromisoformat(o["MetaData"]["LastUpdatedTime"]) >= since),
                             key=lambda o: o["MetaData"]["LastUpdatedTime"])
            gone = [{"Id": i, "status": "Deleted", "domain": "QBO", "MetaData": {"LastUpdatedTime": when}}
                    for i, when in company.deleted[entity].items() if datetime.fromisoformat(when) >= since]
            found = ([copy.deepcopy(o) for o in changed] + gone)[:budget]
            budget -= len(found)
            responses.append({entity: found, "startPosition": 1, "maxResults": len(found)} if found else {})
        return {"CDCResponse": [{"QueryResponse": responses}], "time": now}
