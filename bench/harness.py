"""Starts the servers under test, drives them in turn and reduces the rounds to one row each.

Both servers run as real subprocesses on loopback, the way an operator runs them, so every
figure includes what a request really costs: the HTTP server, middleware and the log line.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO

from bench.model import BenchError, Options, Row, WrkResult
from bench.wrk import run_wrk

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
FORGEYARD = "forgeyard"
BASELINE = "baseline"
OWNER_EMAIL = "bench@forgeyard.example"
OWNER_PASSWORD = "benchmark password"
UNLIMITED_PLANS = (
    '{"free": {"api_calls_per_minute": 1000000000, "concurrent_requests": 100000, '
    '"analyses_per_hour": null}}'
)


@dataclass
class Server:
    """A server subprocess the harness owns, and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's output, for error messages (the temp dir is deleted)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def free_port() -> int:
    """A port nothing listens on now; the OS picks it so parallel runs do not collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop(server: Server) -> None:
    """Stop one server by its own pid: SIGTERM for a graceful exit, SIGKILL if it hangs."""
    process = server.process
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _status(url: str) -> int | None:
    """HTTP status of a GET, or None while nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_ready(server: Server, path: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll ``path`` until it answers 200; fail fast if the process dies meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited with {server.process.returncode} before it was ready; "
                f"log tail:\n{server.log_tail()}"
            )
        if _status(server.url(path)) == 200:
            return
        time.sleep(0.2)
    raise BenchError(
        f"{server.name} did not answer 200 on {path} within {timeout_s:.0f} s; "
        f"log tail:\n{server.log_tail()}"
    )


def fetch(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body of one GET, to check both targets do the same work."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


def _clean_env() -> dict[str, str]:
    """The caller's environment minus FORGEYARD_*, so a developer's settings cannot leak in."""
    return {key: value for key, value in os.environ.items() if not key.startswith("FORGEYARD_")}


class Session:
    """Owns the temp dir and every server of one run; closing it stops them all.

    Servers start lazily and are shared by the benchmarks of the run, so ``python -m bench``
    pays each start-up once. Stopping is registered before a server is awaited, so a server
    that never gets ready is still stopped.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self._stack = contextlib.ExitStack()
        self._servers: dict[str, Server] = {}
        self.workdir = Path()

    def __enter__(self) -> Session:
        tmp = tempfile.TemporaryDirectory(prefix="forgeyard-bench-")
        self.workdir = Path(self._stack.enter_context(tmp))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def forgeyard(self) -> Server:
        """``forgeyard serve`` on a fresh data dir (new SQLite DB, migrated, new secret key),
        set up with one owner (``OWNER_EMAIL``, ``OWNER_PASSWORD``).

        The plan limits are lifted so that wrk measures the work, not the 429s; the limiter
        still counts every request, as it does in production.
        """
        if FORGEYARD not in self._servers:
            data_dir = self.workdir / "data"
            env = _clean_env() | {
                "FORGEYARD_DATA_DIR": str(data_dir),
                "FORGEYARD_LOG_FORMAT": "json",
                "FORGEYARD_AUTH__PLANS": UNLIMITED_PLANS,
                "FORGEYARD_AUTH__COOKIE_SECURE": "false",
            }
            self._set_up(env)
            port = free_port()
            argv = [sys.executable, "-m", "forgeyard", "serve", "--listen", f"{HOST}:{port}"]
            # cwd is the temp dir so no .env of the checkout is read.
            server = self._start(FORGEYARD, argv, env, self.workdir, port)
            wait_ready(server, "/readyz")
        return self._servers[FORGEYARD]

    def _set_up(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "forgeyard"]
        owner = ["--email", OWNER_EMAIL, "--name", "Bench", "--organization", "Bench"]
        for argv in (["db", "upgrade"], ["admin", "create-owner", *owner]):
            subprocess.run(
                [*command, *argv],
                cwd=self.workdir,
                env=env | {"FORGEYARD_OWNER_PASSWORD": OWNER_PASSWORD},
                check=True,
                capture_output=True,
            )

    def baseline(self) -> Server:
        """The bare Starlette app of ``bench/baseline_app.py``, served like Forgeyard."""
        if BASELINE not in self._servers:
            port = free_port()
            argv = [sys.executable, "-m", "bench.baseline_app", "--host", HOST, "--port", str(port)]
            server = self._start(BASELINE, argv, _clean_env(), REPO_ROOT, port)
            wait_ready(server, "/healthz")
        return self._servers[BASELINE]

    def _start(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int
    ) -> Server:
        log_path = self.workdir / f"{name}.log"
        log: IO[bytes] = self._stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        server = Server(name, process, port, log_path)
        self._stack.callback(stop, server)
        self._servers[name] = server
        return server


def assert_same_response(path: str, servers: list[Server]) -> None:
    """A ratio only means something if both targets send the same answer."""
    answers = {server.name: fetch(server.url(path)) for server in servers}
    if len(set(answers.values())) != 1 or next(iter(answers.values()))[0] != 200:
        shown = "\n".join(f"  {name}: {answer}" for name, answer in answers.items())
        raise BenchError(f"targets answer GET {path} differently:\n{shown}")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Target:
    """One thing to drive: a server, the path asked for, and the headers sent with it."""

    server: Server
    path: str
    headers: tuple[str, ...] = ()


def drive(benchmark: str, targets: list[Target], options: Options) -> dict[str, list[WrkResult]]:
    """Warm each target up, then run them in turn, round after round.

    Interleaving spreads the drift of a noisy two-core machine over both targets instead of
    letting it land on whichever ran second.
    """
    for target in targets:
        _progress(f"{benchmark}: warming up {target.server.name} ({options.warmup_s} s)")
        run_wrk(target.server.url(target.path), options.warmup_s, options, target.headers)
    runs: dict[str, list[WrkResult]] = {target.server.name: [] for target in targets}
    for round_no in range(1, options.rounds + 1):
        for target in targets:
            result = _measure(target, options)
            runs[target.server.name].append(result)
            _progress(
                f"{benchmark}: round {round_no}/{options.rounds} {target.server.name}: "
                f"{result.requests_per_s:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                f"p99 {result.p99_ms:.2f} ms"
            )
    return runs


def _measure(target: Target, options: Options) -> WrkResult:
    """One wrk run; a server that died under load is an error, not a slow figure."""
    server = target.server
    result = run_wrk(server.url(target.path), options.duration_s, options, target.headers)
    if server.process.poll() is not None:
        raise BenchError(f"{server.name} exited under load; log tail:\n{server.log_tail()}")
    errors = {kind: count for kind, count in result.socket_errors.items() if count}
    if errors:
        _progress(f"warning: socket errors against {server.name}: {errors}")
    return result


def compare(benchmark: str, path: str, session: Session) -> list[Row]:
    """Forgeyard against the bare baseline on one path: the baseline row, then Forgeyard's."""
    baseline, forgeyard = session.baseline(), session.forgeyard()
    assert_same_response(path, [baseline, forgeyard])
    return measure_against_baseline(
        benchmark, Target(forgeyard, path), Target(baseline, path), session.options
    )


def measure_against_baseline(
    benchmark: str, forgeyard: Target, baseline: Target, options: Options
) -> list[Row]:
    """Both targets driven in the same run: the baseline row, then Forgeyard's with the ratio."""
    runs = drive(benchmark, [baseline, forgeyard], options)
    base_row = to_row(benchmark, BASELINE, runs[BASELINE])
    row = to_row(benchmark, FORGEYARD, runs[FORGEYARD])
    ratio = round(row.requests_per_s / base_row.requests_per_s, 4)
    return [base_row, replace(row, ratio_to_baseline=ratio)]


def to_row(benchmark: str, target: str, rounds: list[WrkResult]) -> Row:
    """Median of the rounds, figure by figure; the rounds themselves go to the JSON file."""
    return Row(
        benchmark=benchmark,
        target=target,
        requests_per_s=round(statistics.median(r.requests_per_s for r in rounds), 3),
        p50_ms=round(statistics.median(r.p50_ms for r in rounds), 3),
        p99_ms=round(statistics.median(r.p99_ms for r in rounds), 3),
        ratio_to_baseline=None,
        rounds=rounds,
    )
