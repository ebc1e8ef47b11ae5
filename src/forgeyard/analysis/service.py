"""Analyses: starting them within the plan's limits, reading them, and their state changes.

Functions take keyword arguments, scope every query to the caller's organization, flush and
never commit. An analysis runs as an ``analysis.run`` job (``analysis/pipeline.py``); its
status follows ``ANALYSIS_TRANSITIONS``, and at most one per repository is queued or running
(the unique ``active_key``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.analysis.changes import new_findings
from forgeyard.analysis.detectors import DETECTORS
from forgeyard.auth.principals import Principal
from forgeyard.jobs import emit, enqueue
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import (
    ConflictError,
    InvalidInputError,
    RateLimitedError,
)
from forgeyard.kernel.ids import new_id
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.analysis import (
    ACTIVE_ANALYSIS,
    ANALYSIS_TRANSITIONS,
    Analysis,
    AnalysisStatus,
)
from forgeyard.models.identity import Organization
from forgeyard.models.job import FINISHED, Job, JobStatus
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import PlanLimits, Settings

RUN_KIND = "analysis.run"
# Analyses people start count against the plan; pushes, schedules and uploads are the
# platform doing its job and only wait their turn.
MANUAL = "manual"
# What a change does to findings, for update jobs (analysis/changes.py).
__all__ = ["new_findings"]


def check_detectors(chosen: Mapping[str, bool]) -> None:
    unknown = sorted(set(chosen) - set(DETECTORS))
    if unknown:
        raise InvalidInputError(
            f"unknown detectors: {', '.join(unknown)}; known: {', '.join(sorted(DETECTORS))}",
            details={"field": "detectors"},
        )


def plan_limits(settings: Settings, plan: str) -> PlanLimits:
    return settings.auth.plans.get(plan) or settings.auth.plans["free"]


async def limits_of(
    *, session: AsyncSession, settings: Settings, organization_id: str
) -> PlanLimits:
    """The plan limits of an organization, for work no person started."""
    plan = await session.scalar(select(Organization.plan).where(Organization.id == organization_id))
    return plan_limits(settings, plan or "free")


async def get_analysis(*, session: AsyncSession, who: Principal, analysis_id: str) -> Analysis:
    await settle(session=session, organization_id=who.organization_id)
    return await get_owned(
        session,
        Analysis,
        analysis_id,
        organization_id=who.organization_id,
        kind="analysis",
        prefix="ana",
    )


async def history(
    *,
    session: AsyncSession,
    who: Principal,
    page: PageParams,
    repository_id: str | None = None,
    status: str | None = None,
) -> tuple[list[Analysis], int]:
    statement = (
        select(Analysis)
        .where(Analysis.organization_id == who.organization_id)
        .order_by(Analysis.id.desc())
    )
    if repository_id is not None:
        statement = statement.where(Analysis.repository_id == repository_id)
    if status is not None:
        statement = statement.where(Analysis.status == status)
    return await paginate(session, statement, page)


async def repo_scans(
    *, session: AsyncSession, who: Principal, repo_id: str, page: PageParams
) -> tuple[list[Analysis], int]:
    await repos.get_repo(session=session, who=who, repo_id=repo_id)
    return await history(session=session, who=who, page=page, repository_id=repo_id)


async def concurrency(
    *, session: AsyncSession, who: Principal, settings: Settings
) -> dict[str, Any]:
    limits = plan_limits(settings, who.plan)
    await settle(session=session, organization_id=who.organization_id)
    in_use = await _active_count(session, who.organization_id)
    return {
        "limit": limits.concurrent_analyses,
        "in_use": in_use,
        "available": max(limits.concurrent_analyses - in_use, 0),
        "analyses_per_hour": limits.analyses_per_hour,
        "started_last_hour": await _manual_last_hour(session, who.organization_id),
    }


async def _active_count(session: AsyncSession, organization_id: str) -> int:
    count = await session.scalar(
        select(func.count()).where(
            Analysis.organization_id == organization_id,
            Analysis.status.in_([s.value for s in ACTIVE_ANALYSIS]),
        )
    )
    return int(count or 0)


async def settle(*, session: AsyncSession, organization_id: str) -> None:
    """End the analyses whose job ended without running them to the end: cancelled while
    queued (``POST /jobs/{id}/cancel``), or given up on by the reaper. Without this a
    repository would stay "busy" for ever."""
    statement = (
        select(Analysis, Job.status)
        .join(Job, Job.id == Analysis.job_id)
        .where(
            Analysis.organization_id == organization_id,
            Analysis.status.in_([s.value for s in ACTIVE_ANALYSIS]),
            Job.status.in_([s.value for s in FINISHED]),
        )
    )
    for analysis, job_status in (await session.execute(statement)).all():
        cancelled = job_status == JobStatus.CANCELLED
        reason = "cancelled" if cancelled else f"its job ended {job_status}"
        await fail(session=session, analysis_id=analysis.id, error=reason, cancelled=cancelled)


async def _manual_last_hour(session: AsyncSession, organization_id: str) -> int:
    count = await session.scalar(
        select(func.count()).where(
            Analysis.organization_id == organization_id,
            Analysis.trigger == MANUAL,
            Analysis.created_at >= utcnow() - timedelta(hours=1),
        )
    )
    return int(count or 0)


async def trigger_by_person(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    repo_id: str,
    ref: str | None,
    trigger: str = MANUAL,
) -> Analysis:
    """``POST /analysis/trigger``: 409 while one runs for the repository, 429 past the plan.

    Only ``manual`` analyses spend the plan's hourly allowance."""
    repository = await repos.get_repo(session=session, who=who, repo_id=repo_id)
    hourly = plan_limits(settings, who.plan).analyses_per_hour
    if (
        trigger == MANUAL
        and hourly is not None
        and await _manual_last_hour(session, who.organization_id) >= hourly
    ):
        raise RateLimitedError(
            f"the {who.plan} plan starts {hourly} analyses per hour; try again later",
            details={"limit": hourly, "window": "1 hour"},
            headers={"Retry-After": "60"},
        )
    return await start(
        session=session,
        repository=repository,
        trigger=trigger,
        ref=ref,
        created_by_id=who.actor_id or None,
        limits=plan_limits(settings, who.plan),
    )


async def start(
    *,
    session: AsyncSession,
    repository: Repository,
    trigger: str,
    limits: PlanLimits,
    ref: str | None = None,
    created_by_id: str | None = None,
) -> Analysis:
    """Queue an analysis of ``repository``: ConflictError if one is queued or running for
    it, RateLimitedError (``concurrency_limit``) if the organization has as many as its plan
    runs at once. Callers that are not a person (pushes, schedules) try again later."""
    await settle(session=session, organization_id=repository.organization_id)
    if await _active_count(session, repository.organization_id) >= limits.concurrent_analyses:
        raise RateLimitedError(
            f"{limits.concurrent_analyses} analyses are queued or running for this "
            "organization already",
            code="concurrency_limit",
            details={"limit": limits.concurrent_analyses},
            headers={"Retry-After": "30"},
        )
    analysis_id = new_id("ana")
    analysis = Analysis(
        id=analysis_id,
        organization_id=repository.organization_id,
        repository_id=repository.id,
        trigger=trigger,
        ref=ref,
        status=AnalysisStatus.QUEUED,
        active_key=repository.id,
        detectors={},
        score_components={},
        open_by_severity={},
        new_by_severity={},
        gate_reasons=[],
        created_by_id=created_by_id,
    )
    try:
        async with session.begin_nested():
            session.add(analysis)
            await session.flush()
    except IntegrityError:
        raise ConflictError(
            f"an analysis of {repository.name} is queued or running already",
            details={"repository_id": repository.id},
        ) from None
    job = await enqueue(
        session,
        RUN_KIND,
        payload={"analysis_id": analysis_id},
        organization_id=repository.organization_id,
        repository_id=repository.id,
    )
    analysis.job_id = job.id
    await repos.note_analysis(
        session=session,
        repository=repository,
        analysis_id=analysis_id,
        kind="analysis_queued",
        message=f"analysis queued ({trigger})",
        data={"ref": ref, "trigger": trigger},
    )
    await session.flush()
    return analysis


def move(analysis: Analysis, to: AnalysisStatus) -> None:
    """Change ``analysis``'s status, as ``ANALYSIS_TRANSITIONS`` allows, or refuse."""
    current = AnalysisStatus(analysis.status)
    if to not in ANALYSIS_TRANSITIONS[current]:
        raise ConflictError(f"an analysis cannot go from {current} to {to}")
    analysis.status = to
    if to not in ACTIVE_ANALYSIS:
        analysis.active_key = None
        analysis.finished_at = utcnow()


async def fail(
    *, session: AsyncSession, analysis_id: str, error: str, cancelled: bool = False
) -> None:
    """End an analysis that could not finish, tell its repository and the subscribers."""
    analysis = await session.get(Analysis, analysis_id)
    if analysis is None or analysis.status not in ACTIVE_ANALYSIS:
        return
    move(analysis, AnalysisStatus.CANCELLED if cancelled else AnalysisStatus.FAILED)
    analysis.error = error
    repository = await session.get(Repository, analysis.repository_id)
    if repository is not None:
        await repos.note_analysis(
            session=session,
            repository=repository,
            analysis_id=analysis.id,
            kind="analysis_cancelled" if cancelled else "analysis_failed",
            message=error,
        )
    if not cancelled:
        await emit(
            session,
            "analysis.failed",
            {"analysis_id": analysis.id, "repository_id": analysis.repository_id, "error": error},
            organization_id=analysis.organization_id,
        )
    await session.flush()
