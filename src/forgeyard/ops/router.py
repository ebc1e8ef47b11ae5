"""Jobs (follow, cancel) and operations: limits, workers, cleanup (seeds 000, 001, 004)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from sse_starlette.sse import EventSourceResponse

from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.deps import service as deps
from forgeyard.kernel import sse
from forgeyard.kernel.dependencies import DatabaseDep, DbSession
from forgeyard.kernel.pagination import Page, Pagination
from forgeyard.models.job import JobStatus
from forgeyard.ops import presenters, schemas, service

router = APIRouter()

ReadJobs = Annotated[Principal, Depends(require("jobs:read"))]
CancelJobs = Annotated[Principal, Depends(require("jobs:cancel"))]
ReadOrg = Annotated[Principal, Depends(require("org:read"))]
ReadOps = Annotated[Principal, Depends(require("ops:read"))]
ManageOps = Annotated[Principal, Depends(require("ops:manage"))]


@router.get("/jobs", tags=["jobs"])
async def list_jobs(
    principal: ReadJobs,
    session: DbSession,
    page: Pagination,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
    kind: Annotated[str | None, Query(max_length=64, description="Only jobs of this kind.")] = None,
    repo_id: Annotated[
        str | None, Query(max_length=40, description="Only jobs working on this repository.")
    ] = None,
) -> Page[schemas.JobOut]:
    jobs, total = await service.list_jobs(
        session=session, who=principal, page=page, status=status, kind=kind, repo_id=repo_id
    )
    updates = await deps.update_job_views(
        session=session, organization_id=principal.organization_id, job_ids=[job.id for job in jobs]
    )
    return Page(
        data=[presenters.job_out(job, [], updates.get(job.id)) for job in jobs],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/jobs/{job_id}", tags=["jobs"])
async def get_job(job_id: str, principal: ReadJobs, session: DbSession) -> schemas.JobOut:
    """A job with its stage-by-stage breakdown (and, for an update job, its changes,
    confidence, failure report and pull request)."""
    job, stages = await service.get_job(session=session, who=principal, job_id=job_id)
    updates = await deps.update_job_views(
        session=session, organization_id=principal.organization_id, job_ids=[job.id]
    )
    return presenters.job_out(job, stages, updates.get(job.id))


@router.get(
    "/jobs/{job_id}/progress",
    tags=["jobs"],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def follow_job(
    job_id: str, request: Request, principal: ReadJobs, database: DatabaseDep, session: DbSession
) -> EventSourceResponse:
    """Server-Sent Events: a ``progress`` event per change, then ``end``; resumes from
    ``Last-Event-ID``."""
    await service.get_job(session=session, who=principal, job_id=job_id)  # 404 before streaming
    updates = service.follow_job(
        database=database,
        who=principal,
        job_id=job_id,
        after_version=sse.last_event_id(request),
        present=lambda job, stages: presenters.job_out(job, stages).model_dump(mode="json"),
    )
    return sse.stream(updates)


@router.post("/jobs/{job_id}/cancel", tags=["jobs"])
async def cancel_job(job_id: str, principal: CancelJobs, session: DbSession) -> schemas.JobOut:
    """Cancel a queued job, or ask a running one to stop at its next checkpoint."""
    return presenters.job_out(
        *await service.cancel_job(session=session, who=principal, job_id=job_id)
    )


@router.get("/ops/limits", tags=["ops"])
async def plan_limits(
    principal: ReadOrg, session: DbSession, runtime: Runtime
) -> schemas.LimitsOut:
    usage = await service.limits(
        session=session, who=principal, settings=runtime.settings, limiter=runtime.limiter
    )
    return schemas.LimitsOut(**usage)


@router.get("/ops/workers", tags=["ops"])
async def workers(principal: ReadOps, session: DbSession) -> schemas.WorkersOut:
    live, queues = await service.worker_state(session=session, who=principal)
    return schemas.WorkersOut(
        workers=[presenters.worker_out(worker) for worker in live],
        queues=[presenters.queue_out(depth) for depth in queues],
    )


@router.post("/ops/cleanup", tags=["ops"], status_code=status.HTTP_202_ACCEPTED)
async def cleanup(principal: ManageOps, session: DbSession, runtime: Runtime) -> schemas.JobOut:
    """Delete this organization's finished jobs, events and deliveries past retention."""
    job = await service.request_cleanup(
        session=session, who=principal, retention_days=runtime.settings.jobs.retention_days
    )
    return presenters.job_out(job, [])
