"""Updates, dependency settings, update jobs and pull requests (seed 000). ``GET /jobs`` and
``GET /jobs/{id}`` are the job engine's (ops), showing an update job's details."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from forgeyard.auth.dependencies import Runtime, require
from forgeyard.auth.principals import Principal
from forgeyard.deps import presenters, schemas, service
from forgeyard.kernel.dependencies import DbSession
from forgeyard.kernel.pagination import Page, Pagination

router = APIRouter(tags=["dependencies"])

Read = Annotated[Principal, Depends(require("resources:read"))]
Write = Annotated[Principal, Depends(require("resources:write"))]
ManageRegistries = Annotated[Principal, Depends(require("registries:manage"))]
RepoFilter = Annotated[str | None, Query(max_length=40, description="Only this repository's.")]


@router.get("/updates")
async def list_updates(
    principal: Read,
    session: DbSession,
    page: Pagination,
    repo_id: RepoFilter = None,
    category: Annotated[
        Literal["major", "minor", "patch", "prerelease", "security"] | None, Query()
    ] = None,
    ecosystem: Annotated[Literal["pypi", "npm"] | None, Query()] = None,
    blocked: Annotated[bool | None, Query(description="Only blocked (true) or allowed.")] = None,
) -> Page[schemas.UpdateOut]:
    """Every update the last scans detected, blocked ones with their reasons."""
    rows, total = await service.list_updates(
        session=session,
        who=principal,
        page=page,
        repo_id=repo_id,
        category=category,
        ecosystem=ecosystem,
        blocked=blocked,
    )
    return Page(
        data=[presenters.update_out(*row) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/updates/{update_id}")
async def get_update(update_id: str, principal: Read, session: DbSession) -> schemas.UpdateOut:
    return presenters.update_out(
        *await service.get_update(session=session, who=principal, update_id=update_id)
    )


@router.post("/updates/scan", status_code=status.HTTP_202_ACCEPTED)
async def scan(body: schemas.ScanIn, principal: Write, session: DbSession) -> schemas.ScanOut:
    """Scan a repository's dependencies now (scans also follow every analysis)."""
    job_id = await service.start_scan(session=session, who=principal, repo_id=body.repo_id)
    return schemas.ScanOut(job_id=job_id, repo_id=body.repo_id, status="queued")


@router.patch("/deps/{dep_id}/settings")
async def dependency_settings(
    dep_id: str, body: schemas.DependencySettingsIn, principal: Write, session: DbSession
) -> schemas.DependencyOut:
    """skip, pin (a version or range, with a reason and an expiry), ignore_major; they take
    effect at the next scan."""
    dependency = await service.set_dependency_settings(
        session=session, who=principal, dep_id=dep_id, changes=body.model_dump(exclude_unset=True)
    )
    return presenters.dependency_out(dependency, None)


@router.post("/jobs", status_code=status.HTTP_201_CREATED, tags=["jobs"])
async def start_update_job(
    body: schemas.UpdateJobIn, principal: Write, session: DbSession
) -> schemas.UpdateJobCreated:
    """Update one dependency to ``target_version``: branch, install, test, analyze and, if
    they pass, a pull request."""
    job, record = await service.start_update_job(
        session=session,
        who=principal,
        repo_id=body.repo_id,
        dependency=body.dependency,
        target_version=body.target_version,
        ecosystem=body.ecosystem,
    )
    return presenters.job_created(job, record)


@router.get("/pull-requests")
async def list_pull_requests(
    principal: Read,
    session: DbSession,
    page: Pagination,
    repo_id: RepoFilter = None,
    status: Annotated[Literal["open", "merged", "closed"] | None, Query()] = None,
) -> Page[schemas.PullRequestOut]:
    pulls, total = await service.list_pull_requests(
        session=session, who=principal, page=page, repo_id=repo_id, status=status
    )
    return Page(
        data=[presenters.pull_request_out(pull) for pull in pulls],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/pull-requests/{pr_id}")
async def get_pull_request(
    pr_id: str, principal: Read, session: DbSession
) -> schemas.PullRequestOut:
    pull = await service.get_pull_request(session=session, who=principal, pr_id=pr_id)
    return presenters.pull_request_out(pull)


@router.post("/pull-requests/{pr_id}/merge", status_code=status.HTTP_202_ACCEPTED)
async def merge_pull_request(
    pr_id: str, principal: Write, session: DbSession
) -> schemas.PullRequestAction:
    """Merge it into its target branch (a real git merge of the tested commit, pushed to
    origin, or the forge's merge) in a job; 409 unless it is open. It is ``merging`` until
    the job ends it ``merged``, or ``open`` again with the reason in ``error``."""
    pull, job_id = await service.request_merge(session=session, who=principal, pr_id=pr_id)
    return schemas.PullRequestAction(job_id=job_id, pull_request=presenters.pull_request_out(pull))


@router.post("/pull-requests/{pr_id}/close", status_code=status.HTTP_202_ACCEPTED)
async def close_pull_request(
    pr_id: str, principal: Write, session: DbSession
) -> schemas.PullRequestAction:
    pull, job_id = await service.request_close(session=session, who=principal, pr_id=pr_id)
    return schemas.PullRequestAction(job_id=job_id, pull_request=presenters.pull_request_out(pull))


@router.get("/registries")
async def list_registries(
    principal: Read, session: DbSession, page: Pagination, repo_id: RepoFilter = None
) -> Page[schemas.RegistryOut]:
    """Private registries of the organization and its repositories (secrets never shown)."""
    registries, total = await service.list_registries(
        session=session, who=principal, page=page, repo_id=repo_id
    )
    return Page(
        data=[presenters.registry_out(registry) for registry in registries],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/registries", status_code=status.HTTP_201_CREATED)
async def add_registry(
    body: schemas.RegistryIn, principal: ManageRegistries, session: DbSession, runtime: Runtime
) -> schemas.RegistryOut:
    """Look packages up and install them from this registry instead of the instance's, for
    the organization or one repository; 409 if one is already set there."""
    registry = await service.add_registry(
        session=session,
        who=principal,
        settings=runtime.settings,
        ecosystem=body.ecosystem,
        url=body.url,
        username=body.username,
        secret=body.secret,
        repo_id=body.repo_id,
    )
    return presenters.registry_out(registry)


@router.delete("/registries/{registry_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_registry(
    registry_id: str, principal: ManageRegistries, session: DbSession
) -> None:
    await service.delete_registry(session=session, who=principal, registry_id=registry_id)
