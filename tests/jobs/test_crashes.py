"""Workers die; jobs do not get lost or finished twice (kill -9, on both databases)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

from sqlalchemy import select

from forgeyard.jobs.queue import enqueue_many
from forgeyard.jobs.store import JobStore
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.models.job import Job
from forgeyard.settings import JobSettings
from tests.jobs import worker_process

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20
JOBS = 60


async def start_worker(url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.jobs.worker_process",
        url,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def first_job_started(stdout: asyncio.StreamReader) -> str:
    while line := (await stdout.readline()).decode():
        if line.startswith("started "):
            return line.split()[1]
    raise AssertionError("the worker exited before starting a job")


async def held_by(database: Database, worker_pid_jobs: set[str]) -> list[tuple[str, int]]:
    async with database.transaction() as session:
        rows = await session.execute(
            select(Job.id, Job.fence).where(Job.id.in_(worker_pid_jobs), Job.status == "running")
        )
        return [(row.id, row.fence) for row in rows]


async def test_kill_9_mid_job_twenty_times_loses_nothing_and_finishes_nothing_twice(
    committed_database: Database, committed_url: str
) -> None:
    async with committed_database.transaction() as session:
        await enqueue_many(session, "test.crashy", [{} for _ in range(JOBS)])
    stale: list[tuple[str, int]] = []
    for _ in range(KILLS):
        process = await start_worker(committed_url)
        assert process.stdout is not None
        started = {await asyncio.wait_for(first_job_started(process.stdout), 60)}
        await asyncio.sleep(random.uniform(0, 0.03))  # mid-stage, mid-completion, anywhere
        held = await held_by(committed_database, started)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        stale += held

    # A survivor finishes the rest once the dead workers' leases run out.
    survivor = Worker(
        committed_database,
        JobSettings(lease_seconds=worker_process.LEASE_SECONDS),
        kinds=["test.crashy"],
    )
    for _ in range(60):
        await survivor.drain()
        async with committed_database.transaction() as session:
            jobs = (await session.scalars(select(Job))).all()
        if all(job.status in ("succeeded", "dead") for job in jobs):
            break
        await asyncio.sleep(0.25)

    assert len(jobs) == JOBS, "no job was lost"
    assert {job.status for job in jobs} <= {"succeeded", "dead"}
    for job in jobs:
        if job.status == "dead":
            assert job.attempts == job.max_attempts
            assert "lease expired" in (job.last_error or "")
    assert stale, "the kills landed while jobs were running"
    store = JobStore(committed_database)
    try:
        assert await store.complete(stale) == set(), "a late completion is refused"
        assert (
            await store.heartbeat(worker_id="dead", held=stale, lease_seconds=30, running=0) == {}
        )
    finally:
        await store.close()
