"""The errors services raise; rest/ and schema/ map them to the wire in one place each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class GpugoError(Exception):
    status = 500
    code = "internal_error"
    default_message = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Sequence[FieldError] | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = list(details) if details else []
        if code is not None:
            self.code = code
        super().__init__(self.message)


class ValidationFailed(GpugoError):
    status = 400
    code = "validation_error"
    default_message = "The request is invalid."

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", details=[FieldError(field, message)])


class Unauthorized(GpugoError):
    status = 401
    code = "unauthorized"
    default_message = "Authentication required."


class TokenUsed(Unauthorized):
    code = "token_used"
    default_message = "This install token has already been used."


class TokenExpired(Unauthorized):
    code = "token_expired"
    default_message = "This install token has expired."


class Forbidden(GpugoError):
    status = 403
    code = "forbidden"
    default_message = "This credential may not act on this resource."


class PlanLimitExceeded(GpugoError):
    status = 403
    code = "plan_limit_exceeded"
    default_message = "Your plan's limit has been reached."


class PlanFeatureUnavailable(GpugoError):
    status = 403
    code = "plan_feature_unavailable"
    default_message = "Your plan does not include this feature."


class NotFound(GpugoError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class MethodNotAllowed(GpugoError):
    status = 405
    code = "method_not_allowed"
    default_message = "Method not allowed."


class RequestTimeout(GpugoError):
    status = 408
    code = "request_timeout"
    default_message = "The request was not received in time; the connection is closed."


class Conflict(GpugoError):
    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class Gone(GpugoError):
    status = 410
    code = "gone"
    default_message = "This resource is no longer available."


class PayloadTooLarge(GpugoError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is larger than 1 MiB."


class RequestHeadersTooLarge(GpugoError):
    status = 431
    code = "request_headers_too_large"
    default_message = "The request line and headers are larger than 64 KiB."


class UnsupportedMediaType(GpugoError):
    status = 415
    code = "unsupported_media_type"
    default_message = "Send the request body as application/json."


class RateLimited(GpugoError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests; try again later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(GpugoError):
    status = 503
    code = "service_unavailable"
    default_message = "The database is not reachable; try again shortly."
