"""Wake-ups cross processes: PostgreSQL NOTIFY on commit, Redis pub/sub beside SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from forgeyard.jobs.notify import Wakeups, notify_on_commit
from forgeyard.kernel.db import Database
from tests.databases import REDIS_URL


@pytest.fixture
async def listener() -> AsyncIterator[Wakeups]:
    """Another process's wake-ups, as far as this one can tell."""
    other = Wakeups()
    yield other
    await other.stop()


async def heard(wakeups: Wakeups, topic: str, action: object) -> bool:
    with wakeups.watch(topic) as flag:
        await asyncio.sleep(0.2)  # the listener is connected and subscribed
        await action  # type: ignore[misc]
        try:
            await asyncio.wait_for(flag.wait(), 5)
        except TimeoutError:
            return False
        return True


async def test_a_notify_reaches_other_processes_only_once_committed(
    backend: str, committed_url: str, committed_database: Database, listener: Wakeups
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite carries no NOTIFY; see the Redis test")
    await listener.start(committed_url)

    async def commit() -> None:
        async with committed_database.transaction() as session:
            await notify_on_commit(session, ["job:job_committed"])

    async def roll_back() -> None:
        async with committed_database.sessionmaker() as session:
            await notify_on_commit(session, ["job:job_rolled_back"])
            await session.rollback()

    assert await heard(listener, "job:job_committed", commit())
    assert not await heard(listener, "job:job_rolled_back", roll_back())


@pytest.mark.skipif(REDIS_URL is None, reason="FORGEYARD_TEST_REDIS_URL is not set")
async def test_beside_sqlite_wake_ups_travel_through_redis(listener: Wakeups) -> None:
    assert REDIS_URL is not None
    sender, receiver = Wakeups(), listener
    try:
        await sender.start("sqlite:///unused.db", REDIS_URL)
        await receiver.start("sqlite:///unused.db", REDIS_URL)
        assert await heard(receiver, "jobs", sender.publish(["jobs"]))
    finally:
        await sender.stop()
