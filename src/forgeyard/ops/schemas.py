"""What the ops and jobs endpoints answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class StageOut(BaseModel):
    name: str
    status: str
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None = Field(description="Set once the stage has finished.")
    progress: dict[str, Any] | None


class JobOut(BaseModel):
    id: str
    kind: str
    status: str
    priority: int
    attempts: int
    max_attempts: int
    cancel_requested: bool
    last_error: str | None
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stages: list[StageOut]
    repo_id: str | None = Field(default=None, description="The repository the job works on.")
    # Set for dependency update jobs (seed 000's job shape); None for other kinds.
    dependency: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    confidence: float | None = None
    duration_seconds: float | None = None
    completed_at: datetime | None = None
    update: dict[str, Any] | None = Field(
        default=None,
        description="An update job's changes, confidence factors, test summary, failure "
        "report and pull request.",
    )


class WorkerOut(BaseModel):
    id: str
    hostname: str
    pid: int
    concurrency: int
    jobs_running: int
    started_at: datetime
    last_heartbeat_at: datetime


class QueueOut(BaseModel):
    kind: str
    queued: int
    running: int
    oldest_queued_at: datetime | None
    oldest_queued_age_seconds: float | None


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    queues: list[QueueOut]


class LimitsOut(BaseModel):
    plan: str
    limits: dict[str, int | None]
    usage: dict[str, int]
    resets_at: int = Field(description="Unix time the per-minute API window resets.")
