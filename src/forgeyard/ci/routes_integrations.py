"""Forge integrations (seed 003) and GitHub installations (seed 001): connecting GitHub and
GitLab, the repositories they see, and which of them build here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.ci import integration_connect as connect
from forgeyard.ci import integration_presenters as presenters
from forgeyard.ci import integration_schemas as schemas
from forgeyard.ci import integrations
from forgeyard.kernel.dependencies import DbSession
from forgeyard.kernel.pagination import Page, Pagination
from forgeyard.models.integrations import Integration

router = APIRouter(tags=["ci"])

Read = Annotated[Principal, Depends(require("resources:read"))]
Manage = Annotated[Principal, Depends(require("integrations:manage"))]
Refresh = Annotated[bool, Query(description="Read the list from the forge again before answering.")]
GITLAB_WEBHOOK_PATH = "/api/v1/webhooks/gitlab"


async def _page(
    session: AsyncSession, rows: list[Integration], total: int, page: Pagination
) -> Page[schemas.IntegrationOut]:
    counts = await integrations.repository_counts(
        session=session, integration_ids=[row.id for row in rows]
    )
    return Page(
        data=[presenters.integration_out(row, counts[row.id]) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def _one(session: AsyncSession, integration: Integration) -> schemas.IntegrationOut:
    counts = await integrations.repository_counts(session=session, integration_ids=[integration.id])
    return presenters.integration_out(integration, counts[integration.id])


@router.get("/integrations")
async def list_integrations(
    principal: Read,
    session: DbSession,
    page: Pagination,
    kind: Annotated[schemas.IntegrationKindName | None, Query()] = None,
) -> Page[schemas.IntegrationOut]:
    rows, total = await integrations.list_integrations(
        session=session, who=principal, page=page, kind=kind
    )
    return await _page(session, rows, total, page)


@router.get("/integrations/{integration_id}")
async def get_integration(
    integration_id: str, principal: Read, session: DbSession
) -> schemas.IntegrationOut:
    integration = await integrations.get_integration(
        session=session, who=principal, integration_id=integration_id
    )
    return await _one(session, integration)


@router.delete("/integrations/{integration_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_integration(integration_id: str, principal: Manage, session: DbSession) -> None:
    await integrations.delete_integration(
        session=session, who=principal, integration_id=integration_id
    )


@router.get("/integrations/{integration_id}/repositories")
async def list_integration_repositories(
    integration_id: str,
    principal: Read,
    session: DbSession,
    runtime: Runtime,
    page: Pagination,
    refresh: Refresh = False,
) -> Page[schemas.ForgeRepositoryOut]:
    """The repositories the forge lets the integration see, and whether each builds here."""
    integration = await integrations.get_integration(
        session=session, who=principal, integration_id=integration_id
    )
    return await _repositories(session, principal, runtime, integration, page, refresh)


@router.post("/integrations/{integration_id}/repositories")
async def toggle_integration_repositories(
    integration_id: str,
    body: schemas.RepositoriesToggleIn,
    principal: Manage,
    session: DbSession,
    runtime: Runtime,
) -> schemas.RepositoriesToggledOut:
    """Builds on or off for any integration's repositories (GitLab's too); the same as
    ``POST /github/installations/{id}/repos`` for GitHub."""
    integration = await integrations.get_integration(
        session=session, who=principal, integration_id=integration_id
    )
    return await _toggled(session, principal, runtime, integration, body)


@router.post("/integrations/github/start")
async def start_github(
    principal: Manage, session: DbSession, runtime: Runtime
) -> schemas.StartedOut:
    """The GitHub App's install URL; GitHub sends the person back with installation_id and
    this state, which ``/integrations/github/complete`` takes."""
    started = await connect.start_github(
        session=session, who=principal, settings=runtime.settings, hasher=runtime.token_hasher
    )
    return schemas.StartedOut(url=started.url, state=started.state)


@router.post("/integrations/github/complete", status_code=status.HTTP_201_CREATED)
async def complete_github(
    body: schemas.GitHubCompleteIn, principal: Manage, session: DbSession, runtime: Runtime
) -> schemas.IntegrationOut:
    integration = await connect.complete_github(
        session=session,
        who=principal,
        settings=runtime.settings,
        hasher=runtime.token_hasher,
        installation_id=body.installation_id,
        state=body.state,
    )
    return await _one(session, integration)


@router.post("/integrations/gitlab/start")
async def start_gitlab(
    body: schemas.GitLabStartIn, principal: Manage, session: DbSession, runtime: Runtime
) -> schemas.StartedOut:
    """GitLab's authorize URL for the given OAuth application; GitLab sends the person back
    to ``gitlab.redirect_uri`` with code and state for ``/integrations/gitlab/authorize``."""
    started = await connect.start_gitlab(
        session=session,
        who=principal,
        settings=runtime.settings,
        hasher=runtime.token_hasher,
        base_url=body.base_url,
        client_id=body.client_id,
        client_secret=body.client_secret,
    )
    return schemas.StartedOut(url=started.url, state=started.state)


@router.post("/integrations/gitlab/authorize", status_code=status.HTTP_201_CREATED)
async def authorize_gitlab(
    body: schemas.GitLabAuthorizeIn, principal: Manage, session: DbSession, runtime: Runtime
) -> schemas.GitLabAuthorizedOut:
    authorized = await connect.authorize_gitlab(
        session=session,
        who=principal,
        settings=runtime.settings,
        hasher=runtime.token_hasher,
        code=body.code,
        state=body.state,
    )
    return schemas.GitLabAuthorizedOut(
        integration=await _one(session, authorized.integration),
        webhook_url=runtime.settings.public_url.rstrip("/") + GITLAB_WEBHOOK_PATH,
        webhook_token=authorized.webhook_token,
    )


# --- seed 001: GitHub installations ---------------------------------------------------------


@router.get("/github/installations")
async def list_installations(
    principal: Read, session: DbSession, page: Pagination
) -> Page[schemas.InstallationOut]:
    rows, total = await integrations.list_integrations(
        session=session, who=principal, page=page, kind="github"
    )
    counts = await integrations.repository_counts(
        session=session, integration_ids=[row.id for row in rows]
    )
    return Page(
        data=[presenters.installation_out(row, counts[row.id]) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/github/installations/{installation_id}/repos")
async def list_installation_repos(
    installation_id: str,
    principal: Read,
    session: DbSession,
    runtime: Runtime,
    page: Pagination,
    refresh: Refresh = False,
) -> Page[schemas.ForgeRepositoryOut]:
    installation = await integrations.get_github_installation(
        session=session, who=principal, installation_id=installation_id
    )
    return await _repositories(session, principal, runtime, installation, page, refresh)


@router.post("/github/installations/{installation_id}/repos")
async def toggle_installation_repos(
    installation_id: str,
    body: schemas.RepositoriesToggleIn,
    principal: Manage,
    session: DbSession,
    runtime: Runtime,
) -> schemas.RepositoriesToggledOut:
    """Builds on or off for the named repositories; enabling links each to a Forgeyard
    repository (the one with the same clone URL, or a new one)."""
    installation = await integrations.get_github_installation(
        session=session, who=principal, installation_id=installation_id
    )
    return await _toggled(session, principal, runtime, installation, body)


async def _repositories(
    session: AsyncSession,
    principal: Principal,
    runtime: AuthRuntime,
    integration: Integration,
    page: Pagination,
    refresh: bool,
) -> Page[schemas.ForgeRepositoryOut]:
    rows, total = await integrations.list_forge_repositories(
        session=session,
        who=principal,
        settings=runtime.settings,
        integration=integration,
        page=page,
        refresh=refresh,
    )
    return Page(
        data=[presenters.forge_repository_out(row) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def _toggled(
    session: AsyncSession,
    principal: Principal,
    runtime: AuthRuntime,
    integration: Integration,
    body: schemas.RepositoriesToggleIn,
) -> schemas.RepositoriesToggledOut:
    rows = await integrations.set_enabled(
        session=session,
        who=principal,
        settings=runtime.settings,
        integration=integration,
        full_names=body.repositories,
        enabled=body.enabled,
    )
    return schemas.RepositoriesToggledOut(data=[presenters.forge_repository_out(r) for r in rows])
