"""Request and response shapes of builds, runners, logs and artifacts (seed 003)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from forgeyard.protocol.runner import Label

BuildStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BuildIn(_Strict):
    repository_id: str = Field(min_length=1, max_length=40)
    ref: str = Field(
        min_length=1, max_length=255, description="A branch, tag or commit of the repository."
    )
    pipeline_id: str | None = Field(
        default=None,
        max_length=40,
        description="Which of the project's pipelines; needed when it has more than one.",
    )


class RetryIn(_Strict):
    failed_only: bool = Field(
        default=False,
        description="Run again only the steps that did not succeed, keeping the others.",
    )


class StepOut(BaseModel):
    position: int
    name: str
    status: str
    exit_code: int | None
    reused: bool = Field(description="Kept from the build this one retried; not run again.")
    log_lines: int
    log_truncated: bool
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None


class BuildOut(BaseModel):
    id: str
    number: int
    project_id: str | None
    repository_id: str
    pipeline_id: str | None
    ref: str
    commit: str
    event: str
    status: str
    runner_id: str | None
    attempts: int
    cancel_requested: bool
    retry_of_id: str | None
    error: str | None
    steps: list[StepOut]
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None


class LogLineOut(BaseModel):
    number: int
    text: str


class LogPageOut(BaseModel):
    build_id: str
    step: int
    step_name: str
    step_status: str
    offset: int
    lines: list[LogLineOut]
    next_offset: int | None = Field(description="Where the next page starts; null at the end.")
    total_lines: int
    truncated: bool


class StreamTokenOut(BaseModel):
    token: str
    expires_at: datetime
    url: str = Field(description="The stream's path with the token; open it with EventSource.")


class ArtifactOut(BaseModel):
    id: str
    build_id: str
    path: str
    size: int
    sha256: str
    created_at: datetime


class DownloadLinkOut(BaseModel):
    url: str
    expires_at: datetime


class RegistrationTokenIn(_Strict):
    description: str | None = Field(default=None, max_length=200)
    labels: list[Label] = Field(default_factory=list, max_length=32)
    valid_hours: int = Field(default=24, ge=1, le=24 * 365)


class RegistrationTokenOut(BaseModel):
    id: str
    description: str | None
    labels: list[str]
    expires_at: datetime
    created_at: datetime
    token: str | None = Field(default=None, description="Shown once, when it is made.")


class RunnerOut(BaseModel):
    id: str
    name: str
    labels: list[str]
    version: str | None
    status: str
    last_seen_at: datetime | None
    created_at: datetime
