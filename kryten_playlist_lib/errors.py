"""The domain exceptions, and the one table that maps them to HTTP statuses.

Code anywhere in the service raises `ServiceError` (or one of the small
subclasses below); the web layer turns it into the error format of
http-api.md and the NATS command layer into a `status:"error"` reply.
"""

from __future__ import annotations

from typing import Any

HTTP_STATUS_BY_CODE: dict[str, int] = {
    "bad_json": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "csrf_rejected": 403,
    "ip_blocked": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "name_taken": 409,
    "conflict": 409,
    "apply_in_progress": 409,
    "refresh_in_progress": 409,
    "no_current_item": 409,
    "user_not_in_channel": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "invalid_pattern": 422,
    "rate_limited": 429,
    "no_snapshot": 503,
    "nats_unavailable": 503,
    "robot_unavailable": 503,
    "internal": 500,
}


class ServiceError(Exception):
    """An operation failed in a way the caller should be told about."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        if code not in HTTP_STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_BY_CODE[self.code]

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationError(ServiceError):
    """One or more fields are wrong: `fields` maps a field path to what is wrong."""

    def __init__(self, fields: dict[str, str], message: str = "Some fields are not valid.") -> None:
        super().__init__("validation_error", message, {"fields": fields})
        self.fields = fields


class NotFound(ServiceError):
    def __init__(self, message: str = "Not found.") -> None:
        super().__init__("not_found", message)


class RateLimited(ServiceError):
    def __init__(self, retry_after_seconds: int, message: str = "Too many requests; try again later.",
                 details: dict[str, Any] | None = None) -> None:
        retry_after_seconds = max(1, int(retry_after_seconds))
        merged = {"retry_after_seconds": retry_after_seconds, **(details or {})}
        super().__init__("rate_limited", message, merged)
        self.retry_after_seconds = retry_after_seconds


class NatsUnavailable(ServiceError):
    """NATS is down or did not answer in time."""

    def __init__(self, message: str = "The message bus (NATS) is not reachable right now.") -> None:
        super().__init__("nats_unavailable", message)


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key. Stops the start (exit 2)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key {key!r}: {message}")
        self.key = key
