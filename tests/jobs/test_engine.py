"""The queue's promises, each checked on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from forgeyard.jobs import PermanentError, RetryPolicy, enqueue, request_cancel, task
from forgeyard.jobs.clock import ManualClock
from forgeyard.jobs.context import JobContext
from forgeyard.jobs.queue import enqueue_many
from forgeyard.jobs.store import JobStore
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.models.job import Job, JobStage, JobStatus
from forgeyard.settings import JobSettings


async def job_row(database: Database, job_id: str) -> Job:
    async with database.transaction() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def add_job(database: Database, kind: str, **options: object) -> str:
    async with database.transaction() as session:
        return (await enqueue(session, kind, **options)).id  # type: ignore[arg-type]


def register(kinds: list[str], kind: str, **options: object):  # type: ignore[no-untyped-def]
    kinds.append(kind)
    return task(kind, **options)  # type: ignore[arg-type]


async def test_a_job_exists_only_if_the_enqueuing_transaction_commits(
    committed_database: Database,
) -> None:
    async def failing_change() -> None:
        async with committed_database.transaction() as session:
            await enqueue(session, "test.nothing")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    async with committed_database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0


async def test_the_same_idempotency_key_returns_the_same_job(committed_database: Database) -> None:
    async with committed_database.transaction() as session:
        first = await enqueue(session, "test.keyed", idempotency_key="repo-1")
    async with committed_database.transaction() as session:
        second = await enqueue(session, "test.keyed", idempotency_key="repo-1")
        other_kind = await enqueue(session, "test.other", idempotency_key="repo-1")
    assert second.id == first.id
    assert not second.created
    assert other_kind.created
    assert other_kind.id != first.id


async def test_a_worker_runs_a_job_and_records_its_stages(
    committed_database: Database, temporary_tasks: list[str]
) -> None:
    @register(temporary_tasks, "test.staged")
    async def staged(ctx: JobContext) -> None:
        await ctx.stage("install")
        await ctx.progress(1, 2, "half way")
        await ctx.stage("test")

    job_id = await add_job(committed_database, "test.staged")
    assert await Worker(committed_database).drain() == 1
    job = await job_row(committed_database, job_id)
    assert job.status == "succeeded"
    assert job.attempts == 1
    assert job.finished_at is not None
    async with committed_database.transaction() as session:
        stages = (await session.scalars(select(JobStage).order_by(JobStage.position))).all()
    assert [(s.name, s.status) for s in stages] == [("install", "succeeded"), ("test", "succeeded")]
    assert stages[0].progress_current == 1
    assert stages[0].message == "half way"
    assert all(s.finished_at is not None and s.finished_at >= s.started_at for s in stages)


async def test_failures_back_off_then_go_dead_after_the_last_attempt(
    committed_database: Database, temporary_tasks: list[str]
) -> None:
    calls: list[int] = []

    @register(temporary_tasks, "test.flaky", max_attempts=3, retry=RetryPolicy(schedule=(10, 60)))
    async def flaky(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        raise ConnectionError("registry unreachable")

    job_id = await add_job(committed_database, "test.flaky")
    clock = ManualClock()  # starts now, after the job was queued
    worker = Worker(committed_database, clock=clock)
    assert await worker.drain() == 1
    assert (await job_row(committed_database, job_id)).status == "queued"
    assert await worker.drain() == 0, "the retry is not due yet"
    clock.advance(10)
    assert await worker.drain() == 1
    clock.advance(59)
    assert await worker.drain() == 0
    clock.advance(1)
    assert await worker.drain() == 1
    job = await job_row(committed_database, job_id)
    assert calls == [1, 2, 3]
    assert job.status == "dead"
    assert "registry unreachable" in (job.last_error or "")


async def test_a_permanent_error_fails_the_job_without_retrying(
    committed_database: Database, temporary_tasks: list[str]
) -> None:
    @register(temporary_tasks, "test.refused")
    async def refused(ctx: JobContext) -> None:
        raise PermanentError("the manifest is not valid TOML")

    job_id = await add_job(committed_database, "test.refused")
    await Worker(committed_database).drain()
    job = await job_row(committed_database, job_id)
    assert (job.status, job.attempts) == ("failed", 1)


async def test_a_cancelled_queued_job_never_starts(
    committed_database: Database, temporary_tasks: list[str]
) -> None:
    started: list[str] = []

    @register(temporary_tasks, "test.never")
    async def never(ctx: JobContext) -> None:
        started.append(ctx.id)

    job_id = await add_job(committed_database, "test.never")
    async with committed_database.transaction() as session:
        assert await request_cancel(session, job_id) == "cancelled"
    assert await Worker(committed_database).drain() == 0
    assert started == []


async def test_a_running_job_stops_at_its_next_checkpoint_when_cancelled(
    committed_database: Database, temporary_tasks: list[str]
) -> None:
    reached = asyncio.Event()
    steps: list[int] = []

    @register(temporary_tasks, "test.long")
    async def long(ctx: JobContext) -> None:
        for step in range(200):
            ctx.checkpoint()
            steps.append(step)
            reached.set()
            await asyncio.sleep(0.02)

    settings = JobSettings(lease_seconds=0.6, poll_seconds=0.05)
    worker = Worker(committed_database, settings, kinds=["test.long"])
    job_id = await add_job(committed_database, "test.long")
    runner = asyncio.create_task(worker.run())
    await asyncio.wait_for(reached.wait(), 10)
    async with committed_database.transaction() as session:
        assert await request_cancel(session, job_id) == "running"
    for _ in range(200):
        if (await job_row(committed_database, job_id)).status == "cancelled":
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await runner
    assert (await job_row(committed_database, job_id)).status == "cancelled"
    assert len(steps) < 200


async def test_a_late_word_from_a_worker_that_lost_its_claim_is_refused(
    committed_database: Database,
) -> None:
    job_id = await add_job(committed_database, "test.fenced", max_attempts=3)
    clock = ManualClock()
    store = JobStore(committed_database, clock)
    (first,) = await store.claim(worker_id="a", kinds=["test.fenced"], limit=1, lease_seconds=30)
    clock.advance(31)
    assert await store.reap() == 1
    (second,) = await store.claim(worker_id="b", kinds=["test.fenced"], limit=1, lease_seconds=30)
    assert second.fence > first.fence
    assert second.attempts == 2
    stale = [(job_id, first.fence)]
    assert await store.heartbeat(worker_id="a", held=stale, lease_seconds=30, running=1) == {}
    assert await store.complete(stale) == set()
    assert await store.complete([(job_id, second.fence)]) == {job_id}
    assert await store.complete([(job_id, second.fence)]) == set(), "ends exactly once"
    assert (await job_row(committed_database, job_id)).status == "succeeded"


async def test_a_lease_lost_on_the_last_attempt_buries_the_job(
    committed_database: Database,
) -> None:
    job_id = await add_job(committed_database, "test.lost", max_attempts=1)
    clock = ManualClock()
    store = JobStore(committed_database, clock)
    await store.claim(worker_id="a", kinds=["test.lost"], limit=1, lease_seconds=5)
    clock.advance(6)
    await store.reap()
    job = await job_row(committed_database, job_id)
    assert job.status == "dead"
    assert "lease expired" in (job.last_error or "")


async def test_a_kind_limit_holds_across_workers(
    committed_database: Database, temporary_tasks: list[str]
) -> None:
    running = 0
    most = 0

    @register(temporary_tasks, "test.capped", concurrency=2)
    async def capped(ctx: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1

    async with committed_database.transaction() as session:
        await enqueue_many(session, "test.capped", [{} for _ in range(8)])
    settings = JobSettings(concurrency=4, poll_seconds=0.05)
    workers = [Worker(committed_database, settings, kinds=["test.capped"]) for _ in range(3)]
    runners = [asyncio.create_task(worker.run()) for worker in workers]
    for _ in range(200):
        async with committed_database.transaction() as session:
            left = await session.scalar(
                select(func.count()).select_from(Job).where(Job.status != "succeeded")
            )
        if left == 0:
            break
        await asyncio.sleep(0.05)
    for worker in workers:
        worker.stop()
    await asyncio.gather(*runners)
    assert left == 0
    assert most == 2


async def test_a_stopping_worker_hands_back_what_it_could_not_finish(
    committed_database: Database, temporary_tasks: list[str]
) -> None:
    started = asyncio.Event()

    @register(temporary_tasks, "test.stuck")
    async def stuck(ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(60)

    settings = JobSettings(shutdown_grace_seconds=0.1, poll_seconds=0.05)
    worker = Worker(committed_database, settings, kinds=["test.stuck"])
    job_id = await add_job(committed_database, "test.stuck")
    runner = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    worker.stop()
    await runner
    job = await job_row(committed_database, job_id)
    assert (job.status, job.attempts, job.worker_id) == ("queued", 0, None)


async def test_an_idle_worker_starts_new_work_without_waiting_for_its_poll(
    committed_database: Database, committed_url: str, temporary_tasks: list[str]
) -> None:
    from forgeyard.jobs.notify import wakeups

    done = asyncio.Event()

    @register(temporary_tasks, "test.prompt")
    async def prompt(ctx: JobContext) -> None:
        done.set()

    await wakeups.start(committed_url)
    worker = Worker(committed_database, JobSettings(poll_seconds=30), kinds=["test.prompt"])
    runner = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.3)  # the worker has looked once and is waiting
        await add_job(committed_database, "test.prompt")
        await asyncio.wait_for(done.wait(), 5)  # long before the 30 s poll
    finally:
        worker.stop()
        await runner
        await wakeups.stop()


async def test_bad_options_are_refused(committed_database: Database) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        await add_job(committed_database, "test.bad", max_attempts=-1)
    with pytest.raises(ValueError, match="max_attempts"):
        task("test.bad", max_attempts=0)


@pytest.mark.parametrize("way_back", ["retry", "lost lease", "handed back"])
async def test_a_job_cancelled_while_running_never_goes_back_to_the_queue(
    committed_database: Database, way_back: str
) -> None:
    job_id = await add_job(committed_database, "test.cancel_then_retry")
    clock = ManualClock()
    store = JobStore(committed_database, clock)
    (claimed,) = await store.claim(
        worker_id="a", kinds=["test.cancel_then_retry"], limit=1, lease_seconds=30
    )
    async with committed_database.transaction() as session:
        assert await request_cancel(session, job_id) == "running"
    if way_back == "retry":
        await store.end(job_id, claimed.fence, JobStatus.QUEUED, error="flaky")
    elif way_back == "lost lease":
        clock.advance(31)
        await store.reap()
    else:
        await store.release([(job_id, claimed.fence)])
    await store.close()
    job = await job_row(committed_database, job_id)
    assert job.status == "cancelled"
    assert job.finished_at is not None
