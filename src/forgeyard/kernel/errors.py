"""The one error shape of the API, and the exceptions that produce it.

    ForgeyardError                 code, HTTP status, message, details, retryable
     ├── InvalidInputError          400 invalid_input
     ├── UnauthorizedError          401 missing_auth (or a more precise 401 code)
     ├── ForbiddenError             403 forbidden
     ├── NotFoundError              404 not_found
     ├── ConflictError              409 conflict
     ├── PayloadTooLargeError       413 payload_too_large
     ├── RateLimitedError           429 rate_limited
     └── ServiceUnavailableError    503 service_unavailable

Every layer raises one of these (or lets the API map framework errors onto them); the API
renders them with :func:`error_body`, so clients branch on ``code`` and never parse messages.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ForgeyardError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        # The refusal itself must be remembered (a failed sign-in in the audit log, a revoked
        # token family): the transaction commits what was flushed before the error.
        self.keep_changes = keep_changes
        if code is not None:
            self.code = code  # type: ignore[misc]  # a more precise code for this instance


class InvalidInputError(ForgeyardError):
    status_code = 400
    code = "invalid_input"


class UnauthorizedError(ForgeyardError):
    status_code = 401
    code = "missing_auth"


class ForbiddenError(ForgeyardError):
    status_code = 403
    code = "forbidden"


class NotFoundError(ForgeyardError):
    status_code = 404
    code = "not_found"


class ConflictError(ForgeyardError):
    status_code = 409
    code = "conflict"


class PayloadTooLargeError(ForgeyardError):
    status_code = 413
    code = "payload_too_large"


class RateLimitedError(ForgeyardError):
    status_code = 429
    code = "rate_limited"
    retryable = True


class ServiceUnavailableError(ForgeyardError):
    status_code = 503
    code = "service_unavailable"
    retryable = True


# Codes for statuses that reach the API from the framework rather than from our own raises.
STATUS_CODES: dict[int, str] = {
    400: "invalid_input",
    401: "missing_auth",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def code_for_status(status: int) -> str:
    return STATUS_CODES.get(status, "internal_error" if status >= 500 else "invalid_input")


def error_body(
    *,
    message: str,
    code: str,
    request_id: str | None,
    details: dict[str, Any] | None = None,
    retryable: bool = False,
) -> dict[str, Any]:
    return {
        "error": message,
        "code": code,
        "details": details or {},
        "retryable": retryable,
        "request_id": request_id,
    }
