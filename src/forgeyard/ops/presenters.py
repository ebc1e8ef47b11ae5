"""Rows into response shapes."""

from __future__ import annotations

from typing import Any

from forgeyard.kernel.db import utcnow
from forgeyard.models.job import Job, JobStage, WorkerRecord
from forgeyard.ops import schemas
from forgeyard.ops.service import QueueDepth


def stage_out(stage: JobStage) -> schemas.StageOut:
    duration = None
    if stage.finished_at is not None:
        duration = int((stage.finished_at - stage.started_at).total_seconds() * 1000)
    progress = None
    if stage.progress_total is not None or stage.progress_current is not None or stage.message:
        progress = {
            "current": stage.progress_current,
            "total": stage.progress_total,
            "message": stage.message,
        }
    return schemas.StageOut(
        name=stage.name,
        status=stage.status,
        attempt=stage.attempt,
        started_at=stage.started_at,
        finished_at=stage.finished_at,
        duration_ms=duration,
        progress=progress,
    )


def job_out(
    job: Job, stages: list[JobStage], update: dict[str, Any] | None = None
) -> schemas.JobOut:
    """``update``: an update job's fields, as ``deps.service.update_job_views`` gives them."""
    return schemas.JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,
        priority=job.priority,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        cancel_requested=job.cancel_requested,
        last_error=job.last_error,
        run_at=job.run_at,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        stages=[stage_out(stage) for stage in stages],
        repo_id=job.repository_id,
        **(_update_fields(job, update) if update is not None else {}),
    )


def _update_fields(job: Job, update: dict[str, Any]) -> dict[str, Any]:
    duration = None
    if job.started_at is not None and job.finished_at is not None:
        duration = round((job.finished_at - job.started_at).total_seconds(), 3)
    return {**update, "duration_seconds": duration}


def worker_out(worker: WorkerRecord) -> schemas.WorkerOut:
    return schemas.WorkerOut(
        id=worker.id,
        hostname=worker.hostname,
        pid=worker.pid,
        concurrency=worker.concurrency,
        jobs_running=worker.running,
        started_at=worker.started_at,
        last_heartbeat_at=worker.last_heartbeat_at,
    )


def queue_out(depth: QueueDepth) -> schemas.QueueOut:
    age = None
    if depth.oldest_queued_at is not None:
        age = round((utcnow() - depth.oldest_queued_at).total_seconds(), 3)
    return schemas.QueueOut(
        kind=depth.kind,
        queued=depth.queued,
        running=depth.running,
        oldest_queued_at=depth.oldest_queued_at,
        oldest_queued_age_seconds=age,
    )
