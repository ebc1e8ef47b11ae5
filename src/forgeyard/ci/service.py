"""Pipelines: stored YAML validated on every write, or a file read from a repository.

Functions take keyword arguments, scope every query to the caller's organization, flush and
never commit. The format and its validation are in ``ci/pipelines/``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.ci.pipelines import DEFAULT_FILE, PipelineIssue, load_pipeline, validate_pipeline
from forgeyard.kernel.db import get_owned
from forgeyard.kernel.errors import ConflictError, InvalidInputError, NotFoundError
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.ci import PipelineDefinition, PipelineSource
from forgeyard.repos import service as repos


async def get_pipeline(
    *, session: AsyncSession, who: Principal, pipeline_id: str
) -> PipelineDefinition:
    return await get_owned(
        session,
        PipelineDefinition,
        pipeline_id,
        organization_id=who.organization_id,
        kind="pipeline",
        prefix="pip",
    )


async def list_pipelines(
    *, session: AsyncSession, who: Principal, project_id: str, page: PageParams
) -> tuple[list[PipelineDefinition], int]:
    project = await repos.get_project(session=session, who=who, project_id=project_id)
    statement = (
        select(PipelineDefinition)
        .where(PipelineDefinition.project_id == project.id)
        .order_by(PipelineDefinition.name)
    )
    return await paginate(session, statement, page)


async def create_pipeline(
    *,
    session: AsyncSession,
    who: Principal,
    project_id: str,
    name: str,
    content: str | None,
    repository_id: str | None,
    path: str | None,
) -> PipelineDefinition:
    project = await repos.get_project(session=session, who=who, project_id=project_id)
    if (content is None) == (repository_id is None):
        raise InvalidInputError(
            "give either content (a stored pipeline) or repository_id (read from the "
            "repository), not both and not neither",
            details={"field": "content"},
        )
    if content is not None:
        load_pipeline(content)  # raises PipelineInvalid: 400 with every issue
    else:
        await _check_repository(session, who, repository_id)
    pipeline = PipelineDefinition(
        organization_id=who.organization_id,
        project_id=project.id,
        name=name,
        source=PipelineSource.STORED if content is not None else PipelineSource.REPOSITORY,
        content=content,
        repository_id=repository_id,
        path=None if content is not None else path or DEFAULT_FILE,
        created_by_id=who.user_id,
    )
    await _save(session, pipeline)
    return pipeline


async def update_pipeline(
    *, session: AsyncSession, who: Principal, pipeline_id: str, changes: dict[str, Any]
) -> PipelineDefinition:
    pipeline = await get_pipeline(session=session, who=who, pipeline_id=pipeline_id)
    stored = pipeline.source == PipelineSource.STORED
    if "content" in changes and not stored:
        raise InvalidInputError(
            "this pipeline is read from its repository: change the file there, or its path",
            details={"field": "content"},
        )
    if "path" in changes and stored:
        raise InvalidInputError(
            "a stored pipeline has no path: change its content", details={"field": "path"}
        )
    if changes.get("content") is not None:
        load_pipeline(changes["content"])
    for field in ("name", "content", "path"):
        if changes.get(field) is not None:
            setattr(pipeline, field, changes[field])
    await _save(session, pipeline)
    return pipeline


async def delete_pipeline(*, session: AsyncSession, who: Principal, pipeline_id: str) -> None:
    pipeline = await get_pipeline(session=session, who=who, pipeline_id=pipeline_id)
    await session.delete(pipeline)
    await session.flush()


def validate(content: str) -> tuple[list[PipelineIssue], list[str]]:
    """The issues of ``content``, and its steps' names when it has none."""
    issues = validate_pipeline(content)
    if issues:
        return issues, []
    return [], [step.name for step in load_pipeline(content).steps]


def summary(pipeline: PipelineDefinition) -> dict[str, Any] | None:
    if pipeline.content is None:
        return None
    loaded = load_pipeline(pipeline.content)
    triggers = loaded.triggers
    return {
        "steps": [step.name for step in loaded.steps],
        "triggers": {
            "push": triggers.push is not None,
            "pull_request": triggers.pull_request is not None,
            "manual": triggers.manual,
            "schedule": triggers.schedule,
        },
        "artifacts": list(loaded.artifacts),
    }


async def _check_repository(
    session: AsyncSession, who: Principal, repository_id: str | None
) -> None:
    try:
        await repos.get_repo(session=session, who=who, repo_id=repository_id or "")
    except NotFoundError as exc:  # another organization's id reads as unknown, as everywhere
        raise InvalidInputError(
            f"repository {repository_id} not found", details={"field": "repository_id"}
        ) from exc


async def _save(session: AsyncSession, pipeline: PipelineDefinition) -> None:
    try:
        async with session.begin_nested():
            session.add(pipeline)
            await session.flush()
    except IntegrityError:
        raise ConflictError(
            f"the project already has a pipeline named {pipeline.name!r}",
            details={"field": "name"},
        ) from None
