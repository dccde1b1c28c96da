"""Logging: the ``hub`` command's set-up, the context every line carries (request id, tenant id, job id),
JSON lines for production, and a last line of defence that masks anything shaped like a secret.

The hub never puts a secret in a message on purpose (provider requests are logged without query strings,
headers or bodies); ``Redact`` is there for the message nobody foresaw, such as a vendor SDK's exception.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import traceback
from datetime import UTC, datetime

# These log full URLs (query strings can carry tokens) or raw headers at INFO/DEBUG. The hub logs its
# own provider requests through hub.http, without query strings or headers.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "urllib3")
# Chatty at INFO on every readiness probe; the hub reports migrations itself.
TERSE_LOGGERS = ("alembic",)


_CONNECT_PAGE_TOKEN = re.compile(r"^/connect/(?!assets/|return/)[^/]+")


class StripQueryStrings(logging.Filter):
    """uvicorn's access log prints the full path with its query string, which on the OAuth callback
    carries the authorization code and state. Keep the path, drop the query; and mask the token of a
    connect page's path (``/connect/{token}/...``), which is the key to that page."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = _CONNECT_PAGE_TOKEN.sub("/connect/[redacted]", args[2].split("?", 1)[0])
            record.args = tuple(args)
        return True


_CONTEXT: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"hub_log_{name}", default=None) for name in ("request_id", "tenant_id", "job_id")
}


class log_context:  # noqa: N801 (used as a function: ``with log_context(request_id=...)``)
    """Every log line inside the block (in this task, and tasks it starts) carries these fields. A class,
    not a generator: it runs on every request."""

    __slots__ = ("_tokens", "_values")

    def __init__(self, **values: str | None) -> None:
        self._values = values

    def __enter__(self) -> None:
        self._tokens = [(_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in self._values.items()]

    def __exit__(self, *exc_info: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)


def set_log_context(**values: str | None) -> None:
    """Set fields for the rest of the current task (a request's handler sets its tenant once known)."""
    for name, value in values.items():
        _CONTEXT[name].set(value)


def current_log_context() -> dict[str, str]:
    return {name: value for name, var in _CONTEXT.items() if (value := var.get()) is not None}


SECRET_SHAPES = re.compile(
    r"((?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"                   # Authorization header values
    r"|\b(hub_|whsec_|sk_live_|sk_test_|rk_live_|rk_test_)[A-Za-z0-9_+/=-]{8,}"  # API keys and signing secrets
    r"|((?i:access_token|refresh_token|client_secret|password|api_key|auth_token)[\"']?\s*[=:]\s*[\"']?)"
    r"[^\s\"'&,;}]{4,}"
)


def redact(text: str) -> str:
    return SECRET_SHAPES.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + "[redacted]", text)


class ContextAndRedact(logging.Filter):
    """Adds the request/tenant/job context to each record and masks secret-shaped text in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_log_context().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context fields and any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            line["exception"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(line, ensure_ascii=False)


def quiet_third_party_loggers() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, StripQueryStrings) for f in access.filters):
        access.addFilter(StripQueryStrings())


def configure_logging(verbose: bool = False, fmt: str | None = None) -> None:
    """``fmt``: ``json`` (one object a line, for log shippers) or ``text``; by default JSON unless stderr
    is a terminal (``HUB_LOG_FORMAT`` sets it for every command)."""
    fmt = fmt or os.environ.get("HUB_LOG_FORMAT") or ("text" if sys.stderr.isatty() else "json")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextAndRedact())
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: a host that configured logging (pytest, an app) keeps its own
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    quiet_third_party_loggers()
    for name in TERSE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
