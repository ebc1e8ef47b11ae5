"""The worker loop: claim what fits, run handlers concurrently, report back in batches.

One worker runs up to ``concurrency`` handlers as asyncio tasks. It claims as many jobs as it
has free slots (up to ``claim_batch`` per round trip), so a claimed job always starts at once;
finished jobs are marked succeeded in batches by one completer, so a busy worker spends two
round trips per batch, not two per job. A heartbeat extends the leases of everything it holds
and brings back cancellation requests; a reaper returns the jobs of workers that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from forgeyard.jobs import events
from forgeyard.jobs.clock import Clock
from forgeyard.jobs.context import Cancelled, JobContext, LeaseLost, PermanentError, RetryLater
from forgeyard.jobs.notify import NEW_WORK, wakeups
from forgeyard.jobs.registry import TaskSpec, get_task, registered_tasks
from forgeyard.jobs.store import ClaimedJob, JobStore
from forgeyard.kernel.db import Database
from forgeyard.kernel.ids import new_id
from forgeyard.kernel.logging import get_logger
from forgeyard.kernel.metrics import JOB_RUN_SECONDS, JOBS_FINISHED
from forgeyard.models.job import JobStatus, StageStatus
from forgeyard.settings import JobSettings

log = get_logger(__name__)
MAX_ERROR_LENGTH = 2000


@dataclass
class _Running:
    context: JobContext
    task: asyncio.Task[None] | None = None


@dataclass
class Worker:
    database: Database
    settings: JobSettings = field(default_factory=JobSettings)
    clock: Clock = field(default_factory=Clock)
    kinds: list[str] | None = None  # None: every registered kind
    id: str = field(default_factory=lambda: new_id("wrk"))

    def __post_init__(self) -> None:
        self.store = JobStore(self.database, self.clock)
        self._running: dict[str, _Running] = {}
        self._done: list[tuple[str, int]] = []  # succeeded, not yet reported
        self._activity = asyncio.Event()  # a slot was freed or a job finished
        self._stopping = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Work until :meth:`stop` is called, then hand back what could not finish."""
        specs = self._specs()
        await self.store.register_worker(
            worker_id=self.id, kinds=sorted(specs), concurrency=self.settings.concurrency
        )
        log.info("worker_started", worker_id=self.id, kinds=len(specs))
        background = [
            asyncio.create_task(self._heartbeat_forever()),
            asyncio.create_task(self._reap_forever()),
        ]
        try:
            await self._exchange_forever(specs)
        finally:
            await self._shut_down(background)

    def stop(self) -> None:
        self._stopping.set()

    async def _shut_down(self, background: list[asyncio.Task[None]]) -> None:
        """Wait a little, hand back the rest, report what finished; each step on its own, so
        one failing (the database is gone) does not skip the others."""
        released = 0
        try:
            pending = [entry.task for entry in self._running.values() if entry.task]
            if pending:
                await asyncio.wait(pending, timeout=self.settings.shutdown_grace_seconds)
            unfinished = [
                (job_id, entry.context.job.fence) for job_id, entry in self._running.items()
            ]
            for entry in list(self._running.values()):
                if entry.task:
                    entry.task.cancel()
            released = await self.store.release(unfinished)
            for _ in range(3):
                if not self._done:
                    break
                await self._exchange([], [], 0)
        except Exception as error:
            log.warning("worker_stop_incomplete", worker_id=self.id, error=str(error))
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(Exception):
                await self.store.remove_worker(self.id)
            await self.store.close()
        log.info("worker_stopped", worker_id=self.id, released=released)

    def _specs(self) -> dict[str, TaskSpec]:
        tasks = registered_tasks()
        if self.kinds is None:
            return tasks
        return {kind: spec for kind, spec in tasks.items() if kind in self.kinds}

    # -- claiming and reporting back ------------------------------------------------------

    async def _exchange_forever(self, specs: dict[str, TaskSpec]) -> None:
        """Report finished jobs and claim new ones, together whenever both are due.

        ``hungry`` means the queue may hold work for us: it turns false when a claim comes
        back short, and true again on a wake-up or after the poll interval.
        """
        open_kinds = [kind for kind, spec in specs.items() if spec.concurrency is None]
        capped = [spec for spec in specs.values() if spec.concurrency is not None]
        hungry, look_again_at = True, 0.0
        with wakeups.watch(NEW_WORK) as new_work:
            while not self._stopping.is_set():
                # Cleared before looking, so what happens meanwhile is not missed.
                self._activity.clear()
                if new_work.is_set() or time.monotonic() >= look_again_at:
                    new_work.clear()
                    hungry = True
                free = self.settings.concurrency - len(self._running)
                wanted = min(free, self.settings.claim_batch) if hungry else 0
                if not wanted and not self._done:
                    wait = max(0.0, look_again_at - time.monotonic()) if not hungry else None
                    await self._until(
                        self._activity,
                        new_work,
                        seconds=self._poll_seconds() if wait is None else wait,
                    )
                    continue
                claimed = await self._exchange(open_kinds, capped, wanted)
                if self._stopping.is_set():  # claimed as the stop came: hand them back
                    await self.store.release([(job.id, job.fence) for job in claimed])
                    break
                for job in claimed:
                    self._start(job)
                if len(claimed) < wanted:
                    hungry, look_again_at = False, time.monotonic() + self._poll_seconds()

    async def _exchange(
        self, open_kinds: list[str], capped: list[TaskSpec], wanted: int
    ) -> list[ClaimedJob]:
        held, self._done = self._done, []
        lease = self.settings.lease_seconds
        claimed: list[ClaimedJob] = []
        try:
            accepted, claimed = await self.store.exchange(
                worker_id=self.id, held=held, kinds=open_kinds, limit=wanted, lease_seconds=lease
            )
            reported, held = held, []
            for spec in capped:
                if len(claimed) >= wanted:
                    break
                assert spec.concurrency is not None
                claimed += await self.store.claim_capped(
                    worker_id=self.id,
                    kind=spec.kind,
                    cap=spec.concurrency,
                    limit=wanted - len(claimed),
                    lease_seconds=lease,
                )
        except Exception as error:  # the database went away: keep the worker, try again later
            log.warning("exchange_failed", worker_id=self.id, error=str(error))
            self._done = held + self._done
            await self._until(seconds=self.settings.poll_seconds)
            return claimed
        for job_id, _fence in reported:
            if job_id not in accepted:
                log.warning("completion_refused", job_id=job_id, reason="claimed by another worker")
        return claimed

    def _poll_seconds(self) -> float:
        # Jittered, so the workers of a process do not all look at the same moment.
        return self.settings.poll_seconds * random.uniform(0.5, 1.0)  # noqa: S311

    async def _until(self, *flags: asyncio.Event, seconds: float) -> bool:
        """Wait for a flag, a stop or the timeout; True when a flag or a stop came first."""
        waits = {asyncio.ensure_future(flag.wait()) for flag in (*flags, self._stopping)}
        try:
            done, _ = await asyncio.wait(
                waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiting in waits:
                waiting.cancel()
        return bool(done)

    # -- running ---------------------------------------------------------------------------

    def _start(self, job: ClaimedJob) -> None:
        earlier = self._running.get(job.id)
        if earlier is not None:  # reclaimed while an old attempt still runs here: stop that one
            earlier.context.lease_lost = True
        context = JobContext(job=job, database=self.database, clock=self.clock)
        entry = _Running(context)
        self._running[job.id] = entry
        entry.task = asyncio.create_task(self._run_job(entry))

    async def _run_job(self, entry: _Running) -> None:
        job = entry.context.job
        started = time.perf_counter()
        try:
            outcome = await self.execute(entry.context)
        finally:
            if self._running.get(job.id) is entry:
                del self._running[job.id]
            self._activity.set()
        JOB_RUN_SECONDS.labels(job.kind).observe(time.perf_counter() - started)
        JOBS_FINISHED.labels(job.kind, outcome).inc()

    async def execute(self, context: JobContext) -> str:
        """Run one claimed job's handler and record how it ended; returns the outcome."""
        job = context.job
        spec = get_task(job.kind)
        try:
            if spec is None:
                raise PermanentError(f"no handler is registered for {job.kind!r}")
            await asyncio.wait_for(spec.handler(context), timeout=spec.timeout_seconds)
        except LeaseLost:
            log.warning("job_lease_lost", job_id=job.id, kind=job.kind)
            return "lost"
        except Cancelled:
            await self._close_stage(context, StageStatus.FAILED)
            await self._record(job, self._end(spec, job, JobStatus.CANCELLED, "cancelled"))
            return "cancelled"
        except PermanentError as error:
            await self._close_stage(context, StageStatus.FAILED)
            await self._record(job, self._end(spec, job, JobStatus.FAILED, _describe(error)))
            return "failed"
        except Exception as error:
            await self._close_stage(context, StageStatus.FAILED)
            return await self._retry_or_bury(spec, job, error)
        await self._close_stage(context, StageStatus.SUCCEEDED)
        if spec.announce:
            await self._record(job, self._end(spec, job, JobStatus.SUCCEEDED, None))
        else:
            self._done.append((job.id, job.fence))  # reported with the next exchange
        return "succeeded"

    async def _close_stage(self, context: JobContext, status: StageStatus) -> None:
        try:
            await context.close_stage(status)
        except Exception as error:  # a stage row is a report; the job's own end matters more
            log.warning("stage_close_failed", job_id=context.id, error=str(error))

    async def _record(self, job: ClaimedJob, ending: Callable[[], Awaitable[None]]) -> None:
        """Write how an attempt ended, retrying through short database trouble.

        The job stays among the running ones meanwhile, so its lease is kept alive; if every
        try fails, the lease runs out and the reaper puts the job back.
        """
        for pause in (0.2, 0.5, 1.0, 2.0, 4.0, None):
            try:
                await ending()
                return
            except Exception as error:
                if pause is None:
                    log.error("job_end_not_recorded", job_id=job.id, error=str(error))
                    return
                log.warning("job_end_retry", job_id=job.id, error=str(error))
                await asyncio.sleep(pause)

    async def _retry_or_bury(self, spec: TaskSpec | None, job: ClaimedJob, error: Exception) -> str:
        message = _describe(error)
        if job.attempts >= job.max_attempts:
            await self._record(job, self._end(spec, job, JobStatus.DEAD, message))
            log.warning("job_dead", job_id=job.id, kind=job.kind, error=message)
            return "dead"
        policy = spec.retry if spec else None
        delay = error.delay_seconds if isinstance(error, RetryLater) else None
        if delay is None:
            delay = policy.delay(job.attempts) if policy else 1.0
        retry_at = self.clock.now() + timedelta(seconds=delay)

        async def requeue() -> None:
            await self.store.end(
                job.id, job.fence, JobStatus.QUEUED, error=message, retry_at=retry_at
            )

        await self._record(job, requeue)
        log.info("job_retry", job_id=job.id, kind=job.kind, attempt=job.attempts, delay=delay)
        return "retried"

    def _end(
        self, spec: TaskSpec | None, job: ClaimedJob, status: JobStatus, error: str | None
    ) -> Callable[[], Awaitable[None]]:
        """The write that ends an attempt, to be run (and retried) by :meth:`_record`."""

        async def end() -> None:
            if spec is None or not spec.announce:
                await self.store.end(job.id, job.fence, status, error=error)
            else:
                await self._end_announced(job, status, error)

        return end

    async def _end_announced(self, job: ClaimedJob, status: JobStatus, error: str | None) -> None:
        # The end of an announced job and its event commit together, or not at all.
        async with self.database.transaction() as session:
            statement = self.store.end_statement(
                job.id, job.fence, status, error=error, retry_at=None
            )
            if (await session.execute(statement)).first() is None:
                return
            name = "job.completed" if status == JobStatus.SUCCEEDED else "job.failed"
            data: dict[str, Any] = {"job_id": job.id, "kind": job.kind, "status": status}
            if error:
                data["error"] = error
            await events.emit(session, name, data, organization_id=job.organization_id)

    # -- keeping claims alive -------------------------------------------------------------

    async def _heartbeat_forever(self) -> None:
        interval = min(self.settings.lease_seconds / 3, 2.0)
        while True:
            await asyncio.sleep(interval)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        running = [(job_id, entry.context.job.fence) for job_id, entry in self._running.items()]
        # Finished but not yet reported (the database may be down): keep those claims too.
        held = running + self._done
        try:
            extended = await self.store.heartbeat(
                worker_id=self.id,
                held=held,
                lease_seconds=self.settings.lease_seconds,
                running=len(running),
            )
        except Exception as error:
            log.warning("heartbeat_failed", worker_id=self.id, error=str(error))
            return
        for job_id, fence in running:
            entry = self._running.get(job_id)
            if entry is None or entry.context.job.fence != fence:
                continue
            if job_id not in extended:
                entry.context.lease_lost = True
            elif extended[job_id]:
                entry.context.cancel_requested = True

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 2 * random.uniform(0.5, 1.0))  # noqa: S311
            try:
                reaped = await self.store.reap()
            except Exception as error:
                log.warning("reap_failed", error=str(error))
                continue
            if reaped:
                log.info("jobs_reaped", count=reaped)

    # -- for tests and tools ---------------------------------------------------------------

    async def drain(self) -> int:
        """Run every job that is due now, one batch after another; returns how many ran."""
        specs = self._specs()
        open_kinds = [kind for kind, spec in specs.items() if spec.concurrency is None]
        capped = [spec for spec in specs.values() if spec.concurrency is not None]
        total = 0
        try:
            while True:
                await self.store.reap()
                claimed = await self._exchange(open_kinds, capped, self.settings.claim_batch)
                if not claimed:  # that exchange also reported the last batch
                    return total
                for job in claimed:
                    context = JobContext(job=job, database=self.database, clock=self.clock)
                    await self.execute(context)
                total += len(claimed)
        finally:
            await self.store.close()


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "the handler ran past its time limit"
    text = f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_LENGTH]
