"""``python -m bench [NAME ...]``: run the benchmarks, print the table, keep the JSON.

A benchmark is a function taking the run's :class:`~bench.harness.Session` and returning its
rows; adding one is a module next to ``http_healthz`` and one line in ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from bench import analysis, ci, deps_detection, http_auth_me, http_healthz, queue
from bench.harness import REPO_ROOT, Session
from bench.model import BenchError, Options, Row
from bench.report import format_table, write_json
from bench.wrk import wrk_version

Benchmark = Callable[[Session], list[Row]]

# Run in this order by `python -m bench`; later issues append theirs.
BENCHMARKS: dict[str, Benchmark] = {
    http_healthz.NAME: http_healthz.run,
    "auth_me": http_auth_me.run,
    queue.NAME: queue.run,
    analysis.NAME: analysis.run,
    deps_detection.NAME: deps_detection.run,
    ci.NAME: ci.run,
}
# Benchmarks that drive no HTTP server, so need no wrk.
WITHOUT_WRK = {queue.NAME, analysis.NAME, deps_detection.NAME, ci.NAME}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Drive Forgeyard against its baselines (a bare Starlette app with wrk, "
        "procrastinate's job queue); print and save figures.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--duration", type=_positive, default=10, help="seconds per wrk run (default: 10)"
    )
    parser.add_argument(
        "--rounds", type=_positive, default=2, help="runs per target, interleaved (default: 2)"
    )
    parser.add_argument(
        "--queue-jobs",
        type=_positive,
        default=Options.queue_jobs,
        help=f"jobs loaded up front per queue throughput run (default: {Options.queue_jobs:,})",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    return args


def run(names: list[str], options: Options) -> list[Row]:
    """Every selected benchmark in one session, so the servers start once per run."""
    rows: list[Row] = []
    with Session(options) as session:
        for name in names:
            rows.extend(BENCHMARKS[name](session))
    return rows


def _interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (a killed `make`) unwinds like Ctrl-C, so the servers are still stopped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    options = Options(duration_s=args.duration, rounds=args.rounds, queue_jobs=args.queue_jobs)
    started = datetime.now(UTC).replace(microsecond=0)
    names = list(dict.fromkeys(args.names or BENCHMARKS))
    try:
        needs_wrk = any(name not in WITHOUT_WRK for name in names)
        wrk = wrk_version() if needs_wrk else "not used"
        rows = run(names, options)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print(format_table(rows))
    path = write_json(rows, options, started, wrk)
    print(f"\nresults: {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
