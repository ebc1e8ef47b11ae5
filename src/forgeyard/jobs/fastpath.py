"""The two statements a busy worker runs most, claim and complete, on the bare drivers.

Through SQLAlchemy's async layer each statement costs several thread or greenlet hand-offs
plus pool bookkeeping, which at thousands of jobs a second is most of the time spent. Each
worker therefore keeps one driver connection of its own: psycopg's async connection on
PostgreSQL, and on SQLite a stdlib connection living in one thread of its own, so a claim or
a completion is a single hand-off. Both statements are single atomic UPDATEs in autocommit
mode; everything else the engine does goes through SQLAlchemy (``store.py``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.engine import URL

from forgeyard.jobs.notify import job_topic, wakeups

ClaimRow = tuple[str, str, str | None, Any, int, int, int]

_PG_CLAIM = """
UPDATE jobs SET status = 'running', attempts = attempts + 1, fence = fence + 1,
    worker_id = %(worker)s, lease_expires_at = %(lease)s, started_at = %(now)s,
    version = version + 1
WHERE id IN (
    SELECT id FROM jobs
    WHERE status = 'queued' AND run_at <= %(now)s AND kind = ANY(%(kinds)s)
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, kind, organization_id, payload, attempts, max_attempts, fence
"""

# Finishes the batch and, in the same round trip, wakes whoever follows those jobs (the
# channel is jobs.notify.CHANNEL).
_PG_COMPLETE = """
WITH done AS (
    UPDATE jobs SET status = 'succeeded', finished_at = %(now)s, lease_expires_at = NULL,
        version = version + 1
    FROM unnest(%(ids)s::text[], %(fences)s::integer[]) AS held(id, fence)
    WHERE jobs.id = held.id AND jobs.fence = held.fence AND jobs.status = 'running'
    RETURNING jobs.id)
SELECT array_agg(id), pg_notify('forgeyard', string_agg('job:' || id, E'\\n'))
FROM done HAVING count(*) > 0
"""

_SQLITE_CLAIM = """
UPDATE jobs SET status = 'running', attempts = attempts + 1, fence = fence + 1,
    worker_id = ?, lease_expires_at = ?, started_at = ?, version = version + 1
WHERE id IN (
    SELECT id FROM jobs
    WHERE status = 'queued' AND run_at <= ? AND kind IN ({kinds})
    ORDER BY priority DESC, run_at, id
    LIMIT ?)
RETURNING id, kind, organization_id, payload, attempts, max_attempts, fence
"""

_SQLITE_COMPLETE = """
UPDATE jobs SET status = 'succeeded', finished_at = ?, lease_expires_at = NULL,
    version = version + 1
WHERE status = 'running' AND (id, fence) IN (VALUES {pairs})
RETURNING id
"""


class FastPath(Protocol):
    async def claim(
        self, worker: str, kinds: Sequence[str], limit: int, now: datetime, lease: datetime
    ) -> list[ClaimRow]: ...

    async def complete(self, held: Sequence[tuple[str, int]], now: datetime) -> set[str]: ...

    async def close(self) -> None: ...


def open_fast_path(url: URL, busy_timeout_ms: int) -> FastPath:
    if url.get_backend_name() == "postgresql":
        return PostgresFastPath(url.set(drivername="postgresql").render_as_string(False))
    return SqliteFastPath(url.database or ":memory:", busy_timeout_ms)


class PostgresFastPath:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: Any = None

    async def _connect(self) -> Any:
        if self._connection is None or self._connection.closed:
            import psycopg  # only with the postgres extra

            self._connection = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        return self._connection

    async def claim(
        self, worker: str, kinds: Sequence[str], limit: int, now: datetime, lease: datetime
    ) -> list[ClaimRow]:
        connection = await self._connect()
        params = {"worker": worker, "lease": lease, "now": now, "kinds": list(kinds)}
        cursor = await connection.execute(_PG_CLAIM, params | {"limit": limit})
        return [tuple(row) for row in await cursor.fetchall()]

    async def complete(self, held: Sequence[tuple[str, int]], now: datetime) -> set[str]:
        connection = await self._connect()
        ids = [job_id for job_id, _ in held]
        fences = [fence for _, fence in held]
        cursor = await connection.execute(_PG_COMPLETE, {"now": now, "ids": ids, "fences": fences})
        row = await cursor.fetchone()
        return set(row[0]) if row else set()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def sqlite_timestamp(value: datetime) -> str:
    """The text SQLAlchemy stores for a timestamp on SQLite, so both compare alike."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteFastPath:
    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout = busy_timeout_ms / 1000
        # One thread owns the connection; every call is a single hand-off to it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgeyard-claims")
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(
                self._path, timeout=self._busy_timeout, isolation_level=None
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._connection = connection
        return self._connection

    async def _run(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    async def claim(
        self, worker: str, kinds: Sequence[str], limit: int, now: datetime, lease: datetime
    ) -> list[ClaimRow]:
        sql = _SQLITE_CLAIM.format(kinds=", ".join("?" * len(kinds)))
        stamp = sqlite_timestamp(now)
        params = [worker, sqlite_timestamp(lease), stamp, stamp, *kinds, limit]
        rows = await self._run(self._fetch, sql, params)
        return [(*row[:3], json.loads(row[3]), *row[4:]) for row in rows]

    async def complete(self, held: Sequence[tuple[str, int]], now: datetime) -> set[str]:
        sql = _SQLITE_COMPLETE.format(pairs=", ".join("(?, ?)" for _ in held))
        params: list[Any] = [sqlite_timestamp(now)]
        for job_id, fence in held:
            params += [job_id, fence]
        accepted = {row[0] for row in await self._run(self._fetch, sql, params)}
        # SQLite cannot carry a NOTIFY: tell followers here and through Redis.
        await wakeups.publish([job_topic(job_id) for job_id in accepted])
        return accepted

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._connect().execute(sql, params).fetchall()

    async def close(self) -> None:
        if self._connection is not None:
            await self._run(self._connection.close)
            self._connection = None
        self._thread.shutdown(wait=False)
