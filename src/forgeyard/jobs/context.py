"""What a handler gets: its job, a way to report stages and progress, and checkpoints.

Stages and progress are stored rows, written fenced like everything else a worker writes:
a worker that lost its claim finds out at its next report and stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.jobs.clock import Clock
from forgeyard.jobs.notify import job_topic, notify_on_commit
from forgeyard.jobs.store import ClaimedJob
from forgeyard.kernel.db import Database, rows_affected
from forgeyard.models.job import Job, JobStage, JobStatus, StageStatus

jobs = cast(Table, Job.__table__)
stages = cast(Table, JobStage.__table__)


class JobInterrupted(Exception):  # noqa: N818  (a signal to stop, not a failure)
    """Raised at a checkpoint: the job must stop now."""


class Cancelled(JobInterrupted):
    pass


class LeaseLost(JobInterrupted):
    """Another worker owns the job now; nothing this one writes about it will be accepted."""


class PermanentError(Exception):
    """Raise from a handler to fail the job at once: retrying cannot help."""


class RetryLater(Exception):  # noqa: N818
    """Raise from a handler to run the job again after ``delay_seconds`` (counts an attempt)."""

    def __init__(self, message: str, *, delay_seconds: float | None = None) -> None:
        super().__init__(message)
        self.delay_seconds = delay_seconds


@dataclass
class JobContext:
    job: ClaimedJob
    database: Database
    clock: Clock
    cancel_requested: bool = False
    lease_lost: bool = False
    _stage_id: int | None = None
    _stage_count: int = 0

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    @property
    def organization_id(self) -> str | None:
        return self.job.organization_id

    @property
    def attempt(self) -> int:
        return self.job.attempts

    def checkpoint(self) -> None:
        """Stop here if the job was cancelled or its claim was lost."""
        if self.lease_lost:
            raise LeaseLost(f"job {self.id} was claimed by another worker")
        if self.cancel_requested:
            raise Cancelled(f"job {self.id} was cancelled")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The handler's own unit of work; it commits when the block ends without error."""
        self.checkpoint()
        async with self.database.transaction() as session:
            yield session

    async def stage(self, name: str) -> None:
        """Finish the current stage (if any) and start ``name``."""
        self.checkpoint()
        now = self.clock.now()
        async with self.database.transaction() as session:
            await self._touch_job(session)
            if self._stage_id is not None:
                await self._end_stage(session, StageStatus.SUCCEEDED)
            self._stage_count += 1
            result = await session.execute(
                insert(stages)
                .values(
                    job_id=self.id,
                    position=self._stage_count,
                    name=name[:100],
                    status=StageStatus.RUNNING,
                    attempt=self.attempt,
                    started_at=now,
                )
                .returning(stages.c.id)
            )
            self._stage_id = result.scalar_one()

    async def progress(
        self, current: int | None = None, total: int | None = None, message: str | None = None
    ) -> None:
        """Report how far the current stage got (a stage named "run" is opened if none is)."""
        if self._stage_id is None:
            await self.stage("run")
        self.checkpoint()
        async with self.database.transaction() as session:
            await self._touch_job(session)
            await session.execute(
                update(stages)
                .where(stages.c.id == self._stage_id)
                .values(
                    progress_current=current,
                    progress_total=total,
                    message=message[:500] if message else None,
                )
            )

    async def close_stage(self, status: StageStatus) -> None:
        """Called by the worker when the handler returns or raises."""
        if self._stage_id is None:
            return
        async with self.database.transaction() as session:
            await self._end_stage(session, status)
            await notify_on_commit(session, [job_topic(self.id)])

    async def _end_stage(self, session: AsyncSession, status: StageStatus) -> None:
        await session.execute(
            update(stages)
            .where(stages.c.id == self._stage_id)
            .values(status=status, finished_at=self.clock.now())
        )
        self._stage_id = None

    async def _touch_job(self, session: AsyncSession) -> None:
        """Bump the job's version (fenced) so followers look again; refuse if the claim is gone."""
        touched = await rows_affected(
            session,
            update(jobs)
            .where(
                jobs.c.id == self.id,
                jobs.c.fence == self.job.fence,
                jobs.c.status == JobStatus.RUNNING,
            )
            .values(version=jobs.c.version + 1),
        )
        if touched != 1:
            self.lease_lost = True
            raise LeaseLost(f"job {self.id} was claimed by another worker")
        await notify_on_commit(session, [job_topic(self.id)])
