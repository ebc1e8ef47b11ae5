"""The job engine's tables: jobs, their stages, the workers running them, and domain events.

A job's life is a declared table of transitions (:data:`JOB_TRANSITIONS`); the engine's SQL
moves a job only along those edges, always guarded by the status it expects to find.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin, UTCDateTime, utcnow
from forgeyard.kernel.ids import PrefixedId, new_id


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the handler refused the job for good; no retry helps
    DEAD = "dead"  # every attempt failed or was lost
    CANCELLED = "cancelled"


# queued -> running on a claim; running -> queued on a retry, a lost lease or a graceful
# release; the rest end the job.
JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.QUEUED,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.DEAD,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.DEAD: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
FINISHED = frozenset(status for status, onward in JOB_TRANSITIONS.items() if not onward)


class StageStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(
        PrefixedId("job"), primary_key=True, default=lambda: new_id("job")
    )
    kind: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[str | None] = mapped_column(
        PrefixedId("org"), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The repository the job works on, if any: ``GET /jobs?repo_id=`` filters on it. No
    # foreign key: a finished job's record outlives the repository.
    repository_id: Mapped[str | None] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    # Raised by every claim: a worker's heartbeat, stage or completion carries the value it
    # claimed with, and the database refuses it once someone else has claimed the job since.
    fence: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker_id: Mapped[str | None] = mapped_column(String(40))
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Bumped by every change a client following the job could see; the SSE event id.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # The claim reads only queued rows, best first.
        Index(
            "ix_jobs_claim",
            priority.desc(),
            run_at,
            id,
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
        Index("ix_jobs_finished_at", "finished_at"),
    )


class JobStage(Base):
    __tablename__ = "job_stages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        PrefixedId("job"), ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=StageStatus.RUNNING)
    # The attempt that ran it: a retried job shows each attempt's stages.
    attempt: Mapped[int] = mapped_column(Integer)
    progress_current: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkerRecord(Base):
    """A live worker, as it last reported itself; rows of workers gone silent are pruned."""

    __tablename__ = "job_workers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    concurrency: Mapped[int] = mapped_column(Integer)
    running: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Event(TimestampMixin, Base):
    """A domain event, written in the transaction of the change it describes (the outbox)."""

    __tablename__ = "events"
    id: Mapped[str] = mapped_column(
        PrefixedId("evt"), primary_key=True, default=lambda: new_id("evt")
    )
    organization_id: Mapped[str | None] = mapped_column(
        PrefixedId("org"), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
