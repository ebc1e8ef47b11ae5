"""``forgeyard worker``: job workers without the API, on as many machines as you like."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from forgeyard.api.job_handlers import load_tasks
from forgeyard.jobs.pool import WorkerPool
from forgeyard.kernel.db import Database
from forgeyard.kernel.logging import configure_logging, get_logger
from forgeyard.settings import Settings

log = get_logger("forgeyard.cli")


def worker(
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Workers in this process (default from FORGEYARD_JOBS__WORKERS)."),
    ] = None,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule/--no-schedule",
            help="Also enqueue periodic jobs (safe on every replica: each slot runs once).",
        ),
    ] = True,
) -> None:
    """Run job workers until stopped (SIGTERM or Ctrl-C hands unfinished jobs back)."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    load_tasks()
    count = workers or settings.jobs.workers or 1
    asyncio.run(_run(settings, count, schedule))


async def _run(settings: Settings, count: int, schedule: bool) -> None:
    url = settings.resolved_database_url
    database = Database.from_url(url, settings.db)
    pool = WorkerPool(
        database, url, settings.jobs, count=count, redis_url=settings.redis_url, schedule=schedule
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await pool.start()
    log.info("workers_running", workers=count)
    try:
        await stop.wait()
    finally:
        await pool.stop()
        await database.dispose()
