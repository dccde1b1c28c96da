"""Event types and the patterns endpoints subscribe with."""

from __future__ import annotations

import re
from collections.abc import Iterable

from hub.errors import InvalidRequest

MAX_PATTERNS = 100
SEGMENT = r"[a-z0-9][a-z0-9_-]*"
EVENT_TYPE = re.compile(rf"{SEGMENT}(\.{SEGMENT})+")
"""A dotted lowercase name: ``invoice.paid``, ``esign.envelope.completed``."""
PATTERN = re.compile(rf"\*|{SEGMENT}(\.{SEGMENT})*(\.\*)?")
MAX_TYPE_LENGTH = 100


def valid_event_type(name: str) -> bool:
    return len(name) <= MAX_TYPE_LENGTH and EVENT_TYPE.fullmatch(name) is not None


def check_patterns(patterns: Iterable[str]) -> list[str]:
    patterns = list(dict.fromkeys(patterns))
    if not patterns:
        raise InvalidRequest("event_types needs at least one pattern (\"*\" for every event)",
                             code="invalid_event_types")
    if len(patterns) > MAX_PATTERNS:
        raise InvalidRequest(f"at most {MAX_PATTERNS} event type patterns", code="invalid_event_types")
    bad = [p for p in patterns if len(p) > MAX_TYPE_LENGTH or not PATTERN.fullmatch(p)]
    if bad:
        raise InvalidRequest("event types are dotted lowercase names, optionally ending in .* (or just *)",
                             code="invalid_event_types", details={"invalid": bad[:10]})
    return patterns


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """``*`` matches every event; ``payment.*`` every event under ``payment.``; anything else exactly."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False
