"""Wake-ups: "there is new work" and "job X changed", across processes.

Waiters in this process sleep on asyncio events keyed by topic (``jobs`` for new work,
``job:<id>`` for one job's progress). Other processes reach them through PostgreSQL
LISTEN/NOTIFY when the database is PostgreSQL (a NOTIFY sent inside a transaction arrives
only if it commits), or through Redis pub/sub when the database is SQLite and Redis is
configured. A wake-up is only a hint to look again: nothing is lost when one goes missing,
because every waiter also looks on its own every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.kernel.logging import get_logger

CHANNEL = "forgeyard"
NEW_WORK = "jobs"
log = get_logger(__name__)


def job_topic(job_id: str) -> str:
    return f"job:{job_id}"


class Wakeups:
    """One per process; :data:`wakeups` is it."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._redis: Any = None
        self._users = 0

    @contextlib.contextmanager
    def watch(self, topic: str) -> Any:
        """An event set whenever ``topic`` is fired; clear it before each wait."""
        flag = asyncio.Event()
        self._waiters[topic].add(flag)
        try:
            yield flag
        finally:
            self._waiters[topic].discard(flag)
            if not self._waiters[topic]:
                del self._waiters[topic]

    def fire_local(self, topics: Iterable[str]) -> None:
        for topic in topics:
            for flag in self._waiters.get(topic, ()):
                flag.set()

    async def publish(self, topics: list[str]) -> None:
        """Tell every process, after a commit the database could not carry a NOTIFY for."""
        self.fire_local(topics)
        if self._redis is not None:
            try:
                await self._redis.publish(CHANNEL, "\n".join(topics))
            except Exception as error:  # a lost hint costs a poll interval, not a job
                log.warning("wakeup_publish_failed", error=str(error))

    async def start(self, database_url: str, redis_url: str | None = None) -> None:
        """Begin listening to other processes (once per process, however many callers).

        The listener keeps connections of its own, so it outlives whichever caller started
        it; it stops when the last caller has called :meth:`stop`.
        """
        self._users += 1
        if self._listener is not None:
            return
        if make_url(database_url).get_backend_name() == "postgresql":
            self._listener = asyncio.create_task(self._listen_postgres(database_url))
        elif redis_url is not None:
            from redis.asyncio import Redis  # only with the redis extra

            self._redis = Redis.from_url(redis_url)
            self._listener = asyncio.create_task(self._listen_redis(self._redis))

    async def stop(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users or self._listener is None:
            return
        self._listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._listener
        self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _listen_postgres(self, database_url: str) -> None:
        import psycopg  # only with the postgres extra

        url = make_url(database_url).set(drivername="postgresql").render_as_string(False)

        async def listen() -> None:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
                await connection.execute(f"LISTEN {CHANNEL}")
                async for note in connection.notifies():
                    self.fire_local(note.payload.split("\n"))

        await _keep_listening(listen)

    async def _listen_redis(self, redis: Any) -> None:
        async def listen() -> None:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    data = message["data"]
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    self.fire_local(text.split("\n"))

        await _keep_listening(listen)


async def _keep_listening(listen: Callable[[], Awaitable[None]]) -> None:
    """Run ``listen`` again whenever its connection fails, backing off up to 5 s.

    Until it is back, waiters still look on their own every poll interval.
    """
    delay = 0.1
    while True:
        try:
            await listen()
            delay = 0.1
        except Exception as error:
            log.warning("wakeup_listener_lost", error=str(error), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


wakeups = Wakeups()


async def notify_on_commit(session: AsyncSession, topics: list[str]) -> None:
    """Wake the topics' waiters once ``session`` commits, in every process."""
    if session.bind is not None and session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANNEL, "\n".join(topics))))
        return
    pending: set[str] = session.info.setdefault("forgeyard_wakeups", set())
    if not pending:
        event.listen(session.sync_session, "after_commit", _publish_pending, once=True)
    pending.update(topics)


def _publish_pending(sync_session: Any) -> None:
    topics = sorted(sync_session.info.pop("forgeyard_wakeups", set()))
    if topics:
        task = asyncio.get_running_loop().create_task(wakeups.publish(topics))
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()
