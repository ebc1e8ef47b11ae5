"""Findings across analyses: matching a new analysis's findings to the repository's by
fingerprint, and the queries the findings endpoints answer.

A finding keeps its id while its fingerprint lasts. After each analysis: fingerprints seen
for the first time are ``new``; ``new`` ones seen again become ``open``; ones no longer seen
become ``fixed``; a ``fixed`` one that comes back is ``new`` again; ``ignored`` stays
ignored whatever happens. Writes are batched: an analysis of a large code base produces
tens of thousands of rows, and only what changed is updated.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.ids import new_id
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.analysis import Finding, FindingOccurrence, FindingStatus
from forgeyard.models.repo import Repository

BATCH = 1000
OPEN_STATUSES = (FindingStatus.NEW.value, FindingStatus.OPEN.value)
# What may change about a finding while its fingerprint stays (code moved down a file).
_LOCATION = ("path", "line_start", "line_end", "message", "snippet", "severity", "fixable")


@dataclass(frozen=True)
class Seen:
    """One finding of the analysis being recorded, fingerprint already assigned."""

    fingerprint: str
    detector: str
    rule_id: str
    severity: str
    path: str
    line_start: int
    line_end: int
    message: str
    snippet: str
    symbol: str | None
    fixable: bool


@dataclass(frozen=True)
class Scope:
    """What an analysis looked at: only findings inside it can be found gone (fixed). A
    detector switched off or a path excluded leaves its findings as they were."""

    detectors: frozenset[str]
    excluded_paths: tuple[str, ...] = ()

    def covers(self, detector: str, path: str) -> bool:
        return detector in self.detectors and not is_excluded(path, self.excluded_paths)


def is_excluded(path: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)


@dataclass(frozen=True)
class Outcome:
    open_by_severity: dict[str, int]
    new_by_severity: dict[str, int]
    fixed: int


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


async def reconcile(
    *,
    session: AsyncSession,
    organization_id: str,
    repository_id: str,
    analysis_id: str,
    seen: Sequence[Seen],
    scope: Scope,
) -> Outcome:
    """Record ``seen`` as analysis ``analysis_id``'s findings and move every status on."""
    now = utcnow()
    known = {
        row.fingerprint: row
        for row in (
            await session.execute(
                select(
                    Finding.id,
                    Finding.fingerprint,
                    Finding.status,
                    Finding.detector,
                    *(getattr(Finding, column) for column in _LOCATION),
                ).where(Finding.repository_id == repository_id)
            )
        ).all()
    }
    current = {finding.fingerprint: finding for finding in seen}
    fresh = [f for fp, f in current.items() if fp not in known]
    back_fps = [fp for fp in current if fp in known and known[fp].status == FindingStatus.FIXED]
    back = [known[fp].id for fp in back_fps]
    gone = [
        row.id
        for fp, row in known.items()
        if fp not in current
        and row.status in OPEN_STATUSES
        and scope.covers(row.detector, row.path)
    ]
    moved = [
        {"b_id": known[fp].id, **{c: getattr(f, c) for c in _LOCATION}, "updated_at": now}
        for fp, f in current.items()
        if fp in known and any(getattr(f, c) != getattr(known[fp], c) for c in _LOCATION)
    ]
    # Last analysis's new ones are open now; then what is gone, back or moved.
    await session.execute(
        update(Finding)
        .where(Finding.repository_id == repository_id, Finding.status == FindingStatus.NEW)
        .values(status=FindingStatus.OPEN, updated_at=now)
    )
    for ids in _chunks(gone):
        await session.execute(
            update(Finding)
            .where(Finding.id.in_(ids))
            .values(status=FindingStatus.FIXED, fixed_analysis_id=analysis_id, updated_at=now)
        )
    for ids in _chunks(back):
        await session.execute(
            update(Finding)
            .where(Finding.id.in_(ids))
            .values(status=FindingStatus.NEW, fixed_analysis_id=None, updated_at=now)
        )
    await _move(session, moved)
    new_ids = await _insert(session, organization_id, repository_id, analysis_id, fresh, now)
    present = [known[fp].id for fp in current if fp in known] + new_ids
    for ids in _chunks(present):
        await session.execute(
            insert(FindingOccurrence),
            [{"analysis_id": analysis_id, "finding_id": finding_id} for finding_id in ids],
        )
    open_counts = Counter(
        f.severity
        for fp, f in current.items()
        if fp not in known or known[fp].status != FindingStatus.IGNORED
    )
    new_counts = Counter(f.severity for f in fresh) + Counter(
        current[fp].severity for fp in back_fps
    )
    await session.flush()
    return Outcome(dict(open_counts), dict(new_counts), len(gone))


async def _move(session: AsyncSession, moved: list[dict[str, Any]]) -> None:
    if not moved:
        return
    statement = (
        update(Finding.__table__)  # type: ignore[arg-type]
        .where(Finding.__table__.c.id == bindparam("b_id"))
        .values({c: bindparam(c) for c in (*_LOCATION, "updated_at")})
    )
    for rows in _chunks(moved):
        await session.execute(statement, list(rows))


async def _insert(
    session: AsyncSession,
    organization_id: str,
    repository_id: str,
    analysis_id: str,
    fresh: Sequence[Seen],
    now: datetime,
) -> list[str]:
    rows = [
        {
            "id": new_id("fnd"),
            "organization_id": organization_id,
            "repository_id": repository_id,
            "fingerprint": f.fingerprint,
            "detector": f.detector,
            "rule_id": f.rule_id,
            "severity": f.severity,
            "path": f.path,
            "line_start": f.line_start,
            "line_end": f.line_end,
            "message": f.message,
            "snippet": f.snippet,
            "symbol": f.symbol,
            "fixable": f.fixable,
            "status": FindingStatus.NEW.value,
            "first_analysis_id": analysis_id,
            "created_at": now,
            "updated_at": now,
        }
        for f in fresh
    ]
    for batch in _chunks(rows):
        await session.execute(insert(Finding), list(batch))
    return [str(row["id"]) for row in rows]


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class FindingFilters:
    repository_id: str | None = None
    analysis_id: str | None = None
    severity: str | None = None
    detector: str | None = None
    status: str | None = None
    path: str | None = None  # a prefix: a folder or one file


def _filtered(who: Principal, filters: FindingFilters) -> Any:
    statement = select(Finding).where(Finding.organization_id == who.organization_id)
    if filters.repository_id is not None:
        statement = statement.where(Finding.repository_id == filters.repository_id)
    if filters.analysis_id is not None:
        statement = statement.join(
            FindingOccurrence,
            (FindingOccurrence.finding_id == Finding.id)
            & (FindingOccurrence.analysis_id == filters.analysis_id),
        )
    if filters.severity is not None:
        statement = statement.where(Finding.severity == filters.severity)
    if filters.detector is not None:
        statement = statement.where(Finding.detector == filters.detector)
    if filters.status is not None:
        statement = statement.where(Finding.status == filters.status)
    if filters.path is not None:
        escaped = filters.path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(Finding.path.like(f"{escaped}%", escape="\\"))
    return statement


async def list_findings(
    *, session: AsyncSession, who: Principal, filters: FindingFilters, page: PageParams
) -> tuple[list[Finding], int]:
    statement = _filtered(who, filters).order_by(Finding.id)
    return await paginate(session, statement, page)


async def summary(
    *, session: AsyncSession, who: Principal, filters: FindingFilters
) -> dict[str, Any]:
    matching = _filtered(who, filters).subquery()
    rows = (
        await session.execute(
            select(matching.c.severity, matching.c.status, func.count()).group_by(
                matching.c.severity, matching.c.status
            )
        )
    ).all()
    by_severity: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for severity, status, count in rows:
        by_severity[severity] += count
        by_status[status] += count
    return {
        "total": sum(by_status.values()),
        "by_severity": dict(by_severity),
        "by_status": dict(by_status),
    }


async def by_detector(
    *, session: AsyncSession, who: Principal, filters: FindingFilters
) -> list[dict[str, Any]]:
    matching = _filtered(who, filters).subquery()
    rows = (
        await session.execute(
            select(matching.c.detector, matching.c.severity, func.count())
            .group_by(matching.c.detector, matching.c.severity)
            .order_by(matching.c.detector)
        )
    ).all()
    groups: dict[str, Counter[str]] = {}
    for detector, severity, count in rows:
        groups.setdefault(detector, Counter())[severity] += count
    return [
        {"detector": name, "total": sum(counts.values()), "by_severity": dict(counts)}
        for name, counts in groups.items()
    ]


async def get_finding(*, session: AsyncSession, who: Principal, finding_id: str) -> Finding:
    return await get_owned(
        session,
        Finding,
        finding_id,
        organization_id=who.organization_id,
        kind="finding",
        prefix="fnd",
    )


async def _seen_last(session: AsyncSession, finding: Finding) -> bool:
    """Whether the repository's latest analysis saw ``finding``."""
    latest = await session.scalar(
        select(Repository.last_analysis_id).where(Repository.id == finding.repository_id)
    )
    seen = await session.scalar(
        select(FindingOccurrence.finding_id).where(
            FindingOccurrence.analysis_id == latest, FindingOccurrence.finding_id == finding.id
        )
    )
    return seen is not None


async def set_status(
    *, session: AsyncSession, who: Principal, finding_id: str, status: str, reason: str | None
) -> Finding:
    """Ignore a finding (with a reason), or take the ignore back: it is open again, or fixed
    if the latest analysis no longer saw it."""
    finding = await get_finding(session=session, who=who, finding_id=finding_id)
    if status == FindingStatus.IGNORED:
        if not reason:
            raise InvalidInputError("say why the finding is ignored", details={"field": "reason"})
        finding.status = FindingStatus.IGNORED
        finding.ignored_reason = reason
        finding.ignored_by_id = who.actor_id or None
        finding.ignored_at = utcnow()
    else:
        if finding.status != FindingStatus.IGNORED:
            raise InvalidInputError(
                f"only an ignored finding can be reopened; this one is {finding.status}",
                details={"field": "status"},
            )
        finding.status = (
            FindingStatus.OPEN if await _seen_last(session, finding) else FindingStatus.FIXED
        )
        finding.ignored_reason = finding.ignored_by_id = None
        finding.ignored_at = None
    await session.flush()
    return finding
