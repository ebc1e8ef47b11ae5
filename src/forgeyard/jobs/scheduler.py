"""Periodic jobs, safe to run on every replica at once.

A schedule fires once per slot: the slot is the time divided by the interval, and the job
is enqueued with an idempotency key naming the slot. Every replica may try; the unique key
lets exactly one job through, so no leader election is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from forgeyard.jobs.clock import Clock
from forgeyard.jobs.queue import enqueue
from forgeyard.kernel.db import Database
from forgeyard.kernel.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Schedule:
    name: str
    kind: str
    every_seconds: int
    payload: dict[str, Any] = field(default_factory=dict)

    def slot(self, now: datetime) -> int:
        return int(now.timestamp()) // self.every_seconds

    def slot_start(self, slot: int) -> datetime:
        return datetime.fromtimestamp(slot * self.every_seconds, UTC)


_schedules: dict[str, Schedule] = {}


def periodic(
    name: str, kind: str, *, every_seconds: int, payload: dict[str, Any] | None = None
) -> None:
    """Run a job of ``kind`` every ``every_seconds`` (aligned to the epoch)."""
    if every_seconds < 1:
        raise ValueError("every_seconds must be at least 1")
    _schedules[name] = Schedule(name, kind, every_seconds, payload or {})


def schedules() -> list[Schedule]:
    return list(_schedules.values())


class Scheduler:
    def __init__(
        self, database: Database, clock: Clock | None = None, tick_seconds: float = 5.0
    ) -> None:
        self.database = database
        self.clock = clock or Clock()
        self.tick_seconds = tick_seconds

    async def tick(self) -> int:
        """Enqueue each schedule's current slot if no replica has; returns how many were new."""
        now = self.clock.now()
        created = 0
        async with self.database.transaction() as session:
            for schedule in schedules():
                slot = schedule.slot(now)
                result = await enqueue(
                    session,
                    schedule.kind,
                    payload=schedule.payload,
                    run_at=schedule.slot_start(slot),
                    idempotency_key=f"schedule:{schedule.name}:{slot}",
                    max_attempts=3,
                )
                created += result.created
        return created

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as error:
                log.warning("schedule_tick_failed", error=str(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.tick_seconds)
