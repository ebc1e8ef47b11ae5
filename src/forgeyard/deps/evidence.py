"""The evidence an update job gathered, for its confidence: its tests, what the last scan
knew of each release, its new findings, and how the same update fared in the organization's
other repositories. A job of several updates (a group) is as risky as its riskiest one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.deps import confidence
from forgeyard.deps.build import StageResult
from forgeyard.deps.detection import semver_change
from forgeyard.deps.ecosystems import ECOSYSTEMS
from forgeyard.kernel.db import utcnow
from forgeyard.models.deps import DependencyUpdate, UpdateJob

CHANGE_RISK = ("patch", "minor", "major")
PEER_JOBS_READ = 1000  # the organization's most recent update jobs looked through


async def assess(
    session: AsyncSession,
    record: UpdateJob,
    tests: StageResult | None,
    new_findings: int,
) -> dict[str, Any]:
    """The job's confidence (``deps/confidence.py``) from what it and the scans saw."""
    verdict = "not_run" if tests is None or tests.skipped else "passed"
    return await _assess(session, record, verdict, tests.summary if tests else None, new_findings)


async def reassess_after_build(
    session: AsyncSession, record: UpdateJob, *, build_status: str, build_label: str
) -> dict[str, Any]:
    """The confidence once the pull request's CI build has ended: a build that did not
    succeed fails the tests factor; one that did counts as the tests passing (the update
    job's own tests passed or did not run: a job whose tests fail opens no pull request)."""
    verdict = "passed" if build_status == "succeeded" else "failed"
    earlier = (record.test_summary or {}).get("summary")
    summary = "; ".join(part for part in (earlier, f"{build_label} {build_status}") if part)
    return await _assess(session, record, verdict, summary, record.new_findings)


async def _assess(
    session: AsyncSession,
    record: UpdateJob,
    tests: str,
    test_summary: str | None,
    new_findings: int | None,
) -> dict[str, Any]:
    detected = await _detected(session, record)
    ages = [_age(detected.get(change["dependency_id"])) for change in record.changes]
    succeeded, failed = await _peers(session, record)
    evidence = confidence.Evidence(
        tests=tests,
        test_summary=test_summary,
        semver_change=max((_change(c) for c in record.changes), key=CHANGE_RISK.index),
        # The youngest release decides; one unknown date leaves the whole age unknown.
        age_days=None if None in ages else min(a for a in ages if a is not None),
        deprecated=next((u.deprecated for u in detected.values() if u.deprecated), None),
        current_yanked=any(u.current_yanked for u in detected.values()),
        new_findings=new_findings,
        peers_succeeded=succeeded,
        peers_failed=failed,
    )
    return confidence.assess(evidence)


def _change(change: dict[str, Any]) -> str:
    if not change.get("from_version"):
        return "major"  # nothing to compare with: assume the worst
    ecosystem = ECOSYSTEMS[change["ecosystem"]]
    try:
        return semver_change(ecosystem, change["from_version"], change["to_version"])
    except ValueError:
        return "major"


async def _detected(session: AsyncSession, record: UpdateJob) -> dict[str, DependencyUpdate]:
    """The scans' updates proposing exactly the versions this job moves to."""
    wanted = {c["dependency_id"]: c["to_version"] for c in record.changes}
    rows = await session.scalars(
        select(DependencyUpdate).where(
            DependencyUpdate.organization_id == record.organization_id,
            DependencyUpdate.dependency_id.in_(list(wanted)),
        )
    )
    return {u.dependency_id: u for u in rows if u.candidate_version == wanted[u.dependency_id]}


def _age(detected: DependencyUpdate | None) -> float | None:
    if detected is None or detected.released_at is None:
        return None
    return (utcnow() - detected.released_at).total_seconds() / 86400


def _moves(job: UpdateJob) -> frozenset[tuple[str, str, str]]:
    return frozenset((c["ecosystem"], c["name"], c["to_version"]) for c in job.changes)


async def _peers(session: AsyncSession, record: UpdateJob) -> tuple[int, int]:
    """Other repositories whose latest finished job made the same moves: how many
    succeeded, how many failed (one vote per repository)."""
    rows = await session.scalars(
        select(UpdateJob)
        .where(
            UpdateJob.organization_id == record.organization_id,
            UpdateJob.repository_id != record.repository_id,
            UpdateJob.outcome.is_not(None),
        )
        .order_by(UpdateJob.created_at.desc())
        .limit(PEER_JOBS_READ)
    )
    wanted = _moves(record)
    latest: dict[str, str] = {}
    for job in rows:
        if wanted <= _moves(job):
            latest.setdefault(job.repository_id, job.outcome or "")
    outcomes = list(latest.values())
    return outcomes.count("completed"), outcomes.count("failed")
