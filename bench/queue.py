"""The job queue: forgeyard's engine against procrastinate on the same PostgreSQL server.

Every configuration runs 4 workers on no-op jobs in a worker process of its own
(``bench.queue_worker``); this process only enqueues and watches. The configurations are
measured in turn, round after round, and each figure is the median of the rounds:

- throughput (jobs/s): ``queue_jobs`` jobs are loaded in bulk, the queue table is VACUUM
  ANALYZEd (PostgreSQL), then the worker process starts. The clock runs from the first job's
  start, which the worker process reports, until this process, polling every 20 ms, finds no
  job queued or running (both clocks are ``time.time()`` on the same machine).
- latency (p50 and p99 ms): the same workers, idle now, get ``queue_latency_jobs`` jobs
  enqueued one at a time 15 ms apart, each carrying ``time.time()`` read just before its
  enqueue; the handler records how much later it started (the enqueue's commit included).
- enqueue rate (jobs/s): with the workers stopped, ``queue_enqueues`` jobs, one transaction
  each, awaited one after another by one client, after 100 that warm it up.

The ratio compares each forgeyard PostgreSQL row's throughput with procrastinate's.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import postgres
from bench.harness import REPO_ROOT, Session
from bench.model import BenchError, QueueRound, Row
from bench.queue_worker import URL_VARIABLE, ForgeyardQueue, ProcrastinateQueue, Queue

NAME = "queue"
WORKERS = 4
WORKER_POLL_SECONDS = 1.0  # JobSettings' default: how often an idle worker looks unprompted
WATCH_INTERVAL_S = 0.02
LATENCY_SPACING_S = 0.015
ENQUEUE_WARMUP = 100
DRAIN_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Config:
    target: str
    slug: str
    engine: str  # forgeyard or procrastinate
    postgres: bool
    concurrency: int = 1  # per forgeyard worker
    claim_batch: int = 1


PROCRASTINATE = Config("procrastinate pg, concurrency=4", "procrastinate", "procrastinate", True)
CONFIGS = (
    PROCRASTINATE,
    Config("forgeyard pg, 4 workers c=1 b=1", "pg_one", "forgeyard", True),
    Config("forgeyard pg, 4 workers c=10 b=10", "pg_batch", "forgeyard", True, 10, 10),
    Config("forgeyard sqlite, 4 workers c=10 b=10", "sqlite_batch", "forgeyard", False, 10, 10),
    Config("forgeyard sqlite, 4 workers c=1 b=1", "sqlite_one", "forgeyard", False),
)
_live: list[subprocess.Popen[bytes]] = []  # worker processes to kill if the run is cut short


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _start_worker(config: Config, queue: Queue, report: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.queue_worker", "--engine", config.engine]
    argv += ["--report", str(report), "--workers", str(WORKERS)]
    argv += ["--concurrency", str(config.concurrency), "--claim-batch", str(config.claim_batch)]
    argv += ["--poll-seconds", str(WORKER_POLL_SECONDS)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORGEYARD_")}
    env[URL_VARIABLE] = queue.url  # not in argv, where `ps` would show a password
    with log.open("ab") as output:
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output
        )
    _live.append(process)
    return process


async def _stop_worker(process: subprocess.Popen[bytes], log: Path) -> None:
    process.terminate()
    try:
        await asyncio.to_thread(process.wait, STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise BenchError(f"the queue worker did not stop on SIGTERM:\n{_tail(log)}") from None
    finally:
        _live.remove(process)


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) or "(empty log)"


def _report(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            merged.update(json.loads(line))
    return merged


async def _drained(queue: Queue, process: subprocess.Popen[bytes], log: Path) -> float:
    """The wall-clock time of the first look that found nothing queued or running."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        looked_at = time.time()
        if not await queue.unfinished():
            return looked_at
        if process.poll() is not None:
            raise BenchError(f"the queue worker exited with {process.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise BenchError(f"jobs still unfinished after {DRAIN_TIMEOUT_S:.0f} s:\n{_tail(log)}")
        await asyncio.sleep(WATCH_INTERVAL_S)


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value at least ``fraction`` of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def _round(config: Config, queue: Queue, session: Session, round_no: int) -> QueueRound:
    options = session.options
    report = session.workdir / f"queue-{config.slug}-{round_no}.jsonl"
    log = session.workdir / f"queue-{config.slug}.log"
    await queue.reset()
    await queue.load(options.queue_jobs)
    await queue.vacuum()
    worker = _start_worker(config, queue, report, log)
    done_at = await _drained(queue, worker, log)
    drain_s = done_at - _report(report)["first_start"]
    await asyncio.sleep(0.5)  # let the workers go idle
    started = time.monotonic()
    for number in range(options.queue_latency_jobs):
        await asyncio.sleep(max(0.0, started + number * LATENCY_SPACING_S - time.monotonic()))
        await queue.enqueue(time.time())
    await _drained(queue, worker, log)
    await _stop_worker(worker, log)
    latencies_ms = [value * 1000 for value in _report(report)["latencies_s"]]
    if len(latencies_ms) != options.queue_latency_jobs:
        raise BenchError(f"{len(latencies_ms)} latencies for {options.queue_latency_jobs} jobs")
    for _ in range(ENQUEUE_WARMUP):
        await queue.enqueue(None)
    started = time.perf_counter()
    for _ in range(options.queue_enqueues):
        await queue.enqueue(None)
    enqueue_s = time.perf_counter() - started
    return QueueRound(
        jobs=options.queue_jobs,
        drain_s=round(drain_s, 4),
        jobs_per_s=round(options.queue_jobs / drain_s, 3),
        enqueue_per_s=round(options.queue_enqueues / enqueue_s, 3),
        latency_p50_ms=round(_percentile(latencies_ms, 0.5), 3),
        latency_p99_ms=round(_percentile(latencies_ms, 0.99), 3),
        latency_samples=len(latencies_ms),
    )


async def _measure(configs: list[Config], urls: dict[str, str], session: Session) -> Any:
    queues: dict[str, Queue] = {}
    try:
        for config in configs:
            kind = ProcrastinateQueue if config.engine == "procrastinate" else ForgeyardQueue
            queues[config.slug] = kind(urls[config.slug])
            await queues[config.slug].open()
        results: dict[str, list[QueueRound]] = {config.slug: [] for config in configs}
        for round_no in range(1, session.options.rounds + 1):
            for config in configs:
                result = await _round(config, queues[config.slug], session, round_no)
                results[config.slug].append(result)
                _progress(
                    f"{NAME}: round {round_no}/{session.options.rounds} {config.target}: "
                    f"{result.jobs_per_s:,.0f} jobs/s ({result.jobs:,} in {result.drain_s:.2f} s), "
                    f"enqueue {result.enqueue_per_s:,.0f}/s, p50 {result.latency_p50_ms:.2f} ms, "
                    f"p99 {result.latency_p99_ms:.2f} ms"
                )
        return results
    finally:
        for queue in queues.values():
            await queue.close()


def run(session: Session) -> list[Row]:
    server = postgres.server_url(NAME)
    configs = [config for config in CONFIGS if server is not None or not config.postgres]
    print(
        f"{NAME}: SQLite has no NOTIFY, so the SQLite workers (another process, no Redis) find "
        f"new jobs by polling every {WORKER_POLL_SECONDS:g} s: their latency is that interval"
    )
    _progress(f"{NAME}: preparing {len(configs)} databases")
    urls: dict[str, str] = {}
    created: list[str] = []
    try:
        for config in configs:
            if server is None or not config.postgres:
                urls[config.slug] = f"sqlite:///{session.workdir / f'queue-{config.slug}.db'}"
                continue
            name = f"fy_bench_{os.getpid()}_{config.slug}"
            postgres.admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            postgres.admin(server, f'CREATE DATABASE "{name}"')
            created.append(name)
            urls[config.slug] = server.set(database=name).render_as_string(hide_password=False)
        results = asyncio.run(_measure(configs, urls, session))
    finally:
        for process in _live:
            process.kill()
            process.wait()
        _live.clear()
        for name in created:
            assert server is not None
            postgres.admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return _rows(configs, results)


def _rows(configs: list[Config], results: dict[str, list[QueueRound]]) -> list[Row]:
    def median(slug: str, figure: str) -> float:
        return round(statistics.median(getattr(r, figure) for r in results[slug]), 3)

    base = median(PROCRASTINATE.slug, "jobs_per_s") if PROCRASTINATE in configs else None
    rows = []
    for config in configs:
        throughput = median(config.slug, "jobs_per_s")
        compared = base and config.engine == "forgeyard" and config.postgres
        rows.append(
            Row(
                benchmark=NAME,
                target=config.target,
                requests_per_s=throughput,
                p50_ms=median(config.slug, "latency_p50_ms"),
                p99_ms=median(config.slug, "latency_p99_ms"),
                ratio_to_baseline=round(throughput / base, 4) if compared and base else None,
                rounds=results[config.slug],
                unit="jobs/s",
                baseline="procrastinate",
                enqueue_per_s=median(config.slug, "enqueue_per_s"),
            )
        )
    return rows
