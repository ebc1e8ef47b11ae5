"""Projects: named groups of repositories, and the rollup that shows a project at a glance."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.auth.principals import Principal
from forgeyard.kernel.errors import ConflictError
from forgeyard.kernel.ids import new_id
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.analysis import Analysis
from forgeyard.models.repo import Project, Repository
from forgeyard.repos import schemas
from forgeyard.repos.service import count_in_project, get_project

SEVERITIES = ("critical", "high", "medium", "low", "info")


async def list_projects(
    *, session: AsyncSession, who: Principal, page: PageParams
) -> tuple[list[Project], int]:
    statement = (
        select(Project).where(Project.organization_id == who.organization_id).order_by(Project.id)
    )
    return await paginate(session, statement, page)


async def repository_counts(*, session: AsyncSession, projects: list[Project]) -> dict[str, int]:
    return await count_in_project(session=session, project_ids=[p.id for p in projects])


async def _check_name_free(
    session: AsyncSession, organization_id: str, name: str, *, besides: str | None = None
) -> None:
    statement = select(Project.id).where(
        Project.organization_id == organization_id, Project.name == name
    )
    if besides is not None:
        statement = statement.where(Project.id != besides)
    if await session.scalar(statement):
        raise ConflictError(f"a project named {name!r} exists already", details={"field": "name"})


async def create_project(
    *, session: AsyncSession, who: Principal, body: schemas.ProjectIn, ip: str | None
) -> Project:
    await _check_name_free(session, who.organization_id, body.name)
    project = Project(
        id=new_id("prj"),
        organization_id=who.organization_id,
        name=body.name,
        description=body.description,
        created_by_id=who.actor_id or None,
    )
    session.add(project)
    await session.flush()
    await audit.record(
        session,
        action="project.created",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=project.id,
        ip_address=ip,
        details={"name": body.name},
    )
    return project


async def update_project(
    *, session: AsyncSession, who: Principal, project_id: str, body: schemas.ProjectPatch
) -> Project:
    project = await get_project(session=session, who=who, project_id=project_id)
    if body.name is not None:
        await _check_name_free(session, who.organization_id, body.name, besides=project.id)
        project.name = body.name
    if "description" in body.model_fields_set:
        project.description = body.description
    await session.flush()
    return project


async def delete_project(
    *, session: AsyncSession, who: Principal, project_id: str, ip: str | None
) -> None:
    """Delete the project; its repositories stay, in no project."""
    project = await get_project(session=session, who=who, project_id=project_id)
    await audit.record(
        session,
        action="project.deleted",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=project.id,
        ip_address=ip,
        details={"name": project.name},
    )
    await session.delete(project)
    await session.flush()


async def rollup(
    *, session: AsyncSession, who: Principal, project_id: str
) -> schemas.ProjectRollup:
    """The project's repositories with their latest analysis, in one query."""
    project = await get_project(session=session, who=who, project_id=project_id)
    rows = (
        await session.execute(
            select(Repository, Analysis)
            .outerjoin(Analysis, Analysis.id == Repository.last_analysis_id)
            .where(
                Repository.project_id == project.id,
                Repository.organization_id == who.organization_id,
            )
            .order_by(Repository.name)
        )
    ).all()
    repositories = [_rollup_repo(repository, analysis) for repository, analysis in rows]
    totals = {severity: 0 for severity in SEVERITIES}
    for item in repositories:
        for severity, count in item.open_findings.items():
            totals[severity] = totals.get(severity, 0) + count
    scores = [item.health_score for item in repositories if item.health_score is not None]
    return schemas.ProjectRollup(
        project=project_out(project, len(repositories)),
        repositories=repositories,
        open_findings=totals,
        average_health_score=round(sum(scores) / len(scores), 1) if scores else None,
    )


def _rollup_repo(repository: Repository, analysis: Analysis | None) -> schemas.RollupRepo:
    return schemas.RollupRepo(
        id=repository.id,
        name=repository.name,
        status=repository.status,
        default_branch=repository.default_branch,
        last_scan_at=repository.last_scan_at,
        health_score=analysis.health_score if analysis else None,
        grade=analysis.grade if analysis else None,
        open_findings=dict(analysis.open_by_severity) if analysis else {},
        gate_passed=analysis.gate_passed if analysis else None,
        outdated_dependencies=repository.outdated_count,
        last_build_status=None,
    )


def project_out(project: Project, repository_count: int) -> schemas.ProjectOut:
    return schemas.ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        repository_count=repository_count,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )
