"""What the engine can run: task handlers by kind, and the subscribers of domain events.

Domains declare their handlers with ``@task("deps.update")`` in their ``tasks.py``; the entry
points (``forgeyard serve``, ``forgeyard worker``) import those modules, which fills this
registry before any worker starts.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeyard.jobs.context import JobContext

Handler = Callable[["JobContext"], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt runs again.

    Exponential backoff with full jitter by default; ``schedule`` replaces it with fixed
    delays, one per retry (the last repeats), for callers that promise a published schedule.
    """

    base_seconds: float = 2.0
    max_seconds: float = 600.0
    schedule: tuple[float, ...] = ()

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if self.schedule:
            return self.schedule[min(attempt, len(self.schedule)) - 1]
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311  (jitter, not secrecy)


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    handler: Handler
    max_attempts: int = 5
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # At most this many jobs of the kind run at once across every worker; None: no limit.
    concurrency: int | None = None
    timeout_seconds: float | None = None
    # Announced jobs emit job.completed / job.failed events when they end.
    announce: bool = False


_tasks: dict[str, TaskSpec] = {}


def task(
    kind: str,
    *,
    max_attempts: int = 5,
    retry: RetryPolicy | None = None,
    concurrency: int | None = None,
    timeout_seconds: float | None = None,
    announce: bool = False,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the code that runs jobs of ``kind``."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")

    def register(handler: Handler) -> Handler:
        existing = _tasks.get(kind)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"task {kind!r} is already registered")
        _tasks[kind] = TaskSpec(
            kind=kind,
            handler=handler,
            max_attempts=max_attempts,
            retry=retry or RetryPolicy(),
            concurrency=concurrency,
            timeout_seconds=timeout_seconds,
            announce=announce,
        )
        return handler

    return register


def get_task(kind: str) -> TaskSpec | None:
    return _tasks.get(kind)


def registered_tasks() -> dict[str, TaskSpec]:
    return dict(_tasks)


def unregister(kind: str) -> None:
    """Forget a task (tests register throwaway kinds)."""
    _tasks.pop(kind, None)


EventHandler = Callable[["JobContext", dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Subscriber:
    name: str
    event_types: frozenset[str]  # "*" matches every event
    handler: EventHandler

    def wants(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


_subscribers: dict[str, Subscriber] = {}


def subscriber(name: str, events: Sequence[str]) -> Callable[[EventHandler], EventHandler]:
    """Register ``handler`` to receive every committed event whose type is in ``events``.

    Delivery is at least once: the handler runs as a job and is retried when it fails.
    """

    def register(handler: EventHandler) -> EventHandler:
        _subscribers[name] = Subscriber(name, frozenset(events), handler)
        return handler

    return register


def subscribers_for(event_type: str) -> list[Subscriber]:
    return [sub for sub in _subscribers.values() if sub.wants(event_type)]


def get_subscriber(name: str) -> Subscriber | None:
    return _subscribers.get(name)


def unsubscribe(name: str) -> None:
    _subscribers.pop(name, None)
