"""What a change does to findings: the detectors run on the files it touched, before and
after, and the findings only the after side has are new. Used by update jobs' analyze stage;
no database, no cache (a handful of files)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from forgeyard.analysis.detectors import DETECTORS
from forgeyard.analysis.detectors.base import FileRef
from forgeyard.analysis.engine import run_detectors
from forgeyard.analysis.fingerprints import assign_fingerprints
from forgeyard.kernel import git


async def new_findings(
    repository: Path,
    base: str,
    head: str,
    paths: list[str],
    *,
    enabled: dict[str, bool],
    time_limit: float,
) -> list[dict[str, str]]:
    """The findings in ``paths`` at ``head`` that ``base`` did not have (detector, rule,
    path, message). ``repository`` is any git directory or work tree holding both commits;
    ``enabled`` is the repository's detectors setting."""
    before = await _fingerprints(repository, base, paths, enabled, time_limit)
    after = await _fingerprints(repository, head, paths, enabled, time_limit)
    return [finding for fingerprint, finding in after.items() if fingerprint not in before]


async def _fingerprints(
    repository: Path, commit: str, paths: list[str], enabled: dict[str, bool], time_limit: float
) -> dict[str, dict[str, str]]:
    wanted = set(paths)
    entries = [e for e in await git.list_files(repository, commit) if e.path in wanted]
    if not entries:
        return {}
    # Only per-file findings: what project-wide detectors combine across the whole tree
    # (dead code, duplicates) cannot be judged from a handful of files.
    detectors = [d() for name, d in DETECTORS.items() if enabled.get(name, True)]
    root = Path(tempfile.mkdtemp(prefix="forgeyard-change-"))
    try:
        await git.write_blobs(repository, entries, root)
        reports = await run_detectors(
            root=root,
            files=[FileRef(e.path, e.blob, e.size) for e in entries],
            detectors=detectors,
            processes=1,
            time_limit=time_limit,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    found: dict[str, dict[str, str]] = {}
    for detector, by_path in reports.items():
        for path, report in by_path.items():
            for finding, fingerprint in assign_fingerprints(
                path, report.findings, detector=detector
            ):
                found[fingerprint] = {
                    "detector": detector,
                    "rule": finding.rule_id,
                    "path": path,
                    "line": str(finding.line_start),
                    "message": finding.message,
                }
    return found
