"""Pure ASGI middleware: request ids, access log and metrics, crashes, body size, CORS.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: it adds no task per request and
does not buffer streaming responses (SSE).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from ulid import ULID

from forgeyard.kernel import metrics
from forgeyard.kernel.errors import PayloadTooLargeError, error_body
from forgeyard.kernel.logging import get_logger, request_id_var
from forgeyard.kernel.requests import ON_FINISH_STATE

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed only when it cannot smuggle anything into logs or headers.
_WELL_FORMED_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"

log = get_logger("forgeyard.http")


def current_request_id() -> str | None:
    """The id of the request being handled, for any layer that must quote it."""
    return request_id_var.get()


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Gives every request an id, one access-log line and metrics; turns crashes into 500s."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _WELL_FORMED_REQUEST_ID.match(incoming) else str(ULID())
        request_id_token = request_id_var.set(request_id)
        started = time.perf_counter()
        response_status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal response_status
            if message["type"] == "http.response.start":
                response_status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                # Headers a dependency decided on (rate limits) reach error responses too.
                for name, value in (scope.get("state") or {}).get("response_headers", {}).items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", method=scope["method"], path=scope["path"])
            if response_status is not None:
                raise  # the response has begun; the server can only drop the connection
            await _internal_error()(scope, receive, send_with_id)
        finally:
            for finisher in (scope.get("state") or {}).get(ON_FINISH_STATE, ()):
                await finisher()
            self._record(scope, response_status or 500, time.perf_counter() - started)
            request_id_var.reset(request_id_token)

    @staticmethod
    def _record(scope: Scope, status: int, duration: float) -> None:
        route = _route_template(scope)
        method = scope["method"]
        metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
        metrics.HTTP_LATENCY.labels(method, route, str(status)).observe(duration)
        log.info(
            "request",
            method=method,
            path=scope["path"],
            route=route,
            status=status,
            duration_ms=round(duration * 1000, 2),
        )


class CrashMiddleware:
    """Answers an exception nobody handled with a 500 in the envelope, logged once.

    It sits inside the CORS middleware so the answer carries CORS headers; the request
    context middleware outside stays the last resort.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error", method=scope["method"], path=scope["path"])
            await _internal_error()(scope, receive, send)


def _internal_error() -> JSONResponse:
    body = error_body(
        message="internal error; quote the request id when reporting it",
        code="internal_error",
        request_id=current_request_id(),
    )
    return JSONResponse(body, status_code=500)


class BodySizeLimitMiddleware:
    """Refuses bodies over the limit, whether declared up front or streamed in chunks.

    FastAPI's own ``max_body_size`` answers a declared oversize body in plain text, outside
    the error envelope; this one answers both cases in the envelope.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        larger_bodies: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Paths whose bodies are uploads (git pushes, archives) with limits of their own.
        self.larger_bodies = tuple(larger_bodies)

    def _limit_for(self, path: str) -> int:
        for pattern, limit in self.larger_bodies:
            if pattern.match(path):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        exceeded = False
        replied = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise self._error(limit)
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks may catch the error raised while reading and answer something else
            # (FastAPI turns it into a 400); an overflow is a 413 whatever they answer.
            nonlocal replied
            if not exceeded:
                await send(message)
            elif not replied:
                replied = True
                await self._refuse(scope, receive, send, limit)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except PayloadTooLargeError:
            if not replied:
                await self._refuse(scope, receive, send, limit)

    def _error(self, limit: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body is larger than {limit} bytes", details={"max_body_bytes": limit}
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = self._error(limit)
        body = error_body(
            message=error.message,
            code=error.code,
            details=error.details,
            request_id=current_request_id(),
        )
        await JSONResponse(body, status_code=error.status_code)(scope, receive, send)


class EnvelopeCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with refused preflights answered in the error envelope."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        message = bytes(response.body).decode()
        failures = message.removeprefix("Disallowed CORS ").split(", ")
        headers = {
            key: value
            for key, value in response.headers.items()
            if key.lower() not in ("content-length", "content-type")
        }
        body = error_body(
            message=message.lower(),
            code="invalid_input",
            details={"cors": failures},
            request_id=current_request_id(),
        )
        return JSONResponse(body, status_code=response.status_code, headers=headers)


# How long a process trusts the origins it read: a change saved on one replica reaches the
# others within this many seconds (the saving replica applies it at once).
CORS_REFRESH_SECONDS = 5.0
OriginsLoader = Callable[[], Awaitable[list[str] | None]]


class CorsOrigins:
    """The origins CORS allows: those saved in the instance's preferences, else the
    environment's (FORGEYARD_CORS_ORIGINS). Re-read from the database at most every
    ``ttl`` seconds, and only by a request that carries an Origin, never on each request."""

    def __init__(
        self,
        fallback: Sequence[str],
        load: OriginsLoader,
        *,
        ttl: float = CORS_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fallback = frozenset(fallback)
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._fresh_until = 0.0
        self._loading = False
        self.current: frozenset[str] = self._fallback

    async def refresh_if_stale(self) -> None:
        if self._loading or self._clock() < self._fresh_until:
            return  # fresh, or another request is reading: the last value serves meanwhile
        self._loading = True
        try:
            saved = await self._load()
            self.current = frozenset(saved) if saved is not None else self._fallback
        except Exception:  # the database is away: keep what we had, try again after the TTL
            log.warning("cors_origins_unavailable", exc_info=True)
        finally:
            self._fresh_until = self._clock() + self._ttl
            self._loading = False

    def expire(self) -> None:
        self._fresh_until = 0.0

    def expire_after_commit(self, session: AsyncSession) -> None:
        """Read again once ``session``'s change is committed (earlier would read the old)."""
        event.listen(session.sync_session, "after_commit", self._expire_hook, once=True)

    def _expire_hook(self, _session: Any) -> None:
        self.expire()


class SettingsCORSMiddleware(EnvelopeCORSMiddleware):
    """CORS with origins from :class:`CorsOrigins`; paths in ``outside`` (the forges' webhook
    receivers, which no browser calls) get no CORS handling at all."""

    def __init__(
        self,
        app: ASGIApp,
        origins: CorsOrigins,
        outside: re.Pattern[str] | None = None,
        allow_methods: Sequence[str] = ("GET",),
        allow_headers: Sequence[str] = (),
        allow_credentials: bool = False,
        expose_headers: Sequence[str] = (),
    ) -> None:
        super().__init__(
            app,
            allow_origins=(),
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            allow_credentials=allow_credentials,
            expose_headers=expose_headers,
        )
        self.origins = origins
        self.outside = outside

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.outside and self.outside.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        if "origin" in Headers(scope=scope):
            await self.origins.refresh_if_stale()
        await super().__call__(scope, receive, send)

    def is_allowed_origin(self, origin: str) -> bool:
        current = self.origins.current
        return "*" in current or origin in current
