"""Pull requests update jobs open: recording one, reading them, merging and closing them
through the repository's provider (``local`` or ``github``), with events and usage."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.deps import usage
from forgeyard.deps.providers import (
    OpenedPullRequest,
    ProviderError,
    PullRequestDraft,
    PullRequestProvider,
)
from forgeyard.deps.providers.github import GitHubProvider
from forgeyard.deps.providers.local import LocalProvider
from forgeyard.jobs import emit
from forgeyard.kernel.crypto import SecretBox
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import ConflictError, InvalidInputError
from forgeyard.kernel.http import OutboundPolicy
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.deps import PullRequest, PullRequestStatus
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings


def forge_repository(repository: Repository) -> str:
    """The forge's name for the repository: the setting, else the clone URL's path."""
    chosen = repos.settings_of(repository).pull_requests
    if chosen.repository:
        return chosen.repository
    path = urlsplit(repository.clone_url or "").path.strip("/")
    return path.removesuffix(".git") or repository.name


def provider_for(
    repository: Repository, settings: Settings, *, base: str, head: str
) -> PullRequestProvider:
    chosen = repos.settings_of(repository).pull_requests
    box = instance_secret_box(settings)
    if chosen.provider == "github":
        return GitHubProvider(
            api_url=chosen.api_url or "https://api.github.com",
            token=_token(repository, box),
            policy=OutboundPolicy.from_settings(settings.outbound),
        )

    async def push(refspecs: list[str]) -> None:
        await repos.push_to_origin(
            repository=repository, settings=settings, box=box, refspecs=refspecs
        )

    return LocalProvider(
        mirror=repos.mirror_path(settings, repository),
        push=push,
        base=base,
        head=head,
        time_limit=settings.analysis.git_time_limit_seconds,
    )


def _token(repository: Repository, box: SecretBox) -> str:
    if not repository.credentials_encrypted:
        raise InvalidInputError(
            f"{repository.name} has no token: GitHub pull requests need one",
            details={"repository_id": repository.id},
        )
    return box.decrypt(repository.credentials_encrypted).partition("\n")[2]


async def record_opened(
    *,
    session: AsyncSession,
    repository: Repository,
    provider: str,
    draft: PullRequestDraft,
    opened: OpenedPullRequest,
    details: dict[str, Any],
) -> PullRequest:
    """Record a pull request the provider opened; emits ``pr.created``."""
    pull = PullRequest(
        organization_id=repository.organization_id,
        repository_id=repository.id,
        provider=provider,
        number=opened.number,
        external_id=opened.external_id,
        url=opened.url,
        title=draft.title[:300],
        body=draft.body,
        base_branch=draft.base,
        head_branch=draft.head,
        **details,
    )
    session.add(pull)
    await session.flush()
    await usage.count(session, repository.organization_id, "prs_created")
    await emit(session, "pr.created", _event(pull), organization_id=pull.organization_id)
    return pull


def _event(pull: PullRequest) -> dict[str, Any]:
    return {
        "pull_request_id": pull.id,
        "repository_id": pull.repository_id,
        "job_id": pull.job_id,
        "title": pull.title,
        "url": pull.url,
        "confidence": pull.confidence,
        "status": pull.status,
    }


async def list_pull_requests(
    *,
    session: AsyncSession,
    who: Principal,
    page: PageParams,
    repo_id: str | None = None,
    status: str | None = None,
) -> tuple[list[PullRequest], int]:
    statement = select(PullRequest).where(PullRequest.organization_id == who.organization_id)
    if repo_id is not None:
        statement = statement.where(PullRequest.repository_id == repo_id)
    if status is not None:
        statement = statement.where(PullRequest.status == status)
    return await paginate(session, statement.order_by(PullRequest.id.desc()), page)


async def get_pull_request(*, session: AsyncSession, who: Principal, pr_id: str) -> PullRequest:
    return await get_owned(
        session,
        PullRequest,
        pr_id,
        organization_id=who.organization_id,
        kind="pull request",
        prefix="pr",
    )


async def merge_pull_request(
    *, session: AsyncSession, who: Principal, pr_id: str, settings: Settings
) -> PullRequest:
    pull = await _open_one(session, who, pr_id, "merged")
    repository = await repos.get_repo(session=session, who=who, repo_id=pull.repository_id)
    provider = provider_for(repository, settings, base=pull.base_branch, head=pull.head_branch)
    try:
        result = await provider.merge(
            forge_repository(repository), pull.number or 0, title=f"Merge: {pull.title}"
        )
    except ProviderError as exc:
        raise ConflictError(exc.message, details={"pull_request_id": pull.id}) from None
    finally:
        await provider.aclose()
    pull.status = PullRequestStatus.MERGED
    pull.merge_commit = result.sha
    pull.merged_at = utcnow()
    await session.flush()
    await usage.count(session, pull.organization_id, "prs_merged")
    await emit(session, "pr.merged", _event(pull), organization_id=pull.organization_id)
    return pull


async def close_pull_request(
    *, session: AsyncSession, who: Principal, pr_id: str, settings: Settings
) -> PullRequest:
    pull = await _open_one(session, who, pr_id, "closed")
    repository = await repos.get_repo(session=session, who=who, repo_id=pull.repository_id)
    provider = provider_for(repository, settings, base=pull.base_branch, head=pull.head_branch)
    try:
        await provider.close(forge_repository(repository), pull.number or 0)
    except ProviderError as exc:
        raise ConflictError(exc.message, details={"pull_request_id": pull.id}) from None
    finally:
        await provider.aclose()
    pull.status = PullRequestStatus.CLOSED
    pull.closed_at = utcnow()
    await session.flush()
    return pull


async def _open_one(session: AsyncSession, who: Principal, pr_id: str, wanted: str) -> PullRequest:
    pull = await get_pull_request(session=session, who=who, pr_id=pr_id)
    if pull.status != PullRequestStatus.OPEN:
        raise ConflictError(
            f"pull request {pull.id} is {pull.status}; only an open one can be {wanted}",
            details={"pull_request_id": pull.id, "status": pull.status},
        )
    return pull
