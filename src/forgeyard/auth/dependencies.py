"""The FastAPI dependencies every protected route uses.

``CurrentPrincipal`` authenticates the request (API key, bearer JWT, or the dashboard cookie
with its CSRF check), then applies the organization's plan limits and records the
``X-RateLimit-*`` headers that every authenticated response carries.
``require("permission")`` adds the role check from docs/roles.md.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from forgeyard.auth import policy
from forgeyard.auth.principals import (
    Credential,
    Principal,
    cache_key,
    principal_from_access_token,
    principal_from_api_key,
)
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.kernel.db import Database
from forgeyard.kernel.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from forgeyard.kernel.requests import on_finish
from forgeyard.kernel.tokens import API_KEY_PREFIX

SESSION_COOKIE = "fy_session"
CSRF_COOKIE = "fy_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RESPONSE_HEADERS_STATE = "response_headers"


async def get_runtime(request: Request) -> AuthRuntime:
    runtime: AuthRuntime = request.app.state.auth
    return runtime


Runtime = Annotated[AuthRuntime, Depends(get_runtime)]


def _check_csrf(request: Request) -> None:
    """Double-submit check: a cross-site form cannot read the cookie to copy it into a header."""
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie, header):
        raise ForbiddenError(
            f"cookie-authenticated {request.method} requests need the {CSRF_HEADER} header",
            code="csrf_failed",
        )


def _credential(request: Request) -> Credential:
    """The one credential the request carries; X-API-Key wins over Authorization."""
    api_key = request.headers.get("X-API-Key")
    if api_key:
        return Credential("api_key", api_key)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return Credential("api_key" if value.startswith(API_KEY_PREFIX) else "jwt", value)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        _check_csrf(request)
        return Credential("jwt", cookie)
    raise UnauthorizedError("authentication required: send a bearer token or an API key")


async def _resolve(request: Request, runtime: AuthRuntime) -> Principal:
    credential = _credential(request)
    database: Database = request.app.state.database

    async def load() -> Principal:
        # Short transactions of their own, on a cache miss only; an API key's last use is
        # committed whatever becomes of the request.
        if credential.kind == "api_key":
            return await principal_from_api_key(database, runtime, credential.value)
        return await principal_from_access_token(database, runtime, credential.value)

    principal: Principal = await runtime.principals.get_or_load(
        cache_key(runtime, credential), load
    )
    return principal


async def _apply_plan_limits(request: Request, runtime: AuthRuntime, who: Principal) -> None:
    limits = runtime.settings.auth.plans[who.plan]
    state = await runtime.limiter.hit(
        f"{limits.api_calls_per_minute}/minute", "api", who.organization_id
    )
    headers = state.headers()
    setattr(request.state, RESPONSE_HEADERS_STATE, headers)
    if not state.allowed:
        raise RateLimitedError(
            f"rate limit of {state.limit} requests per minute exceeded",
            details={"retry_after": state.retry_after, "limit": state.limit},
            headers={**headers, "Retry-After": str(state.retry_after)},
        )


async def authenticate(request: Request, runtime: Runtime) -> Principal:
    principal = await _resolve(request, runtime)
    await _apply_plan_limits(request, runtime, principal)
    concurrency = runtime.settings.auth.plans[principal.plan].concurrent_requests
    slot = f"org:{principal.organization_id}"
    if not await runtime.limiter.acquire(slot, concurrency):
        raise RateLimitedError(
            f"more than {concurrency} requests in flight for this organization",
            details={"retry_after": 1, "concurrent_requests": concurrency},
            headers={"Retry-After": "1"},
        )
    # Released by the request middleware once the response is sent: a plain function is
    # much cheaper for FastAPI to run than a generator dependency.
    on_finish(request, lambda: runtime.limiter.release(slot))
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require(permission: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that answers 403 unless the caller's role and key scope allow it."""
    if permission not in policy.rules():
        raise KeyError(f"{permission!r} is not in the policy table (docs/roles.md)")

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise ForbiddenError(
                f"your role does not allow {permission}", details={"permission": permission}
            )
        return principal

    check.permission = permission  # type: ignore[attr-defined]  # read by the policy tests
    return check
