"""Hub records <-> Twilio payloads (pure functions)."""

from __future__ import annotations

from typing import Any

from hub import ConnectionContext


def sms_to_twilio(message: Any, ctx: ConnectionContext) -> dict[str, Any]:
    """A bulk message (``SmsMessage``) as the SDK's ``messages.create`` keywords, sender aside."""
    return {"to": message.to, "body": message.body or None, "media_url": list(message.media_urls) or None}
