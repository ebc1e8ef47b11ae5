"""Workers in one process: the ones ``forgeyard serve`` runs beside the API, or
``forgeyard worker`` runs alone. Also starts the wake-up listener and the scheduler."""

from __future__ import annotations

import asyncio

from forgeyard.jobs.notify import wakeups
from forgeyard.jobs.scheduler import Scheduler
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.settings import JobSettings


class WorkerPool:
    def __init__(
        self,
        database: Database,
        database_url: str,
        settings: JobSettings,
        *,
        count: int,
        redis_url: str | None = None,
        schedule: bool = True,
    ) -> None:
        self.database = database
        self.database_url = database_url
        self.redis_url = redis_url
        self.workers = [Worker(database, settings) for _ in range(count)]
        self.scheduler = Scheduler(database) if schedule else None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not all(task.done() for task in self._tasks)

    async def start(self) -> None:
        await wakeups.start(self.database_url, self.redis_url)
        self._tasks = [asyncio.create_task(worker.run()) for worker in self.workers]
        if self.scheduler is not None:
            self._tasks.append(asyncio.create_task(self.scheduler.run(self._stop)))

    async def stop(self) -> None:
        self._stop.set()
        for worker in self.workers:
            worker.stop()
        # Every worker gets to stop, whatever another one raised.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await wakeups.stop()
