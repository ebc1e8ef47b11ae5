"""CI: how fast a queued build reaches an idle runner, and how fast its log reaches a follower.

Each database (PostgreSQL when one is configured, and SQLite) gets a real ``forgeyard serve``
subprocess (API and two job workers), set up over the HTTP API (:mod:`bench.ci_setup`). Rounds
are interleaved across the databases; each figure is the median of the rounds.

- **dispatch** (``ci_dispatch``): one runner long-polls ``POST /runners/{id}/claim
  {"wait_seconds": 30}`` (plain httpx, a kept-alive connection); ``SETTLE_S`` later the bench
  sends ``POST /projects/{id}/builds``. A sample is the time from just before that request is
  sent until the claim's answer naming that build has arrived; the runner then ends the build
  (``finish``, succeeded) and polls again. ``DISPATCH_WARMUP`` samples first are thrown away.
  Baseline, same run, PostgreSQL: the same runner claiming with ``wait_seconds: 0`` once a
  second (a timer instead of a wake-up), the build sent at a random moment of the second.
  Floor: PostgreSQL's bare LISTEN/NOTIFY round trip (psycopg, one connection notifying, one
  listening), which a long-poll claim's wake-up rides on.
- **logs** (``ci_logs``): one build of two steps, each printing 200,000 lines: the first flat
  out, the second paced at 50,000 lines a second (the issue's throughput goal), in bursts of
  500 lines whose first line carries the time it was printed. A follower, connected to
  ``GET /builds/{id}/logs/stream`` before the build is claimed, counts each step's lines until
  ``end``: lines a second from the first line it received to the last, and the line latency
  (its receive time minus the printed time; same machine, same clock). The flat-out step's
  latency is mostly its backlog (the last line waits for all before it); the paced step's is
  the pipeline's. The runner is ``forgeyard runner``, a process of its own, stopped once the
  build has ended. Baseline, same run: the flat-out step's program read through a local
  pipe by this process, the ceiling.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import httpx

from bench import ci_setup, postgres
from bench.ci_setup import API, BURST, LINES, PACED_RATE, Instance
from bench.harness import REPO_ROOT, Session
from bench.model import BenchError, Row

NAME = "ci"
DISPATCH = "ci_dispatch"
LOGS = "ci_logs"
DISPATCH_SAMPLES = 200  # per round and database
DISPATCH_WARMUP = 5
POLL_SAMPLES = 25  # per round: each costs about a second
POLL_INTERVAL_S = 1.0
NOTIFY_SAMPLES = 200
SETTLE_S = 0.03  # lets the claim reach its wait before the build is sent
NOTIFY_SPACING_S = 0.005
LOG_TIMEOUT_S = 180.0
DISPATCH_GOAL_MS = (20.0, 100.0)  # p50, p99 on PostgreSQL
LOG_GOAL_LINES_S = 50_000
LOG_GOAL_P99_MS = 1000.0
AGENT = "forgeyard runner"
AGENT_NAME = "bench-agent"


@dataclass(frozen=True)
class LatencyRound:
    """One round of one latency measurement (kept in the JSON results)."""

    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    # The trigger request's own answer (POST /projects/{id}/builds), for dispatch rounds:
    # most of a dispatch is the build's creation, before any runner can hear of it.
    trigger_p50_ms: float | None = None
    trigger_p99_ms: float | None = None


@dataclass(frozen=True)
class LogRound:
    """What a follower (or the pipe) saw of one step's lines in one round."""

    lines: int
    seconds: float  # first line received to last
    lines_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_samples: int
    batches: int


@dataclass
class _Seen:
    lines: int = 0
    batches: int = 0
    first: float = 0.0
    last: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, received: float, lines: list[str]) -> None:
        if not self.batches:
            self.first = received
        self.last = received
        self.batches += 1
        self.lines += len(lines)
        for line in lines:
            stamp, space, _ = line.partition(" ")
            if space:
                self.latencies_ms.append((received - float(stamp)) * 1000)

    def to_round(self) -> LogRound:
        seconds = self.last - self.first
        latencies = self.latencies_ms or [math.nan]
        return LogRound(
            lines=self.lines,
            seconds=round(seconds, 4),
            lines_per_s=round(self.lines / seconds, 1) if seconds > 0 else math.inf,
            latency_p50_ms=round(percentile(latencies, 0.5), 3),
            latency_p99_ms=round(percentile(latencies, 0.99), 3),
            latency_samples=len(self.latencies_ms),
            batches=self.batches,
        )


def _progress(message: str) -> None:
    print(f"{NAME}: {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value at least ``fraction`` of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _latency_round(samples_ms: list[float], trigger_ms: list[float] | None = None) -> LatencyRound:
    return LatencyRound(
        samples=len(samples_ms),
        p50_ms=round(percentile(samples_ms, 0.5), 3),
        p99_ms=round(percentile(samples_ms, 0.99), 3),
        max_ms=round(max(samples_ms), 3),
        trigger_p50_ms=round(percentile(trigger_ms, 0.5), 3) if trigger_ms else None,
        trigger_p99_ms=round(percentile(trigger_ms, 0.99), 3) if trigger_ms else None,
    )


# --- dispatch -----------------------------------------------------------------------------


@dataclass
class _Runner:
    id: str
    headers: dict[str, str]

    def path(self, tail: str) -> str:
        return f"{API}/runners/{self.id}{tail}"


async def _register(client: httpx.AsyncClient, inst: Instance, name: str) -> _Runner:
    response = await client.post(
        f"{API}/runners/register",
        json={"registration_token": inst.registration_token, "name": name, "labels": []},
    )
    _expect(response, 201, "runner registration")
    body = response.json()
    return _Runner(body["id"], {"Authorization": f"Bearer {body['token']}"})


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise BenchError(
            f"{what}: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, not {status}: {response.text[:500]}"
        )


async def _trigger(user: httpx.AsyncClient, inst: Instance) -> str:
    response = await user.post(
        f"{API}/projects/{inst.project_id}/builds",
        json={"repository_id": inst.repository_id, "ref": "main"},
    )
    _expect(response, 201, "build trigger")
    return str(response.json()["id"])


async def _finish(runner_client: httpx.AsyncClient, runner: _Runner, build_id: str) -> None:
    response = await runner_client.post(
        runner.path(f"/builds/{build_id}/finish"),
        json={"status": "succeeded"},
        headers=runner.headers,
    )
    _expect(response, 200, "build finish")


async def _dispatch_round(inst: Instance, samples: int) -> LatencyRound:
    async with (
        httpx.AsyncClient(base_url=inst.server.url(""), headers=inst.user_headers) as user,
        httpx.AsyncClient(base_url=inst.server.url(""), timeout=60) as runner_client,
    ):
        runner = await _register(runner_client, inst, "bench-dispatch")
        latencies: list[float] = []
        triggers: list[float] = []
        for number in range(DISPATCH_WARMUP + samples):
            answered_at = 0.0

            async def claim() -> httpx.Response:
                nonlocal answered_at
                response = await runner_client.post(
                    runner.path("/claim"), json={"wait_seconds": 30}, headers=runner.headers
                )
                answered_at = time.perf_counter()
                return response

            waiting = asyncio.create_task(claim())
            await asyncio.sleep(SETTLE_S)
            sent_at = time.perf_counter()
            build_id = await _trigger(user, inst)
            created_at = time.perf_counter()
            response = await waiting
            _expect(response, 200, "long-poll claim")
            claimed = response.json()["build_id"]
            if claimed != build_id:
                raise BenchError(f"the runner claimed {claimed}, not the build sent ({build_id})")
            if number >= DISPATCH_WARMUP:
                latencies.append((answered_at - sent_at) * 1000)
                triggers.append((created_at - sent_at) * 1000)
            await _finish(runner_client, runner, build_id)
    return _latency_round(latencies, triggers)


async def _polling_round(inst: Instance, samples: int) -> LatencyRound:
    """The runner asks once a second with ``wait_seconds: 0``; builds come at random moments."""
    async with (
        httpx.AsyncClient(base_url=inst.server.url(""), headers=inst.user_headers) as user,
        httpx.AsyncClient(base_url=inst.server.url(""), timeout=60) as runner_client,
    ):
        runner = await _register(runner_client, inst, "bench-polling")
        claims: asyncio.Queue[tuple[float, str]] = asyncio.Queue()

        async def poll() -> None:
            tick = time.perf_counter()
            while True:
                response = await runner_client.post(
                    runner.path("/claim"), json={"wait_seconds": 0}, headers=runner.headers
                )
                if response.status_code == 200:
                    await claims.put((time.perf_counter(), response.json()["build_id"]))
                elif response.status_code != 204:
                    _expect(response, 200, "polling claim")
                tick += POLL_INTERVAL_S
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))

        poller = asyncio.create_task(poll())
        latencies: list[float] = []
        try:
            for _ in range(samples):
                await asyncio.sleep(random.uniform(0, POLL_INTERVAL_S))
                sent_at = time.perf_counter()
                build_id = await _trigger(user, inst)
                claimed_at, claimed = await _next_claim(claims, poller, user, inst, build_id)
                if claimed != build_id:
                    raise BenchError(f"the runner claimed {claimed}, not {build_id}")
                latencies.append((claimed_at - sent_at) * 1000)
                await _finish(runner_client, runner, build_id)
        finally:
            poller.cancel()
    return _latency_round(latencies)


async def _next_claim(
    claims: asyncio.Queue[tuple[float, str]],
    poller: asyncio.Task[None],
    user: httpx.AsyncClient,
    inst: Instance,
    build_id: str,
) -> tuple[float, str]:
    """The poller's next claim; its own error if it failed, or what became of the build."""
    getting = asyncio.create_task(claims.get())
    done, _ = await asyncio.wait(
        {getting, poller}, timeout=10 * POLL_INTERVAL_S, return_when=asyncio.FIRST_COMPLETED
    )
    if getting in done:
        return getting.result()
    getting.cancel()
    if poller in done:
        poller.result()  # raises what stopped it
    build = (await user.get(f"{API}/builds/{build_id}")).json()
    raise BenchError(
        f"the polling runner did not get build {build_id} within {10 * POLL_INTERVAL_S:g} s; "
        f"the build is {build.get('status')}, runner {build.get('runner_id')}; server log tail:\n"
        f"{inst.server.log_tail()}"
    )


async def _notify_round(conninfo: str, samples: int) -> LatencyRound:
    """PostgreSQL's own LISTEN/NOTIFY round trip, between two connections of this process."""
    import psycopg

    async with (
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as notifier,
    ):
        await listener.execute("LISTEN bench_ci")
        received: asyncio.Queue[float] = asyncio.Queue()

        async def listen() -> None:
            async for _ in listener.notifies():
                received.put_nowait(time.perf_counter())

        task = asyncio.create_task(listen())
        latencies: list[float] = []
        try:
            for number in range(samples + DISPATCH_WARMUP):
                sent_at = time.perf_counter()
                await notifier.execute("NOTIFY bench_ci")
                arrived = await asyncio.wait_for(received.get(), 5)
                if number >= DISPATCH_WARMUP:
                    latencies.append((arrived - sent_at) * 1000)
                await asyncio.sleep(NOTIFY_SPACING_S)
        finally:
            task.cancel()
    return _latency_round(latencies)


# --- logs ---------------------------------------------------------------------------------


def _pipe_round(repository: Path) -> LogRound:
    """The flat-out step's program read through a pipe by this process: the ceiling."""
    argv = ["python3", "emit_lines.py", str(LINES), "0", str(BURST)]
    seen = _Seen()
    with subprocess.Popen(argv, cwd=repository, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        partial = b""
        while chunk := os.read(process.stdout.fileno(), 64 * 1024):
            received = time.time()
            *complete, partial = (partial + chunk).split(b"\n")
            seen.add(received, [line.decode() for line in complete])
    if process.returncode:
        raise BenchError(f"emit_lines.py exited with {process.returncode}")
    return seen.to_round()


async def _follow(url: str, connected: asyncio.Event) -> tuple[dict[int, _Seen], str]:
    """Every ``log`` event of the stream until ``end``: what each step's lines did."""
    seen: dict[int, _Seen] = {}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client,
        client.stream("GET", url) as response,
    ):
        _expect(response, 200, "log stream")
        connected.set()
        event, data = "message", ""
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                data += line[6:] if line.startswith("data: ") else line[5:]
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif not line:
                if event == "log":
                    received = time.time()
                    payload = json.loads(data)
                    seen.setdefault(payload["step"], _Seen()).add(received, payload["lines"])
                elif event == "end":
                    return seen, str(json.loads(data)["status"])
                event, data = "message", ""
    raise BenchError("the log stream ended without an end event")


def _runner_argv(inst: Instance, work_dir: Path) -> tuple[list[str], dict[str, str]]:
    """``forgeyard runner`` for the log builds, and its environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORGEYARD_")}
    # The token goes in the environment, as the agent's help advises (out of `ps`).
    env["FORGEYARD_RUNNER_REGISTRATION_TOKEN"] = inst.registration_token
    env["FORGEYARD_RUNNER_NAME"] = AGENT_NAME
    server = ["--server", inst.server.url(""), "--work-dir", str(work_dir)]
    return [sys.executable, "-m", "forgeyard", "runner", *server], env


async def _delete_runners(user: httpx.AsyncClient, name: str) -> None:
    """Gone for good, so no claim it may have left waiting on the server takes a later build."""
    response = await user.get(f"{API}/runners", params={"limit": 100})
    _expect(response, 200, "runner list")
    for found in response.json()["data"]:
        if found["name"] == name:
            _expect(await user.delete(f"{API}/runners/{found['id']}"), 204, "runner deletion")


def _logs(inst: Instance, workdir: Path) -> tuple[LogRound, LogRound]:
    """One log build, its runner's output kept in ``workdir`` and shown if it fails."""
    workdir.mkdir(parents=True)
    log_path = workdir / "runner.log"
    try:
        with log_path.open("wb") as log:
            return asyncio.run(_logs_round(inst, workdir, log))
    except BenchError as error:
        tail = log_path.read_text(errors="replace")[-2000:] or "(empty)"
        raise BenchError(f"{error}\nthe runner's log:\n{tail}") from None


async def _logs_round(inst: Instance, workdir: Path, log: IO[bytes]) -> tuple[LogRound, LogRound]:
    async with httpx.AsyncClient(
        base_url=inst.server.url(""), headers=inst.user_headers, timeout=30
    ) as user:
        build_id = await _trigger(user, inst)
        response = await user.post(f"{API}/builds/{build_id}/stream-token")
        _expect(response, 201, "stream token")
        url = inst.server.url(response.json()["url"])
        connected = asyncio.Event()
        follower = asyncio.create_task(_follow(url, connected))
        await asyncio.wait_for(connected.wait(), 10)
        argv, env = _runner_argv(inst, workdir / "work")
        runner = await asyncio.create_subprocess_exec(
            *argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            seen, status = await asyncio.wait_for(follower, LOG_TIMEOUT_S)
            runner.terminate()  # the build has ended: the agent is back to claiming
            await asyncio.wait_for(runner.wait(), 30)
        except TimeoutError:
            raise BenchError(f"the log build did not end within {LOG_TIMEOUT_S:.0f} s") from None
        finally:
            if runner.returncode is None:
                runner.kill()
                await runner.wait()
        if status != "succeeded":
            raise BenchError(f"the log build ended {status}")
        await _delete_runners(user, AGENT_NAME)
    rounds = (seen.get(0, _Seen()).to_round(), seen.get(1, _Seen()).to_round())
    for number, got in enumerate(rounds):
        if got.lines != LINES:
            raise BenchError(
                f"the follower saw {got.lines:,} lines of step {number}, not {LINES:,}"
            )
    return rounds


# --- the run ------------------------------------------------------------------------------


@dataclass
class _Results:
    notify: list[LatencyRound] = field(default_factory=list)
    polling: list[LatencyRound] = field(default_factory=list)
    dispatch: dict[str, list[LatencyRound]] = field(default_factory=dict)
    pipe: list[LogRound] = field(default_factory=list)
    flat: dict[str, list[LogRound]] = field(default_factory=dict)
    paced: dict[str, list[LogRound]] = field(default_factory=dict)


def run(session: Session) -> list[Row]:
    server = postgres.server_url(NAME)
    workdir = session.workdir / NAME
    results = _Results()
    with ExitStack() as stack:
        instances: list[Instance] = []
        pg_conninfo = None
        if server is not None:
            scratch = stack.enter_context(postgres.scratch_database(server, NAME))
            pg_conninfo = scratch.render_as_string(hide_password=False)
            _progress("starting forgeyard on PostgreSQL")
            instances.append(stack.enter_context(ci_setup.instance("pg", workdir, pg_conninfo)))
        _progress("starting forgeyard on SQLite")
        instances.append(stack.enter_context(ci_setup.instance("sqlite", workdir, None)))
        rounds = session.options.rounds
        for round_no in range(1, rounds + 1):
            prefix = f"round {round_no}/{rounds}"
            if pg_conninfo is not None:
                results.notify.append(asyncio.run(_notify_round(pg_conninfo, NOTIFY_SAMPLES)))
                _progress(f"{prefix} pg NOTIFY round trip: {_shown(results.notify[-1])}")
                results.polling.append(asyncio.run(_polling_round(instances[0], POLL_SAMPLES)))
                _progress(f"{prefix} pg claim every 1 s: {_shown(results.polling[-1])}")
            for inst in instances:
                got = asyncio.run(_dispatch_round(inst, DISPATCH_SAMPLES))
                results.dispatch.setdefault(inst.label, []).append(got)
                _progress(f"{prefix} {inst.label} long-poll dispatch: {_shown(got)}")
            results.pipe.append(_pipe_round(instances[0].repository))
            _progress(f"{prefix} local pipe: {_shown_logs(results.pipe[-1])}")
            for inst in instances:
                where = workdir / inst.label / f"logs-{round_no}"
                flat, paced = _logs(inst, where)
                results.flat.setdefault(inst.label, []).append(flat)
                results.paced.setdefault(inst.label, []).append(paced)
                _progress(f"{prefix} {inst.label} logs flat out: {_shown_logs(flat)}")
                _progress(f"{prefix} {inst.label} logs paced: {_shown_logs(paced)}")
    rows = _rows(results)
    _print_goals(results)
    return rows


def _shown(got: LatencyRound) -> str:
    shown = f"p50 {got.p50_ms:.2f} ms, p99 {got.p99_ms:.2f} ms, max {got.max_ms:.2f} ms"
    if got.trigger_p50_ms is not None:
        shown += f" (the trigger's own answer: p50 {got.trigger_p50_ms:.2f} ms, "
        shown += f"p99 {got.trigger_p99_ms:.2f} ms)"
    return shown


def _shown_logs(got: LogRound) -> str:
    return (
        f"{got.lines:,} lines, {got.lines_per_s:,.0f} lines/s over {got.seconds:.2f} s, "
        f"{got.batches} batches, latency p50 {got.latency_p50_ms:.1f} ms, "
        f"p99 {got.latency_p99_ms:.1f} ms"
    )


def _median(values: list[Any], figure: str) -> float:
    return round(float(statistics.median(getattr(v, figure) for v in values)), 3)


def _latency_row(target: str, rounds: list[LatencyRound], base: float | None) -> Row:
    p50 = _median(rounds, "p50_ms")
    return Row(
        benchmark=DISPATCH,
        target=target,
        requests_per_s=sum(r.samples for r in rounds),
        p50_ms=p50,
        p99_ms=_median(rounds, "p99_ms"),
        ratio_to_baseline=round(base / p50, 4) if base else None,
        rounds=cast(Any, rounds),
        unit="samples",
        baseline="1 s polling (p50)",
    )


def _log_row(target: str, rounds: list[LogRound], base: float | None) -> Row:
    rate = _median(rounds, "lines_per_s")
    return Row(
        benchmark=LOGS,
        target=target,
        requests_per_s=rate,
        p50_ms=_median(rounds, "latency_p50_ms"),
        p99_ms=_median(rounds, "latency_p99_ms"),
        ratio_to_baseline=round(rate / base, 4) if base else None,
        rounds=cast(Any, rounds),
        unit="lines/s",
        baseline="local pipe",
    )


def _rows(results: _Results) -> list[Row]:
    rows = []
    base = None
    if results.notify:
        rows.append(_latency_row("pg LISTEN/NOTIFY round trip (floor)", results.notify, None))
        rows.append(_latency_row("claim polled every 1 s, pg (baseline)", results.polling, None))
        base = _median(results.polling, "p50_ms")
    for label, rounds in results.dispatch.items():
        ratio_base = base if label == "pg" else None
        rows.append(_latency_row(f"long-poll claim, {label}", rounds, ratio_base))
    pipe = _median(results.pipe, "lines_per_s")
    rows.append(_log_row(f"{LINES:,} lines through a local pipe (ceiling)", results.pipe, None))
    for label in results.flat:
        rows.append(_log_row(f"flat out, {label}, {AGENT}", results.flat[label], pipe))
        paced = f"paced {PACED_RATE // 1000}k lines/s, {label}, {AGENT}"
        rows.append(_log_row(paced, results.paced[label], None))  # its rate is the pace
    return rows


def _print_goals(results: _Results) -> None:
    """The issue's goals, met or not, on PostgreSQL (SQLite shown for comparison)."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    for label, rounds in results.dispatch.items():
        p50, p99 = _median(rounds, "p50_ms"), _median(rounds, "p99_ms")
        goal50, goal99 = DISPATCH_GOAL_MS
        lines.append(
            f"dispatch {label}: p50 {p50:.1f} ms (goal < {goal50:g}: {verdict(p50 < goal50)}), "
            f"p99 {p99:.1f} ms (goal < {goal99:g}: {verdict(p99 < goal99)})"
        )
    for label in results.flat:
        rate = _median(results.flat[label], "lines_per_s")
        p99 = _median(results.paced[label], "latency_p99_ms")
        lines.append(
            f"logs {label} ({AGENT}): {rate:,.0f} lines/s flat out "
            f"(goal >= {LOG_GOAL_LINES_S:,}: {verdict(rate >= LOG_GOAL_LINES_S)}); "
            f"p99 line latency at {PACED_RATE:,} lines/s {p99:.0f} ms "
            f"(goal < {LOG_GOAL_P99_MS:g}: {verdict(p99 < LOG_GOAL_P99_MS)})"
        )
    print("\n".join(lines))
