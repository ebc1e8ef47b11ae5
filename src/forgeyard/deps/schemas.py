"""Request and response shapes of updates, dependency settings, update jobs and pull
requests (seed 000)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DependencyOut(BaseModel):
    id: str
    repository_id: str
    ecosystem: str
    name: str
    manifest_path: str
    scope: str
    specifier: str
    current_version: str | None
    skip: bool
    pin: str | None
    pin_reason: str | None
    pin_expires_at: datetime | None
    ignore_major: bool
    update_id: str | None = Field(description="The update detected for it, if any.")
    latest_allowed: str | None = Field(description="The version the update proposes.")


class UpdateOut(BaseModel):
    id: str
    repository_id: str
    dependency_id: str
    dependency: str
    ecosystem: str
    manifest_path: str
    current_version: str | None
    candidate_version: str | None
    category: str | None = Field(description="major, minor, patch, prerelease or security.")
    semver_change: str | None
    severity: str | None = Field(description="The highest severity of the advisories fixed.")
    advisories: list[dict[str, Any]]
    released_at: datetime | None
    age_days: float | None = Field(description="None when the registry serves no date.")
    deprecated: str | None
    current_yanked: bool
    blocked: bool
    blocked_reasons: list[str]
    group: str | None
    held_back: str | None
    notes: list[str]
    registry_error: str | None
    detected_at: datetime


class DependencySettingsIn(Strict):
    """Only the fields sent change; ``pin: null`` lifts the pin."""

    skip: bool | None = None
    pin: str | None = Field(default=None, min_length=1, max_length=200)
    pin_reason: str | None = Field(default=None, max_length=500)
    pin_expires_at: datetime | None = Field(
        default=None, description="The pin lifts itself after this instant."
    )
    ignore_major: bool | None = None


class ScanIn(Strict):
    repo_id: str = Field(min_length=1, max_length=40)


class ScanOut(BaseModel):
    job_id: str
    repo_id: str
    status: str


class UpdateJobIn(Strict):
    repo_id: str = Field(min_length=1, max_length=40)
    dependency: str = Field(min_length=1, max_length=214)
    target_version: str = Field(min_length=1, max_length=100)
    ecosystem: Literal["pypi", "npm"] | None = Field(
        default=None, description="Needed only when both ecosystems declare the name."
    )


class UpdateJobCreated(BaseModel):
    id: str
    status: str
    repo_id: str
    dependency: str
    from_version: str | None
    target_version: str
    created_at: datetime


class PullRequestOut(BaseModel):
    id: str
    repository_id: str
    job_id: str | None
    provider: str
    number: int | None
    url: str | None
    title: str
    body: str
    status: str
    base_branch: str
    head_branch: str
    head_commit: str | None
    confidence: float | None
    confidence_factors: dict[str, Any] | None
    diff_summary: dict[str, Any]
    test_summary: dict[str, Any] | None
    merge_commit: str | None
    error: str | None = Field(description="Why the last merge or close did not happen.")
    created_at: datetime
    merged_at: datetime | None
    closed_at: datetime | None


class PullRequestAction(BaseModel):
    job_id: str = Field(description="The job carrying the merge or close out.")
    pull_request: PullRequestOut


class RegistryIn(Strict):
    ecosystem: Literal["pypi", "npm"]
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="PyPI: the simple index (…/simple/); npm: the registry's root URL.",
    )
    username: str | None = Field(default=None, max_length=200)
    secret: str | None = Field(
        default=None,
        max_length=4000,
        description="The password (PyPI) or token (npm); stored encrypted, never shown.",
    )
    repo_id: str | None = Field(
        default=None, max_length=40, description="Only for this repository; default: all."
    )


class RegistryOut(BaseModel):
    id: str
    ecosystem: str
    url: str
    username: str | None
    has_secret: bool
    repo_id: str | None
    created_at: datetime
