"""The evidence an update job gathered, for its confidence: its tests, what the last scan
knew of the release, its new findings, and how the same update fared in the organization's
other repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.deps import confidence
from forgeyard.deps.build import StageResult
from forgeyard.deps.detection import semver_change
from forgeyard.deps.ecosystems import ECOSYSTEMS
from forgeyard.kernel.db import utcnow
from forgeyard.models.deps import Dependency, DependencyUpdate, UpdateJob


async def assess(
    session: AsyncSession,
    record: UpdateJob,
    tests: StageResult | None,
    new_findings: int,
) -> dict[str, Any]:
    """The job's confidence (``deps/confidence.py``) from what it and the scans saw."""
    detected = await _detected(session, record)
    first = record.changes[0]
    ecosystem = ECOSYSTEMS[first["ecosystem"]]
    change = "major"
    if first.get("from_version"):
        change = semver_change(ecosystem, first["from_version"], first["to_version"])
    succeeded, failed = await _peers(session, record)
    evidence = confidence.Evidence(
        tests="not_run" if tests is None or tests.skipped else "passed",
        test_summary=tests.summary if tests else None,
        semver_change=change,
        age_days=_age(detected),
        deprecated=detected.deprecated if detected else None,
        current_yanked=bool(detected and detected.current_yanked),
        new_findings=new_findings,
        peers_succeeded=succeeded,
        peers_failed=failed,
    )
    return confidence.assess(evidence)


async def _detected(session: AsyncSession, record: UpdateJob) -> DependencyUpdate | None:
    first = record.changes[0]
    found = await session.scalar(
        select(DependencyUpdate)
        .join(Dependency, Dependency.id == DependencyUpdate.dependency_id)
        .where(
            Dependency.id == first.get("dependency_id"),
            DependencyUpdate.candidate_version == first["to_version"],
        )
    )
    return found


def _age(detected: DependencyUpdate | None) -> float | None:
    if detected is None or detected.released_at is None:
        return None
    return (utcnow() - detected.released_at).total_seconds() / 86400


async def _peers(session: AsyncSession, record: UpdateJob) -> tuple[int, int]:
    rows = await session.scalars(
        select(UpdateJob).where(
            UpdateJob.organization_id == record.organization_id,
            UpdateJob.repository_id != record.repository_id,
            UpdateJob.dependency == record.dependency,
            UpdateJob.to_version == record.to_version,
            UpdateJob.outcome.is_not(None),
        )
    )
    outcomes = [row.outcome for row in rows]
    return outcomes.count("completed"), outcomes.count("failed")
