"""Rows into response shapes."""

from __future__ import annotations

from forgeyard.ci import schemas, service
from forgeyard.ci.pipelines import PipelineIssue
from forgeyard.models.ci import PipelineDefinition


def pipeline_out(pipeline: PipelineDefinition) -> schemas.PipelineOut:
    return schemas.PipelineOut(
        id=pipeline.id,
        project_id=pipeline.project_id,
        name=pipeline.name,
        source=pipeline.source,
        content=pipeline.content,
        repository_id=pipeline.repository_id,
        path=pipeline.path,
        summary=service.summary(pipeline),
        created_at=pipeline.created_at,
        updated_at=pipeline.updated_at,
    )


def validation_out(issues: list[PipelineIssue], steps: list[str]) -> schemas.ValidationOut:
    return schemas.ValidationOut(
        valid=not issues,
        errors=[schemas.IssueOut(**issue.to_dict()) for issue in issues],
        steps=steps,
    )
