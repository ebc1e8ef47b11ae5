"""Runs wrk and turns its text report into numbers.

wrk has no machine-readable output short of a Lua script; its ``--latency`` text is stable
across 4.x, so parsing it keeps the harness free of scripts to maintain.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from bench.model import BenchError, Options, WrkResult

_REQUESTS_PER_S = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"^\s*Socket errors:\s+(.*)$", re.MULTILINE)
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
# Time for wrk to connect and report on top of the duration before it counts as hung.
_GRACE_S = 60


def require_wrk() -> str:
    """Fail early and say how to get wrk, rather than after servers were started."""
    path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not on PATH; run `bash bench/ensure-tools.sh` (make bench does)")
    return path


def wrk_version() -> str:
    """Recorded with the results: figures from different wrk builds are not comparable."""
    out = subprocess.run(
        [require_wrk(), "--version"], capture_output=True, text=True, check=False, timeout=10
    )
    first = (out.stdout or out.stderr).splitlines()
    return first[0].strip() if first else "unknown"


def run_wrk(url: str, seconds: int, options: Options, headers: tuple[str, ...] = ()) -> WrkResult:
    """Drive ``url`` for ``seconds``; refuse results that include failed responses.

    ``headers`` are ``"Name: value"`` lines sent with every request (credentials).
    """
    argv = [
        require_wrk(),
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{seconds}s",
        "--latency",
        *[arg for header in headers for arg in ("-H", header)],
        url,
    ]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=seconds + _GRACE_S
    )
    if out.returncode != 0:
        raise BenchError(f"wrk exited with {out.returncode} on {url}:\n{out.stderr}{out.stdout}")
    result = parse_wrk(out.stdout)
    if result.non_2xx:
        raise BenchError(
            f"{result.non_2xx} of {result.requests} responses from {url} were not 2xx/3xx; "
            f"refusing to report a figure:\n{out.stdout}"
        )
    return result


def parse_wrk(text: str) -> WrkResult:
    """Read req/s, p50, p99 and error counts from wrk's ``--latency`` report."""
    rps = _REQUESTS_PER_S.search(text)
    percentiles = {
        float(pct): _to_ms(value, unit) for pct, value, unit in _PERCENTILE.findall(text)
    }
    total = _TOTAL.search(text)
    if rps is None or total is None or not {50.0, 99.0} <= percentiles.keys():
        raise BenchError(f"could not read wrk's report:\n{text}")
    non_2xx = _NON_2XX.search(text)
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=percentiles[50.0],
        p99_ms=percentiles[99.0],
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=_parse_socket_errors(text),
    )


def _to_ms(value: str, unit: str) -> float:
    """wrk scales each figure to its own unit (``812.00us``, ``1.23ms``, ``2.01s``)."""
    return round(float(value) * _TO_MS[unit], 3)


def _parse_socket_errors(text: str) -> dict[str, int]:
    """``Socket errors: connect 0, read 3, write 0, timeout 1`` → ``{"read": 3, ...}``."""
    match = _SOCKET_ERRORS.search(text)
    if match is None:
        return {}
    pairs = (part.split() for part in match.group(1).split(","))
    return {name: int(count) for name, count in pairs}
