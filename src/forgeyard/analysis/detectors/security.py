"""Security: bandit's checks through its own manager, with its default configuration.

Bandit rates every issue twice, by severity and by confidence;
:func:`~forgeyard.analysis.detectors.severity.bandit_severity` folds both into ours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from bandit.core import config as bandit_config  # type: ignore[import-untyped]
from bandit.core import manager as bandit_manager

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


class SecurityDetector(Detector):
    name = "security"
    version = f"bandit {package_version('bandit')}/1"

    def analyse(self, root: Path, paths: list[str]) -> dict[str, FileReport]:
        # Bandit opens files by the names it is given; absolute names keep the worker's
        # current directory out of it.
        names = {str(root / path): path for path in paths}
        manager = _manager()
        manager.files_list = list(names)
        manager.run_tests()
        reports = {path: FileReport() for path in paths}
        for name, reason in manager.get_skipped():
            if name in names:
                reports[names[name]].error = str(reason)
        by_file: dict[str, list[Any]] = {}
        for issue in manager.get_issue_list():
            by_file.setdefault(issue.fname, []).append(issue)
        for name, issues in by_file.items():
            if name in names:
                reports[names[name]].findings.extend(_findings(Path(name), issues))
        return reports


def _manager() -> Any:
    # Keep bandit's progress bar (and its INFO logging) off: stdout is the worker's channel.
    logging.getLogger("bandit").setLevel(logging.WARNING)
    return bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True)


def _findings(file: Path, issues: Iterable[Any]) -> list[RawFinding]:
    lines = read_text(file).splitlines()
    try:
        symbols = enclosing_symbols(parse_python(file.read_bytes()))
    except SyntaxError:
        symbols = {}
    findings = []
    for issue in issues:
        span = [line for line in (issue.linerange or [issue.lineno]) if line > 0] or [1]
        start, end = min(span), max(span)
        findings.append(
            RawFinding(
                rule_id=issue.test_id,
                severity=severity.bandit_severity(issue.severity, issue.confidence),
                line_start=start,
                line_end=end,
                message=f"{issue.text} (severity {issue.severity}, confidence {issue.confidence})",
                snippet=snippet(lines, start, end),
                symbol=symbols.get(start),
            )
        )
    return findings
