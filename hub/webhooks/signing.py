"""Standard Webhooks signing (https://www.standardwebhooks.com): what a receiver verifies.

A secret is ``whsec_`` + base64 of 32 random bytes. A message is signed as
``base64(HMAC-SHA256(secret bytes, "{webhook-id}.{webhook-timestamp}.{body}"))`` and sent as
``webhook-signature: v1,<signature>``; while a secret is being rotated the header carries one signature
per secret, separated by spaces, and a receiver accepts the message if any of them matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<sig>`` per secret, space-separated."""
    if not secrets:
        raise ValueError("signing needs at least one secret")
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)


def signed_headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }
