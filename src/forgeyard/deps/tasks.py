"""Dependency jobs: scanning a repository, running an update job, merging or closing a pull
request, and scanning after each analysis (schedules and pushes start analyses)."""

from __future__ import annotations

from typing import Any

from forgeyard.deps import pull_actions, scanner, service, updating
from forgeyard.jobs import JobContext, PermanentError, subscriber, task
from forgeyard.models.repo import Repository
from forgeyard.settings import get_settings


@task(service.SCAN_KIND, max_attempts=3)
async def scan(ctx: JobContext) -> None:
    await scanner.run(ctx, get_settings())


@task(service.UPDATE_KIND, max_attempts=2)
async def update(ctx: JobContext) -> None:
    try:
        await updating.run(ctx, get_settings())
    except updating.UpdateFailed as failure:
        raise PermanentError(str(failure)) from None


@task(service.ACT_KIND, max_attempts=3)
async def act_on_pull_request(ctx: JobContext) -> None:
    await pull_actions.run(ctx, get_settings())


@subscriber("deps.after_analysis", events=["analysis.completed"])
async def scan_after_analysis(ctx: JobContext, message: dict[str, Any]) -> None:
    async with ctx.transaction() as session:
        repository = await session.get(Repository, message["data"]["repository_id"])
        if repository is not None:
            await service.enqueue_scan(session=session, repository=repository)


@subscriber("deps.pull_request_build", events=["build.finished"])
async def note_pull_request_build(ctx: JobContext, message: dict[str, Any]) -> None:
    """A build of one of our pull requests ended: its result feeds the confidence."""
    async with ctx.transaction() as session:
        await service.record_build_result(
            session=session, organization_id=message["organization_id"], build=message["data"]
        )
