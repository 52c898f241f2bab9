"""Errors that carry their HTTP status, rendered once in Project-W's ``{"detail": ...}`` shape."""
from __future__ import annotations

from http import HTTPStatus
from typing import Any


class AppError(Exception):
    """Base for every error a client may see. ``detail`` is shown to people as-is."""

    status_code: int = HTTPStatus.INTERNAL_SERVER_ERROR
    default_detail = "Internal server error"

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail = self.default_detail if detail is None else detail
        self.headers = headers or {}
        super().__init__(str(self.detail))


class BadRequest(AppError):
    status_code = HTTPStatus.BAD_REQUEST
    default_detail = "Bad request"


class Unauthorized(AppError):
    status_code = HTTPStatus.UNAUTHORIZED
    default_detail = "Not authenticated"


class Forbidden(AppError):
    status_code = HTTPStatus.FORBIDDEN
    default_detail = "Forbidden"


class NotFound(AppError):
    status_code = HTTPStatus.NOT_FOUND
    default_detail = "Not Found"


class MethodNotAllowed(AppError):
    status_code = HTTPStatus.METHOD_NOT_ALLOWED
    default_detail = "Method Not Allowed"


class Conflict(AppError):
    status_code = HTTPStatus.CONFLICT
    default_detail = "Conflict"


class PayloadTooLarge(AppError):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    default_detail = "Payload too large"


class UnsupportedMediaType(AppError):
    status_code = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    default_detail = "Unsupported media type"


class TooManyRequests(AppError):
    status_code = HTTPStatus.TOO_MANY_REQUESTS
    default_detail = "Too many attempts; please wait a while"


class ValidationFailed(AppError):
    """422 with FastAPI's list of ``{type, loc, msg, input[, ctx]}`` entries as ``detail``."""

    status_code = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)


class ServiceUnavailable(AppError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    default_detail = "Service temporarily unavailable, please retry"
