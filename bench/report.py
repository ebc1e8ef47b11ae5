"""Shows the rows as a table and keeps them as JSON, so runs can be compared over time."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from pathlib import Path

from bench.model import Options, Row

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_HEADERS = ("benchmark", "target", "rate", "enqueue/s", "p50 ms", "p99 ms", "vs baseline")


def _cells(row: Row) -> tuple[str, ...]:
    ratio = row.ratio_to_baseline
    enqueue = row.enqueue_per_s
    return (
        row.benchmark,
        row.target,
        f"{row.requests_per_s:,.0f} {row.unit}",
        "" if enqueue is None else f"{enqueue:,.0f}",
        f"{row.p50_ms:.2f}",
        f"{row.p99_ms:.2f}",
        "" if ratio is None else f"{ratio:.2f}x of {row.baseline}",
    )


def format_table(rows: list[Row]) -> str:
    """Text columns left-aligned, figures right-aligned, widths fitted to the content."""
    lines = [_HEADERS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADERS))]
    numeric = {2, 3, 4, 5}

    def render(line: tuple[str, ...]) -> str:
        cells = (
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(lines[0]), rule, *(render(line) for line in lines[1:])])


def write_json(rows: list[Row], options: Options, started: datetime, wrk: str) -> Path:
    """``bench/results/<UTC start>.json`` with the medians and every round behind them."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    document = {
        "started_at": started.isoformat(),
        "options": asdict(options),
        "environment": _environment(wrk),
        "rows": [asdict(row) for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def _environment(wrk: str) -> dict[str, object]:
    """What makes figures comparable or not between two result files (no host names)."""
    names = ("forgeyard", "fastapi", "starlette", "uvicorn", "psycopg", "procrastinate")
    versions = {name: _version(name) for name in names}
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": _cpu_count(),
        "wrk": wrk,
        **versions,
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # psycopg and procrastinate are extras
        return None


def _cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
