"""Large files, in any language; and every file's line counts, which the score needs.

Its report for a file carries ``lines`` (physical lines), ``loc`` (lines that are not blank)
and ``bytes`` whatever the language, so the health score can weigh findings by the size of
the whole code base. A binary file counts no lines.
"""

from __future__ import annotations

from pathlib import Path

from forgeyard.analysis.detectors import severity
from forgeyard.analysis.detectors.base import Detector, FileReport, RawFinding

MAX_LINES = 1_000
MAX_BYTES = 1024 * 1024
# A NUL byte among the first bytes marks a binary file, the way git decides it.
BINARY_SNIFF_BYTES = 8000


class LargeFilesDetector(Detector):
    name = "large_files"
    version = f"forgeyard/{MAX_LINES}/{MAX_BYTES}/1"

    def applies_to(self, path: str) -> bool:
        return True

    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        return {path: measure(root / path) for path in paths}


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_SNIFF_BYTES]


def measure(file: Path) -> FileReport:
    data = file.read_bytes()
    binary = is_binary(data)
    lines = [] if binary else data.splitlines()
    report = FileReport(
        metrics={
            "lines": float(len(lines)),
            "loc": float(sum(1 for line in lines if line.strip())),
            "bytes": float(len(data)),
        },
        facts={"binary": binary},
    )
    if len(lines) > MAX_LINES:
        count = f"{len(lines):,} lines (over {MAX_LINES:,})"
        report.findings.append(_finding("LARGE-LINES", count))
    if len(data) > MAX_BYTES:
        size = f"{len(data) / 1024 / 1024:.1f} MiB (over {MAX_BYTES // 1024 // 1024} MiB)"
        report.findings.append(_finding("LARGE-BYTES", size))
    return report


def _finding(rule_id: str, size: str) -> RawFinding:
    return RawFinding(
        rule_id=rule_id,
        severity=severity.LARGE_FILE,
        line_start=1,
        line_end=1,
        message=f"large file: {size}",
        snippet="",  # the whole file is the finding; its path identifies it
        symbol=None,
    )
