"""Inbound forge webhooks (seed 003): no sign-in, the forge's signature or token instead;
served outside CORS (no browser calls them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from forgeyard.auth.dependencies import Runtime
from forgeyard.ci import forge_webhooks
from forgeyard.kernel.dependencies import DbSession

router = APIRouter(tags=["ci"])


@router.post("/webhooks/github", status_code=202)
async def receive_github(request: Request, session: DbSession, runtime: Runtime) -> JSONResponse:
    """A GitHub App delivery, checked with X-Hub-Signature-256: 202 with the builds and the
    analysis it started, 200 ``{"ignored": reason}`` or ``{"duplicate": true}``, 401 when the
    signature does not match."""
    outcome = await forge_webhooks.receive_github(
        session=session,
        settings=runtime.settings,
        headers=request.headers,
        body=await request.body(),
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)


@router.post("/webhooks/gitlab", status_code=202)
async def receive_gitlab(request: Request, session: DbSession, runtime: Runtime) -> JSONResponse:
    """A GitLab delivery, checked with X-Gitlab-Token (the integration's webhook token)."""
    outcome = await forge_webhooks.receive_gitlab(
        session=session,
        settings=runtime.settings,
        hasher=runtime.token_hasher,
        headers=request.headers,
        body=await request.body(),
    )
    return JSONResponse(outcome.body, status_code=outcome.status_code)
