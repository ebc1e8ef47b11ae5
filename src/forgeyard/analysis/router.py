"""Analyses, findings, quality gates and upload sessions (seeds 001 and 004)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from sse_starlette import EventSourceResponse

from forgeyard.analysis import findings, schemas, service, sessions
from forgeyard.analysis.gates import QualityGates
from forgeyard.analysis.presenters import analysis_out, finding_out, session_out
from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.kernel import sse
from forgeyard.kernel.dependencies import DatabaseDep, DbSession
from forgeyard.kernel.pagination import Page, Pagination
from forgeyard.models.analysis import AnalysisStatus, FindingStatus
from forgeyard.ops import service as ops
from forgeyard.ops.presenters import job_out
from forgeyard.repos import service as repos

router = APIRouter(tags=["analysis"])

Read = Annotated[Principal, Depends(require("resources:read"))]
Write = Annotated[Principal, Depends(require("resources:write"))]
Id = Annotated[str | None, Query(max_length=40)]


def _page(
    items: list[schemas.AnalysisOut], total: int, page: Pagination
) -> Page[schemas.AnalysisOut]:
    return Page(data=items, total=total, limit=page.limit, offset=page.offset)


# --- analyses --------------------------------------------------------------------------------


@router.post("/analysis/trigger", status_code=status.HTTP_202_ACCEPTED)
async def trigger(
    body: schemas.TriggerIn, principal: Write, session: DbSession, runtime: Runtime
) -> schemas.AnalysisOut:
    """Queue an analysis: 409 while one is queued or running for the repository, 429 when
    the plan's analyses per hour or at once are spent."""
    analysis = await service.trigger_by_person(
        session=session,
        who=principal,
        settings=runtime.settings,
        repo_id=body.repository_id,
        ref=body.ref,
    )
    return analysis_out(analysis)


@router.get("/analysis/history")
async def history(
    principal: Read,
    session: DbSession,
    page: Pagination,
    repository_id: Id = None,
    analysis_status: Annotated[AnalysisStatus | None, Query(alias="status")] = None,
) -> Page[schemas.AnalysisOut]:
    rows, total = await service.history(
        session=session,
        who=principal,
        page=page,
        repository_id=repository_id,
        status=analysis_status,
    )
    return _page([analysis_out(a) for a in rows], total, page)


@router.get("/analysis/concurrency")
async def concurrency(
    principal: Read, session: DbSession, runtime: Runtime
) -> schemas.ConcurrencyOut:
    usage = await service.concurrency(session=session, who=principal, settings=runtime.settings)
    return schemas.ConcurrencyOut(**usage)


@router.get("/analysis/{analysis_id}/status")
async def analysis_status(
    analysis_id: str, principal: Read, session: DbSession
) -> schemas.AnalysisOut:
    return analysis_out(
        await service.get_analysis(session=session, who=principal, analysis_id=analysis_id)
    )


@router.get(
    "/analysis/{analysis_id}/progress",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def analysis_progress(
    analysis_id: str,
    request: Request,
    principal: Read,
    database: DatabaseDep,
    session: DbSession,
) -> EventSourceResponse:
    """Server-Sent Events: the analysis job's stages (fetch, checkout, each detector,
    scoring) as they change, then ``end`` with the final status; resumes from
    ``Last-Event-ID``."""
    analysis = await service.get_analysis(session=session, who=principal, analysis_id=analysis_id)
    updates = ops.follow_job(
        database=database,
        who=principal,
        job_id=analysis.job_id or "",
        after_version=sse.last_event_id(request),
        present=lambda job, stages: {
            "analysis_id": analysis_id,
            **job_out(job, stages).model_dump(mode="json"),
        },
    )
    return sse.stream(updates)


@router.get("/repos/{repo_id}/scans")
async def repo_scans(
    repo_id: str, principal: Read, session: DbSession, page: Pagination
) -> Page[schemas.AnalysisOut]:
    rows, total = await service.repo_scans(
        session=session, who=principal, repo_id=repo_id, page=page
    )
    return _page([analysis_out(a) for a in rows], total, page)


# --- findings --------------------------------------------------------------------------------


async def _filters(
    repository_id: Id = None,
    analysis_id: Id = None,
    severity: Annotated[schemas.Severity | None, Query()] = None,
    detector: Annotated[str | None, Query(max_length=40)] = None,
    finding_status: Annotated[FindingStatus | None, Query(alias="status")] = None,
    path: Annotated[str | None, Query(max_length=1024, description="A path prefix.")] = None,
) -> findings.FindingFilters:
    return findings.FindingFilters(
        repository_id=repository_id,
        analysis_id=analysis_id,
        severity=severity,
        detector=detector,
        status=finding_status,
        path=path,
    )


Filters = Annotated[findings.FindingFilters, Depends(_filters)]


@router.get("/findings")
async def list_findings(
    principal: Read, session: DbSession, page: Pagination, filters: Filters
) -> Page[schemas.FindingOut]:
    rows, total = await findings.list_findings(
        session=session, who=principal, filters=filters, page=page
    )
    return Page(
        data=[finding_out(f) for f in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/findings/summary")
async def findings_summary(
    principal: Read, session: DbSession, filters: Filters
) -> schemas.SeveritySummary:
    return schemas.SeveritySummary(
        **await findings.summary(session=session, who=principal, filters=filters)
    )


@router.get("/findings/by-detector")
async def findings_by_detector(
    principal: Read, session: DbSession, filters: Filters
) -> list[schemas.DetectorGroup]:
    groups = await findings.by_detector(session=session, who=principal, filters=filters)
    return [schemas.DetectorGroup(**group) for group in groups]


@router.get("/findings/{finding_id}")
async def get_finding(finding_id: str, principal: Read, session: DbSession) -> schemas.FindingOut:
    return finding_out(
        await findings.get_finding(session=session, who=principal, finding_id=finding_id)
    )


@router.patch("/findings/{finding_id}")
async def set_finding_status(
    finding_id: str, body: schemas.FindingStatusIn, principal: Write, session: DbSession
) -> schemas.FindingOut:
    """Ignore a finding, with a reason; it stays ignored in later analyses. ``open`` takes
    the ignore back."""
    finding = await findings.set_status(
        session=session,
        who=principal,
        finding_id=finding_id,
        status=body.status,
        reason=body.reason,
    )
    return finding_out(finding)


@router.get("/repos/{repo_id}/findings")
async def repo_findings(
    repo_id: str, principal: Read, session: DbSession, page: Pagination, filters: Filters
) -> Page[schemas.FindingOut]:
    await repos.get_repo(session=session, who=principal, repo_id=repo_id)
    scoped = dataclasses.replace(filters, repository_id=repo_id)
    rows, total = await findings.list_findings(
        session=session, who=principal, filters=scoped, page=page
    )
    return Page(
        data=[finding_out(f) for f in rows], total=total, limit=page.limit, offset=page.offset
    )


# --- quality gates ---------------------------------------------------------------------------


@router.patch("/repos/{repo_id}/quality-gates")
@router.patch("/github/repos/{repo_id}/quality-gates")
async def patch_quality_gates(
    repo_id: str, body: QualityGates, principal: Write, session: DbSession
) -> schemas.QualityGatesOut:
    """Change the thresholds sent; the others keep their values. Null switches one off."""
    repository = await repos.get_repo(session=session, who=principal, repo_id=repo_id)
    merged = QualityGates.model_validate(
        {**(repository.quality_gates or {}), **body.model_dump(exclude_unset=True)}
    )
    repository = await repos.set_quality_gates(
        session=session, who=principal, repo_id=repo_id, gates=merged.model_dump()
    )
    return schemas.QualityGatesOut(repository_id=repository.id, quality_gates=merged)


# --- upload sessions -------------------------------------------------------------------------


@router.post("/sessions", status_code=status.HTTP_201_CREATED)
async def create_session(
    request: Request,
    principal: Write,
    session: DbSession,
    runtime: Runtime,
    filename: Annotated[str | None, Query(max_length=500)] = None,
) -> schemas.SessionOut:
    """Upload a .zip or .tar.gz of a source tree as the request body (any content type);
    ``?filename=`` names it. Unsafe archives are refused with ``invalid_archive``."""
    record = await sessions.create_session(
        session=session,
        who=principal,
        settings=runtime.settings,
        filename=sessions.clean_filename(filename),
        body=request.stream(),
    )
    return session_out(record, None)


@router.post("/sessions/{session_id}/analyze", status_code=status.HTTP_202_ACCEPTED)
async def analyze_session(
    session_id: str, principal: Write, session: DbSession, runtime: Runtime
) -> schemas.SessionOut:
    record, analysis = await sessions.analyze(
        session=session, who=principal, settings=runtime.settings, session_id=session_id
    )
    return session_out(record, analysis)


@router.get("/sessions/{session_id}")
async def get_session(session_id: str, principal: Read, session: DbSession) -> schemas.SessionOut:
    record, analysis = await sessions.get_session(
        session=session, who=principal, session_id=session_id
    )
    return session_out(record, analysis)
