"""The worker's side of the jobs table: claim, heartbeat, finish, release, reap.

Every statement here is one atomic round trip in autocommit mode and carries the job's fence
(the claim counter): once a job has been claimed again, statements from its earlier holder
match no row and are refused. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so workers
never wait on each other; SQLite has one writer at a time, which makes the same statement
atomic there too.

The hot path (claim and complete, batched) has hand-written SQL for PostgreSQL, because at
ten thousand jobs a second the statement count per job is the speed; the rest is Core.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, insert, select, tuple_, update

from forgeyard.jobs.clock import Clock
from forgeyard.jobs.fastpath import FastPath, open_fast_path
from forgeyard.jobs.notify import CHANNEL, job_topic
from forgeyard.kernel.db import Database, rows_affected
from forgeyard.models.job import Job, JobStatus, WorkerRecord

jobs = cast(Table, Job.__table__)
workers = cast(Table, WorkerRecord.__table__)
LOST_LEASE = "the worker running it stopped answering (lease expired)"
_CANCEL_ASKED = jobs.c.cancel_requested.is_(True)


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    kind: str
    organization_id: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    fence: int


_RETURNING = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.organization_id,
    jobs.c.payload,
    jobs.c.attempts,
    jobs.c.max_attempts,
    jobs.c.fence,
)


class JobStore:
    def __init__(self, database: Database, clock: Clock | None = None) -> None:
        self.database = database
        self.clock = clock or Clock()
        self.postgres = database.dialect == "postgresql"
        self._fast: FastPath | None = None

    @property
    def fast(self) -> FastPath:
        if self._fast is None:
            self._fast = open_fast_path(self.database.engine.url, busy_timeout_ms=5000)
        return self._fast

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
            self._fast = None

    def _autocommit(self) -> Any:
        return self.database.autocommit()

    async def exchange(
        self,
        *,
        worker_id: str,
        held: Sequence[tuple[str, int]],
        kinds: Sequence[str],
        limit: int,
        lease_seconds: float,
    ) -> tuple[set[str], list[ClaimedJob]]:
        """Mark ``held`` succeeded and claim up to ``limit`` jobs, in one round trip.

        Returns the ids accepted as succeeded (the others had lost their claim) and the jobs
        claimed.
        """
        now = self.clock.now()
        lease = now + timedelta(seconds=lease_seconds)
        accepted, rows = await self.fast.exchange(worker_id, held, kinds, limit, now, lease)
        return accepted, [ClaimedJob(*row) for row in rows]

    async def claim(
        self, *, worker_id: str, kinds: Sequence[str], limit: int, lease_seconds: float
    ) -> list[ClaimedJob]:
        _, claimed = await self.exchange(
            worker_id=worker_id, held=(), kinds=kinds, limit=limit, lease_seconds=lease_seconds
        )
        return claimed

    async def claim_capped(
        self, *, worker_id: str, kind: str, cap: int, limit: int, lease_seconds: float
    ) -> list[ClaimedJob]:
        """Claim jobs of a kind limited to ``cap`` running at once across all workers."""
        now = self.clock.now()
        lease = now + timedelta(seconds=lease_seconds)
        async with self.database.transaction() as session:
            if self.postgres:  # one claimer per kind at a time, so the count stays true
                await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(kind))))
            running = await session.scalar(
                select(func.count()).where(jobs.c.kind == kind, jobs.c.status == JobStatus.RUNNING)
            )
            room = min(limit, cap - (running or 0))
            if room <= 0:
                return []
            rows = (
                await session.execute(self._claim_statement(worker_id, [kind], room, now, lease))
            ).all()
        return [ClaimedJob(*row) for row in rows]

    @staticmethod
    def _claim_statement(
        worker_id: str, kinds: Sequence[str], limit: int, now: datetime, lease: datetime
    ) -> Any:
        candidates = (
            select(jobs.c.id)
            .where(jobs.c.status == JobStatus.QUEUED, jobs.c.run_at <= now, jobs.c.kind.in_(kinds))
            .order_by(jobs.c.priority.desc(), jobs.c.run_at, jobs.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (
            update(jobs)
            .where(jobs.c.id.in_(candidates.scalar_subquery()))
            .values(
                status=JobStatus.RUNNING,
                attempts=jobs.c.attempts + 1,
                fence=jobs.c.fence + 1,
                worker_id=worker_id,
                lease_expires_at=lease,
                started_at=now,
                version=jobs.c.version + 1,
            )
            .returning(*_RETURNING)
        )

    async def complete(self, held: Sequence[tuple[str, int]]) -> set[str]:
        """Mark jobs succeeded; returns the ids accepted (the others had lost their claim)."""
        if not held:
            return set()
        accepted, _ = await self.exchange(
            worker_id="", held=held, kinds=(), limit=0, lease_seconds=0
        )
        return accepted

    def end_statement(
        self,
        job_id: str,
        fence: int,
        status: JobStatus,
        *,
        error: str | None,
        retry_at: datetime | None,
    ) -> Any:
        """The fenced update ending an attempt: retried (queued again), failed, dead, cancelled."""
        values: dict[str, Any] = {
            "status": status,
            "last_error": error,
            "lease_expires_at": None,
            "worker_id": None,
            "version": jobs.c.version + 1,
        }
        now = self.clock.now()
        if status == JobStatus.QUEUED:
            # Going back to the queue after cancellation was asked for ends the job instead.
            values["run_at"] = retry_at or now
            values["status"] = case((_CANCEL_ASKED, JobStatus.CANCELLED), else_=JobStatus.QUEUED)
            values["finished_at"] = case((_CANCEL_ASKED, now), else_=None)
        else:
            values["finished_at"] = now
        return (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.fence == fence, jobs.c.status == JobStatus.RUNNING)
            .values(**values)
            .returning(jobs.c.id)
        )

    async def end(
        self,
        job_id: str,
        fence: int,
        status: JobStatus,
        *,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        async with self._autocommit() as connection:
            statement = self.end_statement(job_id, fence, status, error=error, retry_at=retry_at)
            accepted = (await connection.execute(statement)).first() is not None
            if accepted and self.postgres:
                await connection.execute(select(func.pg_notify(CHANNEL, job_topic(job_id))))
        return accepted

    async def heartbeat(
        self, *, worker_id: str, held: Sequence[tuple[str, int]], lease_seconds: float, running: int
    ) -> dict[str, bool]:
        """Extend the leases still ours; returns {job id: cancel requested} for each of them."""
        now = self.clock.now()
        extended: dict[str, bool] = {}
        async with self._autocommit() as connection:
            if held:
                statement = (
                    update(jobs)
                    .where(
                        tuple_(jobs.c.id, jobs.c.fence).in_(held),
                        jobs.c.status == JobStatus.RUNNING,
                    )
                    .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                    .returning(jobs.c.id, jobs.c.cancel_requested)
                )
                extended = {
                    row.id: bool(row.cancel_requested)
                    for row in await connection.execute(statement)
                }
            await connection.execute(
                update(workers)
                .where(workers.c.id == worker_id)
                .values(last_heartbeat_at=now, running=running)
            )
        return extended

    async def release(self, held: Sequence[tuple[str, int]]) -> int:
        """Give claimed jobs back untouched (a graceful stop); the attempt does not count."""
        if not held:
            return 0
        async with self._autocommit() as connection:
            result = await rows_affected(
                connection,
                update(jobs)
                .where(
                    tuple_(jobs.c.id, jobs.c.fence).in_(held), jobs.c.status == JobStatus.RUNNING
                )
                .values(
                    status=case((_CANCEL_ASKED, JobStatus.CANCELLED), else_=JobStatus.QUEUED),
                    finished_at=case((_CANCEL_ASKED, self.clock.now()), else_=None),
                    attempts=jobs.c.attempts - 1,
                    worker_id=None,
                    lease_expires_at=None,
                    started_at=None,
                    version=jobs.c.version + 1,
                ),
            )
        return result

    async def reap(self) -> int:
        """Put back jobs whose lease ran out, or bury them after their last attempt."""
        now = self.clock.now()
        out_of_attempts = jobs.c.attempts >= jobs.c.max_attempts
        async with self._autocommit() as connection:
            result = await rows_affected(
                connection,
                update(jobs)
                .where(jobs.c.status == JobStatus.RUNNING, jobs.c.lease_expires_at < now)
                .values(
                    status=case(
                        (_CANCEL_ASKED, JobStatus.CANCELLED),
                        (out_of_attempts, JobStatus.DEAD),
                        else_=JobStatus.QUEUED,
                    ),
                    finished_at=case((_CANCEL_ASKED | out_of_attempts, now), else_=None),
                    run_at=now,
                    worker_id=None,
                    lease_expires_at=None,
                    last_error=LOST_LEASE,
                    version=jobs.c.version + 1,
                ),
            )
            stale = now - timedelta(minutes=5)
            await connection.execute(delete(workers).where(workers.c.last_heartbeat_at < stale))
        return result

    async def register_worker(
        self, *, worker_id: str, kinds: Sequence[str], concurrency: int
    ) -> None:
        now = self.clock.now()
        async with self._autocommit() as connection:
            await connection.execute(
                insert(workers).values(
                    id=worker_id,
                    hostname=socket.gethostname()[:200],
                    pid=os.getpid(),
                    kinds=list(kinds),
                    concurrency=concurrency,
                    running=0,
                    started_at=now,
                    last_heartbeat_at=now,
                )
            )

    async def remove_worker(self, worker_id: str) -> None:
        async with self._autocommit() as connection:
            await connection.execute(delete(workers).where(workers.c.id == worker_id))
