"""Request and response shapes of pipelines (seed 003)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from forgeyard.ci.pipelines import DEFAULT_FILE

MAX_PIPELINE_BYTES = 1024 * 1024


def _relative_path(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise ValueError("a relative path inside the repository, without '..' or '//'")
    return value


RepoPath = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_relative_path)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
Content = Annotated[str, Field(min_length=1, max_length=MAX_PIPELINE_BYTES)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PipelineIn(Strict):
    """Either ``content`` (kept here) or ``repository_id`` (read from ``path`` there)."""

    name: Name
    content: Content | None = Field(default=None, description="The pipeline's YAML.")
    repository_id: str | None = Field(default=None, max_length=40)
    path: RepoPath | None = Field(
        default=None, description=f"Where the YAML is in the repository; default {DEFAULT_FILE}."
    )


class PipelinePatch(Strict):
    name: Name | None = None
    content: Content | None = None
    path: RepoPath | None = None


class ValidateIn(Strict):
    content: str = Field(max_length=MAX_PIPELINE_BYTES, description="The pipeline's YAML.")


class IssueOut(BaseModel):
    line: int
    column: int
    path: str
    message: str


class ValidationOut(BaseModel):
    valid: bool
    errors: list[IssueOut]
    steps: list[str] = Field(description="The steps, in order, when valid.")


class PipelineOut(BaseModel):
    id: str
    project_id: str
    name: str
    source: str
    content: str | None
    repository_id: str | None
    path: str | None
    summary: dict[str, Any] | None = Field(
        description="Stored pipelines: their steps, triggers and artifacts."
    )
    created_at: datetime
    updated_at: datetime
