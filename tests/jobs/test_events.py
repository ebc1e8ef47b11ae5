"""Domain events: written with the change, delivered after commit to every subscriber."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from forgeyard.jobs import JobContext, emit, subscriber
from forgeyard.jobs.clock import ManualClock
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database

ROOT = Path(__file__).resolve().parents[2]
EMIT_THEN_DIE = """
import asyncio, os, signal, sys
from forgeyard.jobs import emit
from forgeyard.kernel.db import Database

async def main():
    database = Database.from_url(sys.argv[1])
    async with database.transaction() as session:
        for number in range(5):
            await emit(session, "pr.created", {"number": number}, organization_id=None)
    os.kill(os.getpid(), signal.SIGKILL)  # committed, and nobody dispatched anything

asyncio.run(main())
"""


async def run_all(worker: Worker, clock: ManualClock | None = None) -> None:
    """Drain until nothing is due, stepping the clock past retry delays."""
    for _ in range(20):
        ran = await worker.drain()
        if clock is not None:
            clock.advance(3600)
        elif not ran:
            return


@pytest.fixture
def inboxes(temporary_tasks: list[str]) -> dict[str, list[dict[str, Any]]]:
    boxes: dict[str, list[dict[str, Any]]] = {"audit": [], "flaky": []}
    failures = Counter[str]()

    @subscriber("audit", events=["*"])
    async def audit(ctx: JobContext, message: dict[str, Any]) -> None:
        boxes["audit"].append(message)

    @subscriber("flaky", events=["pr.created"])
    async def flaky(ctx: JobContext, message: dict[str, Any]) -> None:
        failures[message["id"]] += 1
        if failures[message["id"]] == 1:
            raise ConnectionError("the receiving side is down")
        boxes["flaky"].append(message)

    temporary_tasks.extend(["audit", "flaky"])
    return boxes


async def test_events_committed_before_a_crash_are_all_delivered_after_restart(
    committed_database: Database, committed_url: str, inboxes: dict[str, list[dict[str, Any]]]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        EMIT_THEN_DIE,
        committed_url,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert await process.wait() == -9
    clock = ManualClock()
    await run_all(Worker(committed_database, clock=clock), clock)
    assert sorted(m["data"]["number"] for m in inboxes["audit"]) == [0, 1, 2, 3, 4]
    assert sorted(m["data"]["number"] for m in inboxes["flaky"]) == [0, 1, 2, 3, 4]
    assert {m["type"] for m in inboxes["audit"]} == {"pr.created"}


async def test_a_failing_subscriber_is_retried_without_holding_up_the_others(
    committed_database: Database, inboxes: dict[str, list[dict[str, Any]]]
) -> None:
    async with committed_database.transaction() as session:
        await emit(session, "pr.created", {"number": 7}, organization_id=None)
        await emit(session, "build.finished", {"build": 1}, organization_id=None)
    clock = ManualClock()
    worker = Worker(committed_database, clock=clock)
    await worker.drain()
    assert len(inboxes["audit"]) == 2, "the healthy subscriber got both at once"
    assert inboxes["flaky"] == [], "the flaky one failed its first try"
    await run_all(worker, clock)
    assert [m["data"] for m in inboxes["flaky"]] == [{"number": 7}], "only what it subscribed to"
    assert len(inboxes["audit"]) == 2, "retrying one subscriber does not repeat the others"


async def test_an_event_of_a_rolled_back_change_reaches_nobody(
    committed_database: Database, inboxes: dict[str, list[dict[str, Any]]]
) -> None:
    async def change_that_fails() -> None:
        async with committed_database.transaction() as session:
            await emit(session, "pr.created", {"number": 1}, organization_id=None)
            raise RuntimeError("the pull request could not be opened")

    with pytest.raises(RuntimeError):
        await change_that_fails()
    await run_all(Worker(committed_database))
    assert inboxes == {"audit": [], "flaky": []}


async def test_an_announced_job_tells_subscribers_how_it_ended(
    committed_database: Database, temporary_tasks: list[str]
) -> None:
    from forgeyard.jobs import PermanentError, enqueue, task

    heard: list[dict[str, Any]] = []

    @subscriber("listener", events=["job.completed", "job.failed"])
    async def listener(ctx: JobContext, message: dict[str, Any]) -> None:
        heard.append(message)

    @task("test.announced.ok", announce=True)
    async def ok(ctx: JobContext) -> None:
        return None

    @task("test.announced.bad", announce=True)
    async def bad(ctx: JobContext) -> None:
        raise PermanentError("the lock file does not parse")

    temporary_tasks.extend(["listener", "test.announced.ok", "test.announced.bad"])
    async with committed_database.transaction() as session:
        good_job = (await enqueue(session, "test.announced.ok")).id
        bad_job = (await enqueue(session, "test.announced.bad")).id
    await run_all(Worker(committed_database))
    by_type = {m["type"]: m["data"] for m in heard}
    assert by_type["job.completed"] == {
        "job_id": good_job,
        "kind": "test.announced.ok",
        "status": "succeeded",
    }
    assert by_type["job.failed"]["job_id"] == bad_job
    assert "does not parse" in by_type["job.failed"]["error"]
