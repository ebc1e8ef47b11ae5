"""The ``deps.pull_request`` job: merge or close a pull request through its provider, with
no transaction open while git or the forge works; the outcome is recorded afterwards (merged
or closed with events and usage, or back to open with the forge's reason)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.deps import forges, pulls, usage
from forgeyard.deps.providers import ProviderError
from forgeyard.jobs import JobContext, PermanentError, RetryLater, emit
from forgeyard.kernel import git
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.deps import PullRequest, PullRequestStatus
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

ENDS = {"merge": PullRequestStatus.MERGED, "close": PullRequestStatus.CLOSED}
UNDER_WAY = {"merge": PullRequestStatus.MERGING, "close": PullRequestStatus.CLOSING}


async def run(ctx: JobContext, settings: Settings) -> None:
    action = ctx.payload["action"]
    async with ctx.transaction() as session:
        pull = await session.get(PullRequest, ctx.payload["pull_request_id"])
        repository = None
        if pull is not None:
            repository = await session.get(Repository, pull.repository_id)
    if pull is None or repository is None or pull.status != UNDER_WAY[action]:
        return  # deleted, or already carried out by an earlier attempt
    try:
        merge_commit = await _carry_out(action, pull, repository, settings)
    except ProviderError as exc:
        if exc.retryable and ctx.attempt < ctx.job.max_attempts:
            raise RetryLater(exc.message) from None
        await _reopen(ctx, pull.id, exc.message)
        raise PermanentError(exc.message) from None
    except (InvalidInputError, git.GitError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        await _reopen(ctx, pull.id, message)
        raise PermanentError(message) from None
    async with ctx.transaction() as session:
        await _record(session, pull.id, action, merge_commit)


async def _carry_out(
    action: str, pull: PullRequest, repository: Repository, settings: Settings
) -> str | None:
    if action == "merge":
        fetched = await repos.fetch_mirror(
            repository=repository, settings=settings, box=instance_secret_box(settings)
        )
        if not fetched.ok:
            raise ProviderError(f"the repository could not be fetched: {fetched.error}")
    provider = forges.provider_for(
        repository,
        settings,
        base=pull.base_branch,
        head=pull.head_branch,
        head_commit=pull.head_commit,
    )
    try:
        if action == "close":
            await provider.close(forges.forge_repository(repository), pull.number or 0)
            return None
        merged = await provider.merge(
            forges.forge_repository(repository), pull.number or 0, title=f"Merge: {pull.title}"
        )
        return merged.sha
    finally:
        await provider.aclose()


async def _record(
    session: AsyncSession, pull_id: str, action: str, merge_commit: str | None
) -> None:
    pull = await session.get(PullRequest, pull_id)
    if pull is None:
        return
    await pulls.move(session, pull, ENDS[action])
    pull.error = None
    if action == "merge":
        pull.merge_commit = merge_commit
        pull.merged_at = utcnow()
        await usage.count(session, pull.organization_id, "prs_merged")
        await emit(session, "pr.merged", pulls.event_of(pull), organization_id=pull.organization_id)
    else:
        pull.closed_at = utcnow()
    await session.flush()


async def _reopen(ctx: JobContext, pull_id: str, reason: str) -> None:
    async with ctx.transaction() as session:
        pull = await session.get(PullRequest, pull_id)
        if pull is not None:
            await pulls.move(session, pull, PullRequestStatus.OPEN)
            pull.error = reason[:2000]
