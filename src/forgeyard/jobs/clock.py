"""The engine's idea of now: the system clock, or one a test moves by hand.

Every time the engine compares (a job's ``run_at``, a lease's expiry) comes from here and is
bound as a parameter, so retry schedules can be tested without waiting for them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock(Clock):
    """A clock that stands still until it is told to move."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
