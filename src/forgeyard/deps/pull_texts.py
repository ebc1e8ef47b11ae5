"""What an update job writes for people: its branch name, the pull request's title and body,
and the diff and test summaries the API returns."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from forgeyard.deps import worktrees
from forgeyard.deps.build import StageResult
from forgeyard.kernel.git import check_ref_name
from forgeyard.models.deps import UpdateJob

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def branch_name(record: UpdateJob) -> str:
    """``forgeyard/<ecosystem>/<name>-<version>``, or ``forgeyard/group/<group>-<hash>`` (the
    hash of the moves, so a group's next set of updates gets a branch of its own); a name git
    would refuse falls back to the job's id."""
    if record.group_name:
        moves = sorted(f"{c['ecosystem']}:{c['name']}@{c['to_version']}" for c in record.changes)
        digest = hashlib.sha256("\n".join(moves).encode()).hexdigest()[:8]
        candidate = f"forgeyard/group/{_slug(record.group_name)}-{digest}"
    else:
        first = record.changes[0]
        name, version = _slug(first["name"]), _slug(first["to_version"])
        candidate = f"forgeyard/{first['ecosystem']}/{name}-{version}"
    try:
        return check_ref_name(candidate)
    except ValueError:
        return f"forgeyard/update-{record.job_id.lower()}"


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-.") or "x"


def title(record: UpdateJob) -> str:
    if record.group_name:
        return f"Update {record.group_name} ({len(record.changes)} updates)"
    first = record.changes[0]
    return f"Update {first['name']} to {first['to_version']}"


def body(record: UpdateJob, assessed: dict[str, Any]) -> str:
    lines = ["| package | from | to | manifest |", "|---|---|---|---|"]
    for change in record.changes:
        lines.append(
            f"| {change['name']} | {change.get('from_version') or '?'} | "
            f"{change['to_version']} | {change['manifest_path']} |"
        )
    lines.append("")
    lines.append(f"Confidence: {assessed['score']} ({assessed['evidence']['level']} evidence)")
    for factor in assessed["factors"]:
        lines.append(f"- {factor['name']}: {factor['detail']}")
    return "\n".join(lines)


def diff_summary(diff: list[worktrees.FileChange]) -> dict[str, Any]:
    return {
        "files": [
            {"path": c.path, "additions": c.additions, "deletions": c.deletions} for c in diff
        ],
        "files_changed": len(diff),
        "additions": sum(c.additions for c in diff),
        "deletions": sum(c.deletions for c in diff),
    }


def test_summary(tests: StageResult | None) -> dict[str, Any] | None:
    if tests is None:
        return None
    return {
        "ran": not tests.skipped,
        "passed": tests.passed and not tests.skipped,
        "summary": tests.summary,
        "reason": tests.reason,
    }
