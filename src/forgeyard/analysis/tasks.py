"""Analysis jobs: running one analysis, starting one after a push, and the schedules."""

from __future__ import annotations

from typing import Any

from forgeyard.analysis import pipeline, service
from forgeyard.jobs import Cancelled, JobContext, PermanentError, RetryLater, subscriber, task
from forgeyard.jobs.scheduler import periodic
from forgeyard.kernel.errors import ConflictError, RateLimitedError
from forgeyard.kernel.logging import get_logger
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import get_settings

log = get_logger(__name__)
SCHEDULE_KIND = "analysis.schedule"
SCHEDULE_EVERY_SECONDS = 300
SCHEDULE_BATCH = 100
# A push waits this long for the repository's running analysis (or the plan's room) to end,
# up to the delivery job's ten attempts.
PUSH_RETRY_SECONDS = 60


@task(service.RUN_KIND, max_attempts=3)
async def run(ctx: JobContext) -> None:
    analysis_id = ctx.payload["analysis_id"]
    try:
        await pipeline.run(ctx, get_settings())
    except Cancelled:
        await _end(ctx, analysis_id, "cancelled", cancelled=True)
        raise
    except pipeline.AnalysisError as exc:
        await _end(ctx, analysis_id, str(exc))
        raise PermanentError(str(exc)) from None
    except Exception as exc:
        if ctx.attempt >= ctx.job.max_attempts:
            await _end(ctx, analysis_id, f"{type(exc).__name__}: {exc}")
        raise


async def _end(ctx: JobContext, analysis_id: str, error: str, *, cancelled: bool = False) -> None:
    # Through the database itself: the job's own transactions refuse to open once it has
    # been cancelled, and this is exactly when the analysis must be closed.
    async with ctx.database.transaction() as session:
        await service.fail(
            session=session, analysis_id=analysis_id, error=error, cancelled=cancelled
        )
    log.warning("analysis_ended", analysis_id=analysis_id, error=error)


@subscriber("analysis.on_push", events=["repo.pushed"])
async def analyse_push(ctx: JobContext, message: dict[str, Any]) -> None:
    """Analyse what a push brought; if an analysis is running, try again once it is done."""
    data = message["data"]
    async with ctx.transaction() as session:
        repository = await session.get(Repository, data["repository_id"])
        if repository is None:
            return
        limits = await service.limits_of(
            session=session, settings=get_settings(), organization_id=repository.organization_id
        )
        try:
            await service.start(
                session=session,
                repository=repository,
                trigger="push",
                ref=data.get("commit"),
                limits=limits,
            )
        except (ConflictError, RateLimitedError) as exc:
            raise RetryLater(exc.message, delay_seconds=PUSH_RETRY_SECONDS) from None


@task(SCHEDULE_KIND, max_attempts=1)
async def start_scheduled(ctx: JobContext) -> None:
    """Start the analyses whose daily or weekly schedule has come round; one that cannot
    start now (running already, or the plan is full) stays due for the next round."""
    settings = get_settings()
    async with ctx.transaction() as session:
        due = await repos.due_for_schedule(
            session=session, now=ctx.clock.now(), limit=SCHEDULE_BATCH
        )
        for repository in due:
            limits = await service.limits_of(
                session=session, settings=settings, organization_id=repository.organization_id
            )
            try:
                await service.start(
                    session=session, repository=repository, trigger="schedule", limits=limits
                )
            except (ConflictError, RateLimitedError):
                continue
            await repos.schedule_next(session=session, repository=repository, now=ctx.clock.now())


periodic("analysis-schedules", SCHEDULE_KIND, every_seconds=SCHEDULE_EVERY_SECONDS)
