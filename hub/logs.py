"""Logging set-up for the ``hub`` command."""

from __future__ import annotations

import logging
import sys

# These log full URLs (query strings can carry tokens) or raw headers at INFO/DEBUG. The hub logs its
# own provider requests through hub.http, without query strings or headers.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "urllib3")


def quiet_third_party_loggers() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_third_party_loggers()
