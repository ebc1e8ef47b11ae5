"""Maps every error that reaches the API onto the envelope of API-MAP.md."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from forgeyard.api.middleware import current_request_id
from forgeyard.kernel.errors import ForgeyardError, code_for_status, error_body
from forgeyard.kernel.ids import InvalidIdError


def _respond(
    request: Request,
    *,
    status: int,
    message: str,
    code: str,
    details: dict[str, Any] | None = None,
    retryable: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = error_body(
        message=message,
        code=code,
        details=details,
        retryable=retryable,
        request_id=current_request_id(),
    )
    return JSONResponse(body, status_code=status, headers=headers)


async def _forgeyard_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ForgeyardError)
    return _respond(
        request,
        status=exc.status_code,
        message=exc.message,
        code=exc.code,
        details=exc.details,
        retryable=exc.retryable,
        headers=exc.headers,
    )


def _http_message(request: Request, status: int, detail: Any) -> str:
    if status == 404 and "route" not in request.scope:
        return f"no route for {request.method} {request.url.path}"
    if status == 405:
        return f"method {request.method} is not allowed on {request.url.path}"
    if isinstance(detail, str) and detail and detail != HTTPStatus(status).phrase:
        return detail
    return HTTPStatus(status).phrase.lower()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _respond(
        request,
        status=exc.status_code,
        message=_http_message(request, exc.status_code, exc.detail),
        code=code_for_status(exc.status_code),
        retryable=exc.status_code in (429, 502, 503, 504),
        headers=dict(exc.headers or {}),
    )


def _field_path(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The offending input is left out on purpose: it may be a password or a token.
    fields = [
        {"field": _field_path(err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
    return _respond(
        request,
        status=400,
        message=f"invalid input: {summary}" if summary else "invalid input",
        code="invalid_input",
        details={"fields": fields},
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A unique or foreign-key constraint refused the write: the request conflicts with what
    # is stored. Services check the cases a user can cause; this catches the races.
    return _respond(
        request,
        status=409,
        message="the change conflicts with existing data",
        code="conflict",
        retryable=True,
    )


async def _statement_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StatementError)
    if isinstance(exc.orig, InvalidIdError):
        # An id of the wrong kind or shape names nothing that exists.
        return _respond(request, status=404, message=str(exc.orig), code="not_found")
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ForgeyardError, _forgeyard_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(StatementError, _statement_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
