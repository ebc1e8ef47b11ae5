"""Jobs as an organization sees them, live workers, plan limits and retention cleanup.

Every query is scoped to the caller's organization; the worker list is the instance's (it
names machines, not anyone's data), which is why only owners and admins see it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.auth.ratelimit import RateLimiter
from forgeyard.jobs import enqueue, request_cancel
from forgeyard.jobs.notify import job_topic, wakeups
from forgeyard.kernel.db import Database, rows_affected, utcnow
from forgeyard.kernel.errors import ConflictError, NotFoundError
from forgeyard.kernel.pagination import PageParams
from forgeyard.kernel.sse import Update
from forgeyard.models.job import FINISHED, Event, Job, JobStage, JobStatus, WorkerRecord
from forgeyard.settings import Settings
from forgeyard.webhooks import service as webhooks

CLEANUP_KIND = "ops.cleanup"
# A worker that has not reported for this long is shown as gone (its jobs are reaped).
WORKER_SILENCE = timedelta(seconds=60)
FOLLOW_POLL_SECONDS = 5.0


async def get_job(
    *, session: AsyncSession, who: Principal, job_id: str
) -> tuple[Job, list[JobStage]]:
    job = await session.scalar(
        select(Job).where(Job.id == job_id, Job.organization_id == who.organization_id)
    )
    if job is None:
        raise NotFoundError("job not found", details={"job_id": job_id})
    stages = await session.scalars(
        select(JobStage)
        .where(JobStage.job_id == job.id)
        .order_by(JobStage.attempt, JobStage.position)
    )
    return job, list(stages)


async def list_jobs(
    *,
    session: AsyncSession,
    who: Principal,
    page: PageParams,
    status: JobStatus | None,
    kind: str | None,
    repo_id: str | None = None,
) -> tuple[list[Job], int]:
    query = select(Job).where(Job.organization_id == who.organization_id)
    if repo_id is not None:
        query = query.where(Job.repository_id == repo_id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Job.created_at.desc(), Job.id.desc()).limit(page.limit).offset(page.offset)
    )
    return list(rows), total or 0


async def cancel_job(
    *, session: AsyncSession, who: Principal, job_id: str
) -> tuple[Job, list[JobStage]]:
    job, _ = await get_job(session=session, who=who, job_id=job_id)
    if job.status in FINISHED:
        raise ConflictError(
            f"the job has already ended ({job.status})", details={"status": job.status}
        )
    await request_cancel(session, job.id)
    await session.refresh(job)
    return await get_job(session=session, who=who, job_id=job_id)


async def follow_job(
    *, database: Database, who: Principal, job_id: str, after_version: int, present: Any
) -> AsyncGenerator[Update, None]:
    """Snapshots of a job each time it changes, until it ends.

    Woken by the job's wake-ups from any process; it also looks every few seconds, so a
    missed wake-up delays an update, never loses it. ``present`` turns (job, stages) into
    the client's shape.
    """
    with wakeups.watch(job_topic(job_id)) as changed:
        while True:
            changed.clear()
            async with database.transaction(read_only=True) as session:
                job, stages = await get_job(session=session, who=who, job_id=job_id)
            finished = job.status in FINISHED
            if job.version > after_version or finished:
                after_version = max(after_version, job.version)
                yield Update(job.version, present(job, stages), "end" if finished else "progress")
            if finished:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=FOLLOW_POLL_SECONDS)


@dataclass(frozen=True)
class QueueDepth:
    kind: str
    queued: int
    running: int
    oldest_queued_at: datetime | None


async def worker_state(
    *, session: AsyncSession, who: Principal
) -> tuple[list[WorkerRecord], list[QueueDepth]]:
    live_since = utcnow() - WORKER_SILENCE
    workers = await session.scalars(
        select(WorkerRecord)
        .where(WorkerRecord.last_heartbeat_at >= live_since)
        .order_by(WorkerRecord.started_at)
    )
    now = utcnow()
    rows = await session.execute(
        select(Job.kind, Job.status, func.count(), func.min(Job.run_at))
        .where(
            Job.organization_id == who.organization_id,
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
        )
        .group_by(Job.kind, Job.status)
    )
    depth: dict[str, dict[str, Any]] = {}
    for kind, status, count, oldest in rows:
        entry = depth.setdefault(kind, {"queued": 0, "running": 0, "oldest": None})
        entry[status] = count
        if status == JobStatus.QUEUED:
            entry["oldest"] = min(oldest, now) if oldest else None
    queues = [
        QueueDepth(kind, entry["queued"], entry["running"], entry["oldest"])
        for kind, entry in sorted(depth.items())
    ]
    return list(workers), queues


async def limits(
    *, session: AsyncSession, who: Principal, settings: Settings, limiter: RateLimiter
) -> dict[str, Any]:
    plan = settings.auth.plans[who.plan]
    window = await limiter.exceeded(
        f"{plan.api_calls_per_minute}/minute", "api", who.organization_id
    )
    in_flight = await limiter.in_flight(f"org:{who.organization_id}")
    counts = dict(
        (
            await session.execute(
                select(Job.status, func.count())
                .where(
                    Job.organization_id == who.organization_id,
                    Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                )
                .group_by(Job.status)
            )
        ).all()
    )
    return {
        "plan": who.plan,
        "limits": plan.model_dump(),
        "usage": {
            "api_calls_this_minute": plan.api_calls_per_minute - window.remaining,
            "concurrent_requests": in_flight,
            "jobs_queued": counts.get(JobStatus.QUEUED, 0),
            "jobs_running": counts.get(JobStatus.RUNNING, 0),
        },
        "resets_at": window.reset_at,
    }


async def request_cleanup(*, session: AsyncSession, who: Principal, retention_days: int) -> Job:
    """Enqueue a cleanup of the organization's finished work; one at a time per organization."""
    running = await session.scalar(
        select(Job.id).where(
            Job.organization_id == who.organization_id,
            Job.kind == CLEANUP_KIND,
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
        )
    )
    if running is not None:
        job = await session.get(Job, running)
        assert job is not None
        return job
    enqueued = await enqueue(
        session,
        CLEANUP_KIND,
        payload={"organization_id": who.organization_id, "retention_days": retention_days},
        organization_id=who.organization_id,
    )
    job = await session.get(Job, enqueued.id)
    assert job is not None
    return job


async def purge_finished(
    *, session: AsyncSession, before: datetime, organization_id: str | None
) -> dict[str, int]:
    """Delete jobs that ended, events dispatched and webhook deliveries finished before
    ``before``."""
    old_jobs = delete(Job).where(Job.status.in_(list(FINISHED)), Job.finished_at < before)
    old_events = delete(Event).where(Event.dispatched_at.is_not(None), Event.created_at < before)
    if organization_id is not None:
        old_jobs = old_jobs.where(Job.organization_id == organization_id)
        old_events = old_events.where(Event.organization_id == organization_id)
    jobs_deleted = await rows_affected(session, old_jobs)
    events_deleted = await rows_affected(session, old_events)
    deliveries_deleted = await webhooks.purge_deliveries(
        session=session, before=before, organization_id=organization_id
    )
    return {"jobs": jobs_deleted, "events": events_deleted, "deliveries": deliveries_deleted}
