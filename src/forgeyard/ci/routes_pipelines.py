"""Pipelines (seed 003): stored YAML or a repository's file, and validation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from forgeyard.auth.dependencies import require
from forgeyard.auth.principals import Principal
from forgeyard.ci import presenters, schemas, service
from forgeyard.kernel.dependencies import DbSession
from forgeyard.kernel.pagination import Page, Pagination

router = APIRouter(tags=["ci"])

Read = Annotated[Principal, Depends(require("resources:read"))]
Write = Annotated[Principal, Depends(require("resources:write"))]
Delete = Annotated[Principal, Depends(require("resources:delete"))]


@router.get("/projects/{project_id}/pipelines")
async def list_pipelines(
    project_id: str, principal: Read, session: DbSession, page: Pagination
) -> Page[schemas.PipelineOut]:
    pipelines, total = await service.list_pipelines(
        session=session, who=principal, project_id=project_id, page=page
    )
    return Page(
        data=[presenters.pipeline_out(pipeline) for pipeline in pipelines],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/projects/{project_id}/pipelines", status_code=status.HTTP_201_CREATED)
async def create_pipeline(
    project_id: str, body: schemas.PipelineIn, principal: Write, session: DbSession
) -> schemas.PipelineOut:
    """A stored pipeline is validated first: 400 with every issue's line and column."""
    pipeline = await service.create_pipeline(
        session=session,
        who=principal,
        project_id=project_id,
        name=body.name,
        content=body.content,
        repository_id=body.repository_id,
        path=body.path,
    )
    return presenters.pipeline_out(pipeline)


@router.get("/pipelines/{pipeline_id}")
async def get_pipeline(
    pipeline_id: str, principal: Read, session: DbSession
) -> schemas.PipelineOut:
    pipeline = await service.get_pipeline(session=session, who=principal, pipeline_id=pipeline_id)
    return presenters.pipeline_out(pipeline)


@router.patch("/pipelines/{pipeline_id}")
async def update_pipeline(
    pipeline_id: str, body: schemas.PipelinePatch, principal: Write, session: DbSession
) -> schemas.PipelineOut:
    pipeline = await service.update_pipeline(
        session=session,
        who=principal,
        pipeline_id=pipeline_id,
        changes=body.model_dump(exclude_unset=True),
    )
    return presenters.pipeline_out(pipeline)


@router.delete("/pipelines/{pipeline_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_pipeline(pipeline_id: str, principal: Delete, session: DbSession) -> None:
    await service.delete_pipeline(session=session, who=principal, pipeline_id=pipeline_id)


@router.post("/pipelines/validate")
async def validate_pipeline(body: schemas.ValidateIn, principal: Read) -> schemas.ValidationOut:
    """Check YAML without saving it: ``valid``, and every issue with its line and column."""
    return presenters.validation_out(*service.validate(body.content))
