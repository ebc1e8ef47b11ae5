"""The values the harness passes around, kept apart so every module can share them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


class BenchError(RuntimeError):
    """A run that must not produce a figure (server down, errors under load, bad wrk output)."""


@dataclass(frozen=True)
class Options:
    """How hard and how long each target is driven; one set for the whole run."""

    duration_s: int = 10
    rounds: int = 2
    warmup_s: int = 2
    threads: int = 2
    connections: int = 64
    # The queue benchmark: jobs loaded up front for throughput, jobs enqueued one per
    # transaction for the enqueue rate, and jobs spaced out for enqueue-to-start latency.
    queue_jobs: int = 10_000
    queue_enqueues: int = 2_000
    queue_latency_jobs: int = 300


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured; latencies in milliseconds."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueRound:
    """What one round of the queue benchmark measured for one engine configuration."""

    jobs: int
    drain_s: float  # from the first job's start until none is left unfinished
    jobs_per_s: float
    enqueue_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_samples: int


@dataclass(frozen=True)
class DetectionRound:
    """One timed run of one tool in one cache state (kept in the JSON results)."""

    seconds: float
    requests: int | None
    updates: int


@dataclass(frozen=True)
class Row:
    """One line of the report: a benchmark's figure for one target (median of its rounds).

    ``requests_per_s`` is the main rate, in ``unit`` (requests or jobs a second); the ratio
    compares it with the row of ``baseline`` measured in the same run.
    """

    benchmark: str
    target: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_baseline: float | None
    rounds: Sequence[WrkResult | QueueRound | DetectionRound]
    unit: str = "req/s"
    baseline: str = "bare Starlette"
    enqueue_per_s: float | None = None  # the queue benchmark's second rate
