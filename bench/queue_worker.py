"""Each engine as the queue benchmark uses it: the worker process, and the client that fills it.

``python -m bench.queue_worker`` runs one engine's workers on a database the benchmark
prepared, with a no-op handler that notes the wall-clock time (``time.time()``) of the first
job it starts and, for jobs whose payload carries their enqueue time ``t``, how long they
waited. It reports as JSON lines appended to ``--report``: ``{"first_start": t}`` when the
first job starts, and ``{"latencies_s": [...]}`` once SIGTERM or SIGINT has stopped it.

The measuring process (``bench.queue``) enqueues and watches through :class:`Queue`; this
module defines the tasks for both processes, so they agree on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench.model import BenchError
from forgeyard.jobs import JobContext, task
from forgeyard.jobs.notify import wakeups
from forgeyard.jobs.queue import enqueue, enqueue_many
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.kernel.logging import configure_logging
from forgeyard.settings import JobSettings

KIND = "bench.noop"  # forgeyard's task kind
PROCRASTINATE_TASK = "noop"
URL_VARIABLE = "BENCH_QUEUE_DATABASE_URL"  # how bench.queue hands the worker its database


class Recorder:
    """What the handlers saw, written where the benchmark reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.first_start: float | None = None
        self.latencies_s: list[float] = []

    def job_started(self, enqueued_at: float | None) -> None:
        now = time.time()
        if self.first_start is None:
            self.first_start = now
            self._write({"first_start": now})
        if enqueued_at is not None:
            self.latencies_s.append(now - enqueued_at)

    def finish(self) -> None:
        self._write({"latencies_s": self.latencies_s})

    def _write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as report:
            report.write(json.dumps(record) + "\n")


_recorder: Recorder | None = None


@task(KIND)
async def forgeyard_noop(ctx: JobContext) -> None:
    if _recorder is not None:
        _recorder.job_started(ctx.payload.get("t"))


def procrastinate_app(conninfo: str, pool_size: int | None = None) -> tuple[Any, Any]:
    """procrastinate's app on ``conninfo`` and its no-op task (the pool as big as asked)."""
    try:
        from procrastinate import App, PsycopgConnector
    except ImportError as error:  # a venv from before the dev extra listed it
        raise BenchError("procrastinate is not installed; `make dev` installs it") from error

    pool = {} if pool_size is None else {"min_size": pool_size, "max_size": pool_size}
    app = App(connector=PsycopgConnector(conninfo=conninfo, **pool))

    @app.task(name=PROCRASTINATE_TASK)
    async def noop(t: float | None = None) -> None:
        if _recorder is not None:
            _recorder.job_started(t)

    return app, noop


class Queue:
    """One configuration's database, as the measuring process sees it."""

    table = "jobs"
    unfinished_sql = (
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'queued')"
        " OR EXISTS (SELECT 1 FROM jobs WHERE status = 'running')"
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = make_url(url).get_backend_name() == "postgresql"
        self._admin: Any = None

    async def open(self) -> None:
        await self._prepare()
        if self.postgres:
            import psycopg

            self._admin = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        else:
            self._admin = sqlite3.connect(make_url(self.url).database or "", isolation_level=None)

    async def sql(self, statement: str) -> Any:
        if not self.postgres:
            return self._admin.execute(statement).fetchone()
        cursor = await self._admin.execute(statement)
        return await cursor.fetchone() if cursor.description else None

    async def reset(self) -> None:
        await self.sql(f"TRUNCATE {self.table} CASCADE" if self.postgres else "DELETE FROM jobs")

    async def vacuum(self) -> None:
        if self.postgres:
            await self.sql(f"VACUUM ANALYZE {self.table}")

    async def unfinished(self) -> bool:
        return bool((await self.sql(self.unfinished_sql))[0])

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close() if self.postgres else self._admin.close()

    async def _prepare(self) -> None:
        raise NotImplementedError

    async def load(self, count: int) -> None:
        raise NotImplementedError

    async def enqueue(self, enqueued_at: float | None) -> None:
        raise NotImplementedError


class ForgeyardQueue(Queue):
    async def _prepare(self) -> None:
        from forgeyard.kernel.migrations import upgrade  # Alembic: not for the worker process

        await asyncio.to_thread(upgrade, self.url)
        self.database = Database.from_url(self.url)

    async def load(self, count: int) -> None:
        async with self.database.transaction() as session:
            await enqueue_many(session, KIND, [{} for _ in range(count)])

    async def enqueue(self, enqueued_at: float | None) -> None:
        payload = {} if enqueued_at is None else {"t": enqueued_at}
        async with self.database.transaction() as session:
            await enqueue(session, KIND, payload=payload)

    async def close(self) -> None:
        await super().close()
        await self.database.dispose()


class ProcrastinateQueue(Queue):
    table = "procrastinate_jobs"
    unfinished_sql = (
        "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))"
    )

    async def _prepare(self) -> None:
        self.app, self.task = procrastinate_app(self.url)
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()

    async def load(self, count: int) -> None:
        for start in range(0, count, 5_000):
            await self.task.batch_defer_async(*({} for _ in range(min(5_000, count - start))))

    async def enqueue(self, enqueued_at: float | None) -> None:
        await (
            self.task.defer_async() if enqueued_at is None else self.task.defer_async(t=enqueued_at)
        )

    async def close(self) -> None:
        await super().close()
        await self.app.close_async()


async def run_forgeyard(args: argparse.Namespace) -> None:
    configure_logging("json", "info")  # as `forgeyard worker` does, into the log file
    database = Database.from_url(args.url)
    settings = JobSettings(
        concurrency=args.concurrency, claim_batch=args.claim_batch, poll_seconds=args.poll_seconds
    )
    workers = [Worker(database, settings, kinds=[KIND]) for _ in range(args.workers)]
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: [worker.stop() for worker in workers])
    await wakeups.start(args.url)  # LISTEN on PostgreSQL; nothing on SQLite without Redis
    try:
        await asyncio.gather(*(worker.run() for worker in workers))
    finally:
        await wakeups.stop()
        await database.dispose()


async def run_procrastinate(args: argparse.Namespace) -> None:
    # One connection per job slot, plus the LISTEN connection and one to spare, so the
    # worker never waits for its own pool.
    app, _noop = procrastinate_app(args.url, pool_size=args.workers + 2)
    async with app.open_async():
        await app.run_worker_async(
            concurrency=args.workers,
            wait=True,
            listen_notify=True,
            install_signal_handlers=True,  # SIGTERM and SIGINT stop it gracefully
            fetch_job_polling_interval=args.poll_seconds,
            name="bench",
        )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_worker")
    parser.add_argument("--engine", choices=["forgeyard", "procrastinate"], required=True)
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_VARIABLE),
        help=f"the database, migrated by the caller (default: ${URL_VARIABLE})",
    )
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=1, help="forgeyard: jobs per worker")
    parser.add_argument("--claim-batch", type=int, default=1, help="forgeyard: jobs per claim")
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    if not args.url:
        parser.error(f"--url or {URL_VARIABLE} is required")
    return args


def main(argv: list[str] | None = None) -> int:
    global _recorder
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _recorder = Recorder(args.report)
    runner = run_forgeyard if args.engine == "forgeyard" else run_procrastinate
    try:
        asyncio.run(runner(args))
    finally:
        _recorder.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
