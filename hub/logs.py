"""Logging set-up for the ``hub`` command."""

from __future__ import annotations

import logging
import sys

# These log full URLs (query strings can carry tokens) or raw headers at INFO/DEBUG. The hub logs its
# own provider requests through hub.http, without query strings or headers.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "urllib3")
# Chatty at INFO on every readiness probe; the hub reports migrations itself.
TERSE_LOGGERS = ("alembic",)


class StripQueryStrings(logging.Filter):
    """uvicorn's access log prints the full path with its query string, which on the OAuth callback
    carries the authorization code and state. Keep the path, drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = args[2].split("?", 1)[0]
            record.args = tuple(args)
        return True


def quiet_third_party_loggers() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, StripQueryStrings) for f in access.filters):
        access.addFilter(StripQueryStrings())


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_third_party_loggers()
    for name in TERSE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
