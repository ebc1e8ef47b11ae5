"""Putting work on the queue and asking it to stop: the calls domains make.

``enqueue`` runs inside the caller's transaction, so a job exists if and only if the change
that asked for it committed; workers are woken when it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.jobs.clock import Clock
from forgeyard.jobs.notify import CHANNEL, NEW_WORK, job_topic, notify_on_commit
from forgeyard.jobs.registry import get_task
from forgeyard.kernel.db import rows_affected, utcnow
from forgeyard.kernel.ids import new_id
from forgeyard.models.job import Job, JobStatus

jobs = cast(Table, Job.__table__)
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Enqueued:
    id: str
    created: bool  # False: the idempotency key named a job that already existed


async def enqueue(
    session: AsyncSession,
    kind: str,
    *,
    payload: dict[str, Any] | None = None,
    organization_id: str | None = None,
    priority: int = 0,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    repository_id: str | None = None,
) -> Enqueued:
    """Add a job to the caller's transaction; the same idempotency key returns the same job."""
    row = _row(kind, payload, organization_id, priority, run_at, max_attempts, idempotency_key)
    row["repository_id"] = repository_id
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = _INSERTS[(postgres, idempotency_key is not None)]
    if await _insert_and_wake(session, statement, row, postgres):
        return Enqueued(row["id"], created=True)
    existing = await session.scalar(
        select(jobs.c.id).where(jobs.c.idempotency_key == row["idempotency_key"])
    )
    assert existing is not None  # the conflict was with this row
    return Enqueued(existing, created=False)


async def enqueue_many(
    session: AsyncSession,
    kind: str,
    payloads: Sequence[dict[str, Any]],
    *,
    organization_id: str | None = None,
) -> list[str]:
    """Enqueue a batch in one statement (no idempotency keys)."""
    rows = [_row(kind, payload, organization_id, 0, None, None, None) for payload in payloads]
    if rows:
        await session.execute(insert(jobs), rows)
        await _wake_workers(session)
    return [row["id"] for row in rows]


def _insert_statement(postgres: bool, keyed: bool) -> Any:
    # Built once: constructing a statement costs more than running a cached one.
    statement = (postgresql.insert if postgres else sqlite.insert)(jobs).values(
        {name: bindparam(name) for name in _ROW_KEYS}
    )
    if keyed:
        statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return statement.returning(jobs.c.id)


_ROW_KEYS = (
    "id",
    "kind",
    "organization_id",
    "payload",
    "status",
    "priority",
    "run_at",
    "attempts",
    "max_attempts",
    "fence",
    "cancel_requested",
    "version",
    "created_at",
    "idempotency_key",
    "repository_id",
)
_INSERTS = {
    (postgres, keyed): _insert_statement(postgres, keyed)
    for postgres in (True, False)
    for keyed in (True, False)
}
_NOTIFYING_INSERTS = {
    statement: select(statement.cte("inserted").c.id, func.pg_notify(CHANNEL, NEW_WORK))
    for (postgres, _keyed), statement in _INSERTS.items()
    if postgres
}


def _row(
    kind: str,
    payload: dict[str, Any] | None,
    organization_id: str | None,
    priority: int,
    run_at: datetime | None,
    max_attempts: int | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    spec = get_task(kind)
    attempts = max_attempts or (spec.max_attempts if spec else DEFAULT_MAX_ATTEMPTS)
    if attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    now = utcnow()
    return {
        "id": new_id("job"),
        "kind": kind,
        "organization_id": organization_id,
        "payload": payload or {},
        "status": JobStatus.QUEUED,
        "priority": priority,
        "run_at": run_at or now,
        "attempts": 0,
        "max_attempts": attempts,
        "fence": 0,
        "cancel_requested": False,
        "version": 0,
        "created_at": now,
        "idempotency_key": _scoped_key(kind, organization_id, idempotency_key),
        "repository_id": None,
    }


def _scoped_key(kind: str, organization_id: str | None, key: str | None) -> str | None:
    # Keys are the caller's; scoping them keeps two organizations' keys from meeting.
    return None if key is None else f"{organization_id or '-'}:{kind}:{key}"[:300]


async def _insert_and_wake(
    session: AsyncSession, statement: Any, row: dict[str, Any], postgres: bool
) -> bool:
    """Insert a job and see that workers are woken on commit; False if nothing was inserted.

    On PostgreSQL the first job of a transaction carries the NOTIFY in the same statement,
    saving a round trip on the path every enqueue takes.
    """
    if not postgres or _woken(session):
        inserted = (await session.execute(statement, row)).first() is not None
        if inserted:
            await _wake_workers(session)
        return inserted
    result = await session.execute(_NOTIFYING_INSERTS[statement], row)
    if result.first() is None:
        return False
    session.info["forgeyard_woke"] = session.get_transaction()
    return True


def _woken(session: AsyncSession) -> bool:
    return session.info.get("forgeyard_woke") is session.get_transaction()


async def _wake_workers(session: AsyncSession) -> None:
    if _woken(session):
        return  # one wake-up per transaction, however many jobs it adds
    session.info["forgeyard_woke"] = session.get_transaction()
    await notify_on_commit(session, [NEW_WORK])


async def request_cancel(
    session: AsyncSession, job_id: str, *, clock: Clock | None = None
) -> str | None:
    """Cancel a queued job now, or ask a running one to stop at its next checkpoint.

    Returns the job's status afterwards, or None if it does not exist.
    """
    now = (clock or Clock()).now()
    cancelled = await rows_affected(
        session,
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, finished_at=now, version=jobs.c.version + 1),
    )
    if cancelled:
        await notify_on_commit(session, [job_topic(job_id)])
        return JobStatus.CANCELLED
    asked = await rows_affected(
        session,
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING)
        .values(cancel_requested=True, version=jobs.c.version + 1),
    )
    if asked:
        await notify_on_commit(session, [job_topic(job_id)])
    return await session.scalar(select(jobs.c.status).where(jobs.c.id == job_id))
