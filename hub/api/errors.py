"""One JSON error shape for every failure: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DataError, IntegrityError

from hub.errors import HubError

log = logging.getLogger("hub.api")

_CODES = {
    400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "body_too_large", 415: "unsupported_media_type", 422: "validation_failed",
    429: "rate_limited",
}


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    details: Any = None


class ErrorResponse(msgspec.Struct):
    error: ErrorBody


def error_response(status: int, code: str, message: str, details: Any = None, headers: dict | None = None) -> Response:
    return Response(
        ErrorResponse(ErrorBody(code=code, message=message, details=details)), status_code=status, headers=headers
    )


def handle_hub_error(_: Request, exc: HubError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details)


def handle_http_exception(_: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        return error_response(400, "invalid_request", "the request does not match the schema", exc.extra)
    if status >= 500:
        return handle_unexpected(_, exc)
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else "request failed"
    return error_response(status, _CODES.get(status, "request_failed"), message, None, exc.headers)


def handle_integrity_error(_: Request, exc: IntegrityError) -> Response:
    log.info("integrity error turned into 409: %s", type(exc.orig).__name__)
    return error_response(409, "conflict", "the change conflicts with existing data")


def handle_data_error(_: Request, exc: DataError) -> Response:
    log.info("data error turned into 400: %s", type(exc.orig).__name__)
    return error_response(400, "invalid_request",
                          "the request holds a value the database cannot store or compare (e.g. a NUL character)")


def handle_unexpected(_: Request, exc: Exception) -> Response:
    log.error("unhandled %s", type(exc).__name__, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the operator's log has the details")


EXCEPTION_HANDLERS = {
    HubError: handle_hub_error,
    HTTPException: handle_http_exception,
    IntegrityError: handle_integrity_error,
    DataError: handle_data_error,
    Exception: handle_unexpected,
}
