"""A build as its runner sees it: claimed with a lease, reported on step by step, ended.

Claims take the oldest queued build the runner's labels allow (on PostgreSQL with
``FOR UPDATE SKIP LOCKED``, so runners never wait on each other) and lease it. Heartbeats
extend the lease. A build whose lease ran out is re-queued or failed (``ci.lease_lost_policy``)
by :func:`reap_expired`, run when a claim finds nothing and by the scheduler; from then on every
report about it from the runner that lost it answers 409 ``lease_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.ci.builds import NEW_BUILDS, build_topic, close_steps, finished, move
from forgeyard.jobs import emit
from forgeyard.jobs.notify import notify_on_commit, wakeups
from forgeyard.kernel.db import Database, utcnow
from forgeyard.kernel.errors import ConflictError, InvalidInputError
from forgeyard.kernel.logging import get_logger
from forgeyard.models.ci import (
    Artifact,
    Build,
    BuildLogChunk,
    BuildStatus,
    BuildStep,
    Runner,
    RunnerStatus,
)
from forgeyard.protocol.runner import LEASE_LOST, BuildResult, LogBatch, StepReport
from forgeyard.settings import CiSettings

CLAIM_CANDIDATES = 20
POLL_SECONDS = 2.0  # a wake-up is only a hint: look again this often while waiting
log = get_logger(__name__)


async def claim(
    database: Database,
    *,
    runner_id: str,
    settings: CiSettings,
    wait_seconds: float,
    gone: Callable[[], Awaitable[bool]],
) -> Build | None:
    """The build this runner now holds, waiting up to ``wait_seconds`` for one; None at once
    when ``gone()`` says the runner hung up (a build claimed for nobody would wait for its
    lease to run out)."""
    deadline = time.monotonic() + wait_seconds
    with wakeups.watch(NEW_BUILDS) as woken:
        while True:
            woken.clear()
            if await gone():
                return None
            async with database.transaction() as session:
                build = await _claim_once(session, runner_id, settings)
            if build is not None:
                return build
            # Off the claim's own path, which a waiting runner's dispatch latency is made of.
            async with database.transaction() as session:
                if await reap_expired(session, settings):
                    continue  # a re-queued build may be this runner's now
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(remaining, POLL_SECONDS))


async def _claim_once(session: AsyncSession, runner_id: str, settings: CiSettings) -> Build | None:
    """The oldest queued build of the runner's organization whose labels it has, if it is
    online; one statement finds it (a dispatch waits on every one)."""
    candidates = await session.execute(
        select(Build, Runner.labels)
        .join(Runner, Runner.organization_id == Build.organization_id)
        .where(
            Runner.id == runner_id,
            Runner.status == RunnerStatus.ONLINE,
            Build.status == BuildStatus.QUEUED,
        )
        .order_by(Build.queued_at, Build.id)
        .limit(CLAIM_CANDIDATES)
        .with_for_update(of=Build, skip_locked=True)
    )
    build = next((b for b, offered in candidates if set(b.labels) <= set(offered)), None)
    if build is None:
        return None
    now = utcnow()
    first = build.started_at is None
    await move(
        session,
        build,
        BuildStatus.RUNNING,
        error=build.error,
        runner_id=runner_id,
        lease_expires_at=now + timedelta(seconds=settings.lease_seconds),
        attempts=build.attempts + 1,
        started_at=build.started_at or now,
    )
    if first:
        await emit(
            session,
            "build.started",
            {"build_id": build.id, "repository_id": build.repository_id, "runner_id": runner_id},
            organization_id=build.organization_id,
        )
    return build


async def reap_expired(session: AsyncSession, settings: CiSettings) -> int:
    """Re-queue (or fail) the running builds whose runner stopped heartbeating."""
    expired = list(
        await session.scalars(
            select(Build)
            .where(Build.status == BuildStatus.RUNNING, Build.lease_expires_at < utcnow())
            .with_for_update(skip_locked=True)
        )
    )
    for build in expired:
        lost = f"runner {build.runner_id} stopped reporting (lease expired)"
        if settings.lease_lost_policy == "requeue" and build.attempts < settings.max_attempts:
            await _start_over(session, build)
            await move(
                session,
                build,
                BuildStatus.QUEUED,
                error=f"{lost}; re-queued",
                runner_id=None,
                lease_expires_at=None,
                cancel_requested=False,
                queued_at=utcnow(),
            )
            await notify_on_commit(session, [NEW_BUILDS])
        else:
            await move(session, build, BuildStatus.FAILED, error=lost, lease_expires_at=None)
            await close_steps(session, build.id, "skipped")
            await finished(session, build)
        log.warning("build_lease_expired", build_id=build.id, status=build.status)
    return len(expired)


async def _start_over(session: AsyncSession, build: Build) -> None:
    """The next runner runs the build from its first step: what the lost one left goes."""
    await session.execute(delete(BuildLogChunk).where(BuildLogChunk.build_id == build.id))
    await session.execute(delete(Artifact).where(Artifact.build_id == build.id))
    await session.execute(
        update(BuildStep)
        .where(BuildStep.build_id == build.id, BuildStep.reused.is_(False))
        .values(
            status="pending",
            exit_code=None,
            started_at=None,
            finished_at=None,
            log_lines=0,
            log_bytes=0,
            log_truncated=False,
        )
    )


async def held_build(session: AsyncSession, runner: Runner, build_id: str) -> Build:
    """``build_id`` if this runner holds it now; 409 ``lease_lost`` otherwise."""
    build = await session.get(Build, build_id, with_for_update=True)
    if build is None or build.runner_id != runner.id or build.status != BuildStatus.RUNNING:
        raise ConflictError(
            f"runner {runner.id} no longer holds build {build_id}",
            code=LEASE_LOST,
            details={"build_id": build_id},
        )
    return build


async def heartbeat(
    session: AsyncSession, runner: Runner, settings: CiSettings, build_ids: list[str]
) -> tuple[list[str], list[str], datetime]:
    """Extend the leases of the builds the runner names; which of them to cancel, which
    it lost, and until when it holds the others."""
    now = utcnow()
    expires = now + timedelta(seconds=settings.lease_seconds)
    runner.last_seen_at = now
    held = list(
        await session.scalars(
            select(Build).where(
                Build.id.in_(build_ids),
                Build.runner_id == runner.id,
                Build.status == BuildStatus.RUNNING,
            )
        )
    )
    for build in held:
        build.lease_expires_at = expires
    await session.flush()
    cancel = [b.id for b in held if b.cancel_requested]
    lost = sorted(set(build_ids) - {b.id for b in held})
    return cancel, lost, expires


async def report_step(
    session: AsyncSession, runner: Runner, build_id: str, index: int, report: StepReport
) -> Build:
    build = await held_build(session, runner, build_id)
    step = await _step(session, build, index)
    now = utcnow()
    if report.status == "running":
        step.status, step.started_at = "running", now
    else:
        step.status, step.exit_code, step.finished_at = report.status, report.exit_code, now
        step.started_at = step.started_at or now
        step.log_truncated = step.log_truncated or report.log_truncated
    await session.flush()
    await notify_on_commit(session, [build_topic(build.id)])
    return build


async def append_logs(
    session: AsyncSession, runner: Runner, build_id: str, batch: LogBatch, max_log_bytes: int
) -> Build:
    """Store one batch; past the build's log cap the lines are dropped and the step marked."""
    build = await held_build(session, runner, build_id)
    step = await _step(session, build, batch.step)
    if await _already_stored(session, build.id, batch):
        return build  # the runner sent it again because our answer was lost
    text = "\n".join(batch.lines)
    size = len(text.encode()) + 1
    used = await session.scalar(
        select(func.coalesce(func.sum(BuildStep.log_bytes), 0)).where(
            BuildStep.build_id == build.id
        )
    )
    if (used or 0) + size > max_log_bytes + 64 * 1024:  # room for the runner's own last line
        step.log_truncated = True
        await session.flush()
        return build
    last = await session.scalar(
        select(func.max(BuildLogChunk.seq)).where(BuildLogChunk.build_id == build.id)
    )
    session.add(
        BuildLogChunk(
            build_id=build.id,
            seq=(last or 0) + 1,
            step=batch.step,
            first_line=batch.first_line,
            line_count=len(batch.lines),
            text=text,
        )
    )
    step.log_lines = max(step.log_lines, batch.first_line + len(batch.lines))
    step.log_bytes += size
    await session.flush()
    await notify_on_commit(session, [build_topic(build.id)])
    return build


async def _already_stored(session: AsyncSession, build_id: str, batch: LogBatch) -> bool:
    found = await session.scalar(
        select(BuildLogChunk.id).where(
            BuildLogChunk.build_id == build_id,
            BuildLogChunk.step == batch.step,
            BuildLogChunk.first_line == batch.first_line,
        )
    )
    return found is not None


async def finish(
    session: AsyncSession, runner: Runner, build_id: str, result: BuildResult
) -> Build:
    build = await held_build(session, runner, build_id)
    await move(
        session,
        build,
        BuildStatus(result.status),
        error=result.error,
        lease_expires_at=None,
    )
    await close_steps(session, build.id, "cancelled" if result.status == "cancelled" else "skipped")
    await finished(session, build)
    return build


async def _step(session: AsyncSession, build: Build, index: int) -> BuildStep:
    step = await session.scalar(
        select(BuildStep).where(BuildStep.build_id == build.id, BuildStep.position == index)
    )
    if step is None or step.reused:
        raise InvalidInputError(
            f"build {build.id} has no step {index} to run", details={"field": "step"}
        )
    return step
