"""Pull requests update jobs open: recording one, reading them, and asking for a merge or a
close, which a ``deps.pull_request`` job carries out (``deps/pull_actions.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.deps import usage
from forgeyard.deps.providers import (
    OpenedPullRequest,
    PullRequestDraft,
)
from forgeyard.jobs import emit, enqueue
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import ConflictError
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.deps import PULL_REQUEST_TRANSITIONS, PullRequest, PullRequestStatus
from forgeyard.models.repo import Repository

ACT_KIND = "deps.pull_request"


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
    await emit(session, "pr.created", event_of(pull), organization_id=pull.organization_id)
    return pull


def event_of(pull: PullRequest) -> dict[str, Any]:
    return {
        "pull_request_id": pull.id,
        "repository_id": pull.repository_id,
        "job_id": pull.job_id,
        "title": pull.title,
        "url": pull.url,
        "confidence": pull.confidence,
        "status": pull.status,
        "base_branch": pull.base_branch,
        "head_branch": pull.head_branch,
        "head_commit": pull.head_commit,
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


async def request_merge(
    *, session: AsyncSession, who: Principal, pr_id: str
) -> tuple[PullRequest, str]:
    """Mark it merging and queue the job that merges it; 409 unless it is open."""
    return await _request(session, who, pr_id, PullRequestStatus.MERGING, "merge")


async def request_close(
    *, session: AsyncSession, who: Principal, pr_id: str
) -> tuple[PullRequest, str]:
    return await _request(session, who, pr_id, PullRequestStatus.CLOSING, "close")


async def _request(
    session: AsyncSession, who: Principal, pr_id: str, to: PullRequestStatus, action: str
) -> tuple[PullRequest, str]:
    pull = await get_pull_request(session=session, who=who, pr_id=pr_id)
    await move(session, pull, to)
    job = await enqueue(
        session,
        ACT_KIND,
        payload={"pull_request_id": pull.id, "action": action},
        organization_id=pull.organization_id,
        repository_id=pull.repository_id,
        max_attempts=3,
    )
    return pull, job.id


async def move(session: AsyncSession, pull: PullRequest, to: PullRequestStatus) -> None:
    """Move ``pull`` to ``to`` along PULL_REQUEST_TRANSITIONS, guarded by the status it
    has in the database: of two requests racing to merge it, one gets 409."""
    allowed_from = [s for s, onward in PULL_REQUEST_TRANSITIONS.items() if to in onward]
    moved = await session.execute(
        update(PullRequest)
        .where(PullRequest.id == pull.id, PullRequest.status.in_(allowed_from))
        .values(status=to, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(pull, ["status"])
        raise ConflictError(
            f"pull request {pull.id} is {pull.status}; it cannot become {to}",
            details={"pull_request_id": pull.id, "status": pull.status},
        )
    await session.refresh(pull)
