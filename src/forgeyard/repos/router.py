"""Projects, repositories, their timelines and git uploads (seeds 000, 003 and 004)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from forgeyard.analysis import service as analysis_service
from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.kernel.dependencies import DatabaseDep, DbSession
from forgeyard.kernel.http import OutboundPolicy
from forgeyard.kernel.pagination import Page, Pagination
from forgeyard.models.repo import RepoStatus
from forgeyard.repos import git_remote, projects, schemas, service, uploads
from forgeyard.repos.presenters import event_out, repo_detail, repo_out, upload_out

router = APIRouter(tags=["repositories"])

Read = Annotated[Principal, Depends(require("resources:read"))]
Write = Annotated[Principal, Depends(require("resources:write"))]
Delete = Annotated[Principal, Depends(require("resources:delete"))]


async def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(_client_ip)]


# --- projects --------------------------------------------------------------------------------


@router.get("/projects")
async def list_projects(
    principal: Read, session: DbSession, page: Pagination
) -> Page[schemas.ProjectOut]:
    rows, total = await projects.list_projects(session=session, who=principal, page=page)
    counts = await projects.repository_counts(session=session, projects=rows)
    data = [projects.project_out(p, counts.get(p.id, 0)) for p in rows]
    return Page(data=data, total=total, limit=page.limit, offset=page.offset)


@router.post("/projects", status_code=status.HTTP_201_CREATED)
async def create_project(
    body: schemas.ProjectIn, principal: Write, session: DbSession, ip: ClientIp
) -> schemas.ProjectOut:
    project = await projects.create_project(session=session, who=principal, body=body, ip=ip)
    return projects.project_out(project, 0)


@router.get("/projects/{project_id}")
async def get_project(project_id: str, principal: Read, session: DbSession) -> schemas.ProjectOut:
    project = await service.get_project(session=session, who=principal, project_id=project_id)
    counts = await projects.repository_counts(session=session, projects=[project])
    return projects.project_out(project, counts.get(project.id, 0))


@router.patch("/projects/{project_id}")
async def update_project(
    project_id: str, body: schemas.ProjectPatch, principal: Write, session: DbSession
) -> schemas.ProjectOut:
    project = await projects.update_project(
        session=session, who=principal, project_id=project_id, body=body
    )
    counts = await projects.repository_counts(session=session, projects=[project])
    return projects.project_out(project, counts.get(project.id, 0))


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_project(
    project_id: str, principal: Delete, session: DbSession, ip: ClientIp
) -> None:
    await projects.delete_project(session=session, who=principal, project_id=project_id, ip=ip)


@router.get("/projects/{project_id}/rollup")
async def project_rollup(
    project_id: str, principal: Read, session: DbSession
) -> schemas.ProjectRollup:
    return await projects.rollup(session=session, who=principal, project_id=project_id)


# --- repositories ----------------------------------------------------------------------------


@router.get("/repos")
async def list_repos(
    principal: Read,
    session: DbSession,
    page: Pagination,
    project_id: Annotated[str | None, Query(max_length=40)] = None,
    repo_status: Annotated[RepoStatus | None, Query(alias="status")] = None,
) -> Page[schemas.RepoOut]:
    rows, total = await service.list_repos(
        session=session, who=principal, page=page, project_id=project_id, status=repo_status
    )
    return Page(data=[repo_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/repos", status_code=status.HTTP_201_CREATED)
async def register_repo(
    body: schemas.RepoIn, principal: Write, session: DbSession, runtime: Runtime, ip: ClientIp
) -> schemas.RepoOut:
    """Register a repository by clone URL; its first fetch is queued as a job."""
    if body.settings is not None:
        analysis_service.check_detectors(body.settings.detectors)
    repository = await service.register_repo(
        session=session,
        who=principal,
        box=runtime.secret_box,
        settings=runtime.settings,
        policy=OutboundPolicy.from_settings(runtime.settings.outbound),
        new=service.NewRepo(
            clone_url=body.clone_url,
            name=body.name,
            project_id=body.project_id,
            username=body.username,
            token=body.token,
            settings=body.settings,
        ),
        ip=ip,
    )
    return repo_out(repository)


@router.get("/repos/{repo_id}")
async def get_repo(repo_id: str, principal: Read, session: DbSession) -> schemas.RepoDetail:
    repository = await service.get_repo(session=session, who=principal, repo_id=repo_id)
    sections = await service.detail_sections(session=session, repository=repository)
    return repo_detail(
        repository,
        await service.last_scan(session=session, repository=repository),
        sections.get("dependencies", []),
    )


@router.put("/repos/{repo_id}/settings")
async def put_repo_settings(
    repo_id: str, body: schemas.RepoSettings, principal: Write, session: DbSession
) -> schemas.RepoSettingsOut:
    analysis_service.check_detectors(body.detectors)
    repository = await service.update_settings(
        session=session, who=principal, repo_id=repo_id, new=body
    )
    return schemas.RepoSettingsOut(id=repository.id, settings=service.settings_of(repository))


@router.delete("/repos/{repo_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_repo(
    repo_id: str, principal: Delete, session: DbSession, runtime: Runtime, ip: ClientIp
) -> None:
    """Delete the repository, its analyses and findings; its mirror is removed too."""
    await service.delete_repo(
        session=session, who=principal, settings=runtime.settings, repo_id=repo_id, ip=ip
    )


@router.get("/repos/{repo_id}/events")
async def repo_events(
    repo_id: str, principal: Read, session: DbSession, page: Pagination
) -> Page[schemas.RepoEventOut]:
    rows, total = await service.list_events(
        session=session, who=principal, repo_id=repo_id, page=page
    )
    return Page(
        data=[event_out(e) for e in rows], total=total, limit=page.limit, offset=page.offset
    )


# --- git uploads -----------------------------------------------------------------------------


@router.post("/git-uploads", status_code=status.HTTP_201_CREATED)
async def create_git_upload(
    body: schemas.GitUploadIn, principal: Write, session: DbSession, runtime: Runtime
) -> schemas.GitUploadCreated:
    """A temporary push remote. The answer carries its token: the only time it is shown."""
    upload, token = await uploads.create_upload(
        session=session,
        who=principal,
        hasher=runtime.token_hasher,
        settings=runtime.settings,
        body=body,
    )
    out = upload_out(upload, uploads.push_url(runtime.settings, upload))
    return schemas.GitUploadCreated(
        **out.model_dump(),
        token=token,
        authenticated_url=uploads.authenticated_url(runtime.settings, upload, token),
    )


@router.get("/git-uploads/{upload_id}")
async def get_git_upload(
    upload_id: str, principal: Read, session: DbSession, runtime: Runtime
) -> schemas.GitUploadOut:
    upload = await uploads.get_upload(session=session, who=principal, upload_id=upload_id)
    return upload_out(upload, uploads.push_url(runtime.settings, upload))


@router.api_route(
    "/git-uploads/{upload_id}/repo.git/{operation:path}",
    methods=["GET", "POST"],
    include_in_schema=False,
)
async def git_smart_http(
    upload_id: str, operation: str, request: Request, database: DatabaseDep, runtime: Runtime
) -> Response:
    """git's smart HTTP protocol: what `git push <push_url>` talks to. The upload's token
    is the Basic password; there is no other sign-in here."""
    return await git_remote.serve(
        request=request,
        database=database,
        runtime=runtime,
        upload_id=upload_id,
        operation=operation,
    )
