"""The hub's errors. Each carries the HTTP status and the stable ``code`` of the one JSON error shape:

    {"error": {"code": "not_found", "message": "...", "details": ...}}

Plugins raise these (``ProviderError``, ``CredentialsRejected``, ...) and the API renders them.
Messages must never contain a token or secret.
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details


class InvalidRequest(HubError):
    status = 400
    code = "invalid_request"


class ValidationFailed(HubError):
    status = 422
    code = "validation_failed"


class Unauthorized(HubError):
    status = 401
    code = "unauthorized"


class NotFound(HubError):
    status = 404
    code = "not_found"


class Conflict(HubError):
    status = 409
    code = "conflict"


class NotConnected(HubError):
    status = 409
    code = "not_connected"


class ProviderError(HubError):
    """The provider failed or answered something the plugin could not use."""

    status = 502
    code = "provider_error"


class CredentialsRejected(HubError):
    """The provider refused the credentials or grant: wrong API key, revoked consent, ``invalid_grant``."""

    status = 422
    code = "credentials_rejected"


class PluginError(Exception):
    """A plugin broke the contract (duplicate slug, registration for an unknown provider, ...)."""
