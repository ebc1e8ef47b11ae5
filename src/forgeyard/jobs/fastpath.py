"""The statement a busy worker runs most, complete-and-claim, on the bare drivers.

Through SQLAlchemy's async layer each statement costs several thread or greenlet hand-offs
plus pool bookkeeping, which at thousands of jobs a second is most of the time spent. Each
worker therefore keeps one driver connection of its own: psycopg's async connection on
PostgreSQL, and on SQLite a stdlib connection living in one thread of its own, so a claim or
a completion is a single hand-off. Finishing what a worker completed and claiming what it
has room for travel together, so a busy worker commits once per batch, not twice;
everything else the engine does goes through SQLAlchemy (``store.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.engine import URL

from forgeyard.jobs.notify import job_topic, wakeups

ClaimRow = tuple[str, str, str | None, Any, int, int, int]

# One statement, one commit: finish what the worker completed, wake whoever follows those
# jobs (the channel is jobs.notify.CHANNEL), and claim what it has room for. Data-modifying
# CTEs always run; the SELECT one sending the notification runs because the result uses it.
_PG_EXCHANGE = """
WITH done AS (
    UPDATE jobs SET status = 'succeeded', finished_at = %(now)s, lease_expires_at = NULL,
        version = version + 1
    FROM unnest(%(ids)s::text[], %(fences)s::integer[]) AS held(id, fence)
    WHERE jobs.id = held.id AND jobs.fence = held.fence AND jobs.status = 'running'
    RETURNING jobs.id),
told AS (
    SELECT pg_notify('forgeyard', string_agg('job:' || id, E'\\n')) AS sent
    FROM done HAVING count(*) > 0),
claimed AS (
    UPDATE jobs SET status = 'running', attempts = attempts + 1, fence = fence + 1,
        worker_id = %(worker)s, lease_expires_at = %(lease)s, started_at = %(now)s,
        version = version + 1
    WHERE id IN (
        SELECT id FROM jobs
        WHERE status = 'queued' AND run_at <= %(now)s AND kind = ANY(%(kinds)s)
        ORDER BY priority DESC, run_at, id
        LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    RETURNING id, kind, organization_id, payload, attempts, max_attempts, fence)
SELECT true, id, kind, organization_id, payload, attempts, max_attempts, fence FROM claimed
UNION ALL SELECT false, id, NULL, NULL, NULL, NULL, NULL, NULL FROM done
UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM told
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


Exchange = tuple[set[str], list[ClaimRow]]


class FastPath(Protocol):
    async def exchange(
        self,
        worker: str,
        held: Sequence[tuple[str, int]],
        kinds: Sequence[str],
        limit: int,
        now: datetime,
        lease: datetime,
    ) -> Exchange:
        """Mark ``held`` (id, fence) pairs succeeded and claim up to ``limit`` queued jobs.

        Returns the ids accepted as succeeded (the others had lost their claim) and the rows
        claimed.
        """
        ...

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

    async def exchange(
        self,
        worker: str,
        held: Sequence[tuple[str, int]],
        kinds: Sequence[str],
        limit: int,
        now: datetime,
        lease: datetime,
    ) -> Exchange:
        connection = await self._connect()
        params = {
            "now": now,
            "ids": [job_id for job_id, _ in held],
            "fences": [fence for _, fence in held],
            "worker": worker,
            "lease": lease,
            "kinds": list(kinds),
            "limit": limit,
        }
        cursor = await connection.execute(_PG_EXCHANGE, params)
        accepted: set[str] = set()
        claimed: list[ClaimRow] = []
        for was_claimed, *row in await cursor.fetchall():
            if was_claimed:
                claimed.append(tuple(row))
            elif was_claimed is not None:
                accepted.add(row[0])
        return accepted, claimed

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
        self._publishing: set[asyncio.Task[None]] = set()

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

    async def exchange(
        self,
        worker: str,
        held: Sequence[tuple[str, int]],
        kinds: Sequence[str],
        limit: int,
        now: datetime,
        lease: datetime,
    ) -> Exchange:
        stamp = sqlite_timestamp(now)
        statements: list[tuple[str, list[Any]]] = []
        if held:
            params: list[Any] = [stamp]
            for job_id, fence in held:
                params += [job_id, fence]
            pairs = ", ".join("(?, ?)" for _ in held)
            statements.append((_SQLITE_COMPLETE.format(pairs=pairs), params))
        if limit > 0 and kinds:
            params = [worker, sqlite_timestamp(lease), stamp, stamp, *kinds, limit]
            statements.append((_SQLITE_CLAIM.format(kinds=", ".join("?" * len(kinds))), params))
        results = await self._run(self._in_one_transaction, statements)
        accepted = {row[0] for row in results[0]} if held else set()
        claimed = results[-1] if limit > 0 and kinds else []
        if accepted:  # SQLite cannot carry a NOTIFY: tell followers here and through Redis
            self._tell([job_topic(job_id) for job_id in accepted])
        return accepted, [(*row[:3], json.loads(row[3]), *row[4:]) for row in claimed]

    def _in_one_transaction(self, statements: list[tuple[str, list[Any]]]) -> list[list[Any]]:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            results = [connection.execute(sql, params).fetchall() for sql, params in statements]
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return results

    def _tell(self, topics: list[str]) -> None:
        """Publish in the background: a slow Redis must not hold up claiming."""

        async def publish() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeups.publish(topics), timeout=1.0)

        task = asyncio.get_running_loop().create_task(publish())
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def close(self) -> None:
        if self._connection is not None:
            await self._run(self._connection.close)
            self._connection = None
        self._thread.shutdown(wait=False)
