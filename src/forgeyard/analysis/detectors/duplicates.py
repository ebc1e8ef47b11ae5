"""Duplicated blocks of code, in any language, within a file and across files.

Per file (cached per blob) the worker keeps one fact: a hash of every window of
``WINDOW_LINES`` consecutive meaningful lines, whitespace collapsed. :meth:`combine` finds the
hashes seen more than once in the project and merges each file's overlapping duplicated
windows into blocks, one finding per block. A block repeated in more than
``MAX_OCCURRENCES`` places is boilerplate (licence headers, generated code) and is left out.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forgeyard.analysis.detectors import severity
from forgeyard.analysis.detectors.base import Detector, FileReport, ProjectFinding, RawFinding
from forgeyard.analysis.detectors.large_files import MAX_BYTES, is_binary

WINDOW_LINES = 6
MIN_WINDOW_CHARACTERS = 120  # six short lines (closing brackets, `else:`) are not a block
MAX_OCCURRENCES = 20
_WHITESPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w")

Window = tuple[str, int, int, str]  # hash, first line, last line, its first line normalised


class DuplicatesDetector(Detector):
    name = "duplicates"
    version = f"forgeyard/{WINDOW_LINES}/{MIN_WINDOW_CHARACTERS}/1"

    def applies_to(self, path: str) -> bool:
        return True

    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        return {path: _windows_report((root / path).read_bytes()) for path in paths}

    def combine(self, reports: Mapping[str, FileReport]) -> list[ProjectFinding]:
        windows = {path: _windows(report) for path, report in reports.items()}
        places: dict[str, list[tuple[str, int]]] = {}
        for path, file_windows in windows.items():
            for window in file_windows:
                places.setdefault(window[0], []).append((path, window[1]))
        counts = Counter({digest: len(where) for digest, where in places.items()})
        findings = []
        for path in sorted(windows):
            for block in _blocks(windows[path], counts):
                findings.append(ProjectFinding(path, _finding(path, block, places)))
        return findings


def _normalise(line: str) -> str:
    return _WHITESPACE.sub(" ", line).strip()


def _windows_report(data: bytes) -> FileReport:
    if is_binary(data) or len(data) > MAX_BYTES:
        return FileReport()
    kept = [
        (number, text)
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1)
        if _WORD.search(text := _normalise(line))
    ]
    windows = []
    for start in range(len(kept) - WINDOW_LINES + 1):
        chunk = kept[start : start + WINDOW_LINES]
        joined = "\n".join(text for _, text in chunk)
        if len(joined) < MIN_WINDOW_CHARACTERS:
            continue
        digest = hashlib.blake2b(joined.encode(), digest_size=8).hexdigest()
        windows.append([digest, chunk[0][0], chunk[-1][0], chunk[0][1][:200]])
    return FileReport(facts={"windows": windows})


def _windows(report: FileReport) -> list[Window]:
    raw: list[list[Any]] = report.facts.get("windows", [])
    return [(str(w[0]), int(w[1]), int(w[2]), str(w[3])) for w in raw]


def _blocks(windows: list[Window], counts: Counter[str]) -> list[list[Window]]:
    """Runs of duplicated windows that overlap or touch, each run one block."""
    blocks: list[list[Window]] = []
    for window in windows:
        if not 2 <= counts[window[0]] <= MAX_OCCURRENCES:
            continue
        if blocks and window[1] <= blocks[-1][-1][2] + 1:
            blocks[-1].append(window)
        else:
            blocks.append([window])
    return blocks


def _finding(
    path: str, block: list[Window], places: Mapping[str, list[tuple[str, int]]]
) -> RawFinding:
    first, last = block[0][1], max(window[2] for window in block)
    others = [place for place in places[block[0][0]] if place != (path, first)]
    where = ", ".join(f"{other}:{line}" for other, line in others[:3])
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    return RawFinding(
        rule_id="DUP",
        severity=severity.DUPLICATE,
        line_start=first,
        line_end=last,
        message=f"{last - first + 1} lines duplicated at {where}{more}",
        snippet=block[0][3],
        symbol=None,
    )
