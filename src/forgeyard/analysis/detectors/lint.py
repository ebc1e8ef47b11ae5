"""Lint: ruff's own binary, run once per batch, read through its JSON output.

``--isolated`` makes ruff ignore the repository's configuration, so a file's result depends
on its content alone (the cache is per blob) and a repository cannot point ruff elsewhere.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import orjson
from ruff import find_ruff_bin  # type: ignore[import-untyped]

from forgeyard.analysis.detectors import severity
from forgeyard.analysis.detectors.base import (
    Detector,
    FileReport,
    RawFinding,
    enclosing_symbols,
    parse_python,
    read_text,
    snippet,
)

# ruff's defaults (E4, E7, E9, F) plus warnings, bugbear, pyupgrade and simplify; security
# rules (S) are left to bandit, style that a formatter settles is left out.
SELECT = "E4,E7,E9,F,W,B,UP,SIM"
TIME_LIMIT_SECONDS = 600.0
# One ruff call takes at most this many characters of paths, far below any ARG_MAX.
MAX_ARGV_CHARS = 100_000
# Diagnostics that say ruff could not read the file (not UTF-8) or parse it (Python 2).
_UNREADABLE_CODES = {"", "invalid-syntax", "E999", "E902"}


class LintDetector(Detector):
    name = "lint"
    version = f"ruff {package_version('ruff')}/1"

    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        reports = {path: FileReport() for path in paths}
        by_file: dict[str, list[dict[str, Any]]] = {}
        for batch in _batches(paths):
            for diagnostic in _run_ruff(root, batch):
                relative = Path(diagnostic["filename"]).resolve().relative_to(root.resolve())
                by_file.setdefault(relative.as_posix(), []).append(diagnostic)
        for path, diagnostics in by_file.items():
            if path in reports:
                reports[path] = _report(root / path, diagnostics)
        return reports


def _batches(paths: list[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for path in paths:
        if batch and size + len(path) > MAX_ARGV_CHARS:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += len(path) + 1
    if batch:
        yield batch


def _run_ruff(root: Path, paths: list[str]) -> list[dict[str, Any]]:
    # "--" so that a file named like an option stays a file.
    argv = [find_ruff_bin(), "check", "--isolated", "--no-cache", "--output-format", "json"]
    argv += ["--select", SELECT, "--exit-zero", "--", *paths]
    done = subprocess.run(  # noqa: S603 - a fixed program; paths come after "--"
        argv, cwd=root, capture_output=True, timeout=TIME_LIMIT_SECONDS, check=False
    )
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[-2000:]
        raise RuntimeError(f"ruff exited with {done.returncode}: {said}")
    diagnostics: list[dict[str, Any]] = orjson.loads(done.stdout or b"[]")
    return diagnostics


def _report(file: Path, diagnostics: list[dict[str, Any]]) -> FileReport:
    lines = read_text(file).splitlines()
    report = FileReport()
    try:
        symbols = enclosing_symbols(parse_python(file.read_bytes()))
    except SyntaxError:
        symbols = {}
    for diagnostic in diagnostics:
        code = str(diagnostic.get("code") or "")
        start = int(diagnostic["location"]["row"])
        if code in _UNREADABLE_CODES:
            report.error = report.error or f"line {start}: {diagnostic['message']}"
            continue
        end = int((diagnostic.get("end_location") or diagnostic["location"])["row"])
        report.findings.append(
            RawFinding(
                rule_id=code,
                severity=severity.ruff_severity(code),
                line_start=start,
                line_end=max(end, start),
                message=diagnostic["message"],
                snippet=snippet(lines, start, end),
                symbol=symbols.get(start),
                fixable=diagnostic.get("fix") is not None,
            )
        )
    return report
