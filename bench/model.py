"""The values the harness passes around, kept apart so every module can share them."""

from __future__ import annotations

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
class Row:
    """One line of the report: a benchmark's figure for one target (median of its rounds)."""

    benchmark: str
    target: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_baseline: float | None
    rounds: list[WrkResult]
