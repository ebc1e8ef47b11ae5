"""A worker process for the crash tests: ``python -m tests.jobs.worker_process DATABASE_URL``.

Its handler announces each job it starts on stdout, so the test knows when to kill it.
"""

from __future__ import annotations

import asyncio
import random
import sys

from forgeyard.jobs import JobContext, task
from forgeyard.jobs.notify import wakeups
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.settings import JobSettings

LEASE_SECONDS = 1.0


@task("test.crashy", max_attempts=5)
async def crashy(ctx: JobContext) -> None:
    print(f"started {ctx.id}", flush=True)
    await ctx.stage("work")
    await asyncio.sleep(random.uniform(0, 0.05))


async def main(url: str) -> None:
    database = Database.from_url(url)
    await wakeups.start(url)
    settings = JobSettings(concurrency=4, lease_seconds=LEASE_SECONDS, poll_seconds=0.05)
    await Worker(database, settings, kinds=["test.crashy"]).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
