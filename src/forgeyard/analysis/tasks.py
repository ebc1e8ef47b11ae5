"""Analysis jobs: running one analysis, starting one after a push, and the schedules."""

from __future__ import annotations

from typing import Any

from forgeyard.analysis import pipeline, service
from forgeyard.jobs import Cancelled, JobContext, PermanentError, RetryLater, subscriber, task
from forgeyard.jobs.scheduler import periodic
from forgeyard.kernel.errors import ConflictError
from forgeyard.kernel.logging import get_logger
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import get_settings

log = get_logger(__name__)
SCHEDULE_KIND = "analysis.schedule"
SCHEDULE_EVERY_SECONDS = 300
SCHEDULE_BATCH = 100


@task(service.RUN_KIND, max_attempts=3)
async def run(ctx: JobContext) -> None:
    analysis_id = ctx.payload["analysis_id"]
    try:
        await pipeline.run(ctx, get_settings())
    except Cancelled:
        async with ctx.transaction() as session:
            await service.fail(
                session=session, analysis_id=analysis_id, error="cancelled", cancelled=True
            )
        raise
    except pipeline.AnalysisError as exc:
        await _fail(ctx, analysis_id, str(exc))
        raise PermanentError(str(exc)) from None
    except Exception as exc:
        if ctx.attempt >= ctx.job.max_attempts:
            await _fail(ctx, analysis_id, f"{type(exc).__name__}: {exc}")
        raise


async def _fail(ctx: JobContext, analysis_id: str, error: str) -> None:
    async with ctx.transaction() as session:
        await service.fail(session=session, analysis_id=analysis_id, error=error)
    log.warning("analysis_failed", analysis_id=analysis_id, error=error)


@subscriber("analysis.on_push", events=["repo.pushed"])
async def analyse_push(ctx: JobContext, message: dict[str, Any]) -> None:
    """Analyse what a push brought; if an analysis is running, try again once it is done."""
    data = message["data"]
    async with ctx.transaction() as session:
        repository = await session.get(Repository, data["repository_id"])
        if repository is None:
            return
        try:
            await service.start(
                session=session, repository=repository, trigger="push", ref=data.get("commit")
            )
        except ConflictError:
            raise RetryLater("an analysis of the repository is running", delay_seconds=30) from None


@task(SCHEDULE_KIND, max_attempts=1)
async def start_scheduled(ctx: JobContext) -> None:
    """Start the analyses whose daily or weekly schedule has come round."""
    async with ctx.transaction() as session:
        due = await repos.due_for_schedule(
            session=session, now=ctx.clock.now(), limit=SCHEDULE_BATCH
        )
        for repository in due:
            try:
                await service.start(session=session, repository=repository, trigger="schedule")
            except ConflictError:
                continue  # running now: the schedule's purpose is served


periodic("analysis-schedules", SCHEDULE_KIND, every_seconds=SCHEDULE_EVERY_SECONDS)
