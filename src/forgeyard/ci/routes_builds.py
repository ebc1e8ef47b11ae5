"""Builds, their logs and artifacts, as people and dashboards see them (seed 003)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse

from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.ci import access, build_artifacts, builds, logs
from forgeyard.ci import build_presenters as presenters
from forgeyard.ci import build_schemas as schemas
from forgeyard.kernel import sse
from forgeyard.kernel.dependencies import DatabaseDep, DbSession
from forgeyard.kernel.pagination import Page, Pagination
from forgeyard.models.ci import AccessTokenKind, Build

router = APIRouter(tags=["ci"])

Read = Annotated[Principal, Depends(require("resources:read"))]
Write = Annotated[Principal, Depends(require("resources:write"))]
MAX_LOG_PAGE = 5000


@router.post("/projects/{project_id}/builds", status_code=status.HTTP_201_CREATED)
async def create_build(
    project_id: str, body: schemas.BuildIn, principal: Write, session: DbSession, runtime: Runtime
) -> schemas.BuildOut:
    """Build ``ref`` of a repository of the project; the build waits for a runner."""
    build = await builds.create_build(
        session=session,
        who=principal,
        settings=runtime.settings,
        project_id=project_id,
        repository_id=body.repository_id,
        ref=body.ref,
        pipeline_id=body.pipeline_id,
    )
    return await _build_out(session, build)


@router.get("/builds")
async def list_builds(
    principal: Read,
    session: DbSession,
    page: Pagination,
    project_id: Annotated[str | None, Query(max_length=40)] = None,
    repository_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[schemas.BuildStatusName | None, Query()] = None,
    ref: Annotated[str | None, Query(max_length=255)] = None,
) -> Page[schemas.BuildOut]:
    filters = {
        "project_id": project_id,
        "repository_id": repository_id,
        "status": status,
        "ref": ref,
    }
    found, total = await builds.list_builds(
        session=session, who=principal, filters=filters, page=page
    )
    steps = await builds.steps_of(session=session, build_ids=[b.id for b in found])
    return Page(
        data=[presenters.build_out(b, steps[b.id]) for b in found],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/builds/{build_id}")
async def get_build(build_id: str, principal: Read, session: DbSession) -> schemas.BuildOut:
    build = await builds.get_build(session=session, who=principal, build_id=build_id)
    return await _build_out(session, build)


@router.post("/builds/{build_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_build(build_id: str, principal: Write, session: DbSession) -> schemas.BuildOut:
    """A queued build is cancelled now; a running one once its runner has stopped it."""
    build = await builds.cancel_build(session=session, who=principal, build_id=build_id)
    return await _build_out(session, build)


@router.post("/builds/{build_id}/retry", status_code=status.HTTP_201_CREATED)
async def retry_build(
    build_id: str,
    principal: Write,
    session: DbSession,
    runtime: Runtime,
    body: schemas.RetryIn | None = None,
) -> schemas.BuildOut:
    """A new build of the same commit and resolved pipeline."""
    build = await builds.retry_build(
        session=session,
        who=principal,
        settings=runtime.settings,
        build_id=build_id,
        failed_only=(body or schemas.RetryIn()).failed_only,
    )
    return await _build_out(session, build)


@router.get("/builds/{build_id}/logs")
async def build_logs(
    build_id: str,
    principal: Read,
    session: DbSession,
    step: Annotated[int, Query(ge=0, description="The step's position, from 0.")] = 0,
    offset: Annotated[int, Query(ge=0, description="The first line, from 0.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE)] = 1000,
) -> schemas.LogPageOut:
    build = await builds.get_build(session=session, who=principal, build_id=build_id)
    found, lines = await logs.read_lines(
        session=session, build=build, step=step, offset=offset, limit=limit
    )
    end = offset + len(lines)
    return schemas.LogPageOut(
        build_id=build.id,
        step=step,
        step_name=found.name,
        step_status=found.status,
        offset=offset,
        lines=[schemas.LogLineOut(number=n, text=text) for n, text in lines],
        next_offset=end if end < found.log_lines else None,
        total_lines=found.log_lines,
        truncated=found.log_truncated,
    )


@router.post("/builds/{build_id}/stream-token", status_code=status.HTTP_201_CREATED)
async def stream_token(
    build_id: str, principal: Read, session: DbSession, runtime: Runtime
) -> schemas.StreamTokenOut:
    """A token for ``GET /builds/{id}/logs/stream``, valid for this build for a few minutes."""
    build = await builds.get_build(session=session, who=principal, build_id=build_id)
    token, expires_at = await access.issue(
        session=session,
        hasher=runtime.token_hasher,
        organization_id=build.organization_id,
        kind=AccessTokenKind.LOG_STREAM,
        subject_id=build.id,
        seconds=runtime.settings.ci.stream_token_seconds,
    )
    url = f"/api/v1/builds/{build.id}/logs/stream?token={token}"
    return schemas.StreamTokenOut(token=token, expires_at=expires_at, url=url)


@router.get("/builds/{build_id}/logs/stream")
async def stream_logs(
    build_id: str,
    request: Request,
    database: DatabaseDep,
    runtime: Runtime,
    token: Annotated[str, Query(min_length=1, max_length=200)],
) -> EventSourceResponse:
    """Server-Sent Events: ``log`` per batch of lines (id: the batch), then ``end``.
    Reconnect with ``Last-Event-ID`` to resume after the last batch seen."""
    async with database.transaction() as session:
        await access.check_stream_token(
            session=session, hasher=runtime.token_hasher, token=token, build_id=build_id
        )
    return sse.stream(logs.follow(database, build_id=build_id, after=sse.last_event_id(request)))


@router.get("/builds/{build_id}/artifacts")
async def list_artifacts(
    build_id: str, principal: Read, session: DbSession
) -> Page[schemas.ArtifactOut]:
    found = await build_artifacts.list_artifacts(session=session, who=principal, build_id=build_id)
    return Page(
        data=[presenters.artifact_out(a) for a in found],
        total=len(found),
        limit=max(len(found), 1),
        offset=0,
    )


@router.post("/artifacts/{artifact_id}/download-link", status_code=status.HTTP_201_CREATED)
async def download_link(
    artifact_id: str, principal: Read, session: DbSession, runtime: Runtime
) -> schemas.DownloadLinkOut:
    """A link that downloads the artifact once, within a few minutes."""
    _artifact, token, expires_at = await build_artifacts.download_link(
        session=session,
        who=principal,
        hasher=runtime.token_hasher,
        settings=runtime.settings,
        artifact_id=artifact_id,
    )
    return schemas.DownloadLinkOut(url=f"/api/v1/artifacts/download/{token}", expires_at=expires_at)


@router.get("/artifacts/download/{token}")
async def download(token: str, session: DbSession, runtime: Runtime) -> StreamingResponse:
    """The artifact's bytes; the link is spent (410 ``token_consumed`` the second time)."""
    artifact, stream = await build_artifacts.open_download(
        session=session, hasher=runtime.token_hasher, settings=runtime.settings, token=token
    )
    name = artifact.path.rsplit("/", 1)[-1].replace('"', "")
    return StreamingResponse(
        stream,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(artifact.size),
            "X-Checksum-Sha256": artifact.sha256,
        },
    )


async def _build_out(session: DbSession, build: Build) -> schemas.BuildOut:
    steps = await builds.steps_of(session=session, build_ids=[build.id])
    return presenters.build_out(build, steps[build.id])
