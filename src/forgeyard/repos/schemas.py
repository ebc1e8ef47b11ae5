"""Request and response shapes of projects, repositories, their timelines and git uploads.

Credentials never appear in a response: a repository says only whether it has some.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from forgeyard.kernel.git import check_ref_name

# Detector names are the analysis domain's; here they are only checked for shape, and the
# analysis service refuses names it does not know (see repos.service.update_settings).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@ -]{0,199}$")


def _name(value: str) -> str:
    value = value.strip()
    if not _NAME.match(value):
        raise ValueError(
            "a name is 1-200 letters, digits, spaces and . _ / @ -, starting with a letter or digit"
        )
    return value


def _pattern_list(values: list[str]) -> list[str]:
    cleaned = [value.strip() for value in values]
    if any(not value for value in cleaned):
        raise ValueError("patterns may not be empty")
    return list(dict.fromkeys(cleaned))


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_name)]
Patterns = Annotated[
    list[Annotated[str, Field(max_length=300)]],
    Field(max_length=200),
    AfterValidator(_pattern_list),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectIn(Strict):
    name: Name
    description: str | None = Field(default=None, max_length=2000)


class ProjectPatch(Strict):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)


class ProjectOut(BaseModel):
    id: str
    name: str
    description: str | None
    repository_count: int
    created_at: datetime
    updated_at: datetime


class RollupRepo(BaseModel):
    id: str
    name: str
    status: str
    default_branch: str | None
    last_scan_at: datetime | None
    health_score: float | None
    grade: str | None
    open_findings: dict[str, int]
    gate_passed: bool | None
    outdated_dependencies: int | None = Field(
        description="Dependencies with an allowed update, as of the last dependency scan."
    )
    # Filled by CI once it exists; None until then.
    last_build_status: str | None


class ProjectRollup(BaseModel):
    project: ProjectOut
    repositories: list[RollupRepo]
    open_findings: dict[str, int]
    average_health_score: float | None


_GROUP_TYPES = Literal["major", "minor", "patch", "security", "prerelease"]
_FORGE_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")


class UpdateGroup(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_name)]
    patterns: Patterns = Field(
        default_factory=list, description="Package name globs; empty: every package."
    )
    update_types: list[_GROUP_TYPES] = Field(
        default_factory=list, description="Categories or semver changes; empty: any."
    )


class PullRequestSettings(Strict):
    provider: Literal["local", "github", "gitlab"] = Field(
        default="local",
        description="local: the branch is pushed to origin and the pull request lives in "
        "Forgeyard; github, gitlab: opened through the forge's API with the repository's token.",
    )
    repository: str | None = Field(
        default=None,
        max_length=300,
        pattern=_FORGE_REPOSITORY.pattern,
        description="The forge's name for the repository (owner/name); default: from the URL.",
    )
    api_url: str | None = Field(
        default=None,
        max_length=500,
        description="The forge's API, on the repository's own host; default: api.github.com "
        "for github.com, else the host's /api/v3 (GitHub) or /api/v4 (GitLab).",
    )


class RepoSettings(Strict):
    """``PUT /repos/{id}/settings`` replaces them whole (seed 000, plus analysis settings)."""

    schedule: Literal["never", "daily", "weekly"] = Field(
        default="never", description="How often the repository is analysed on its own."
    )
    target_branch: Annotated[str, AfterValidator(check_ref_name)] | None = Field(
        default=None, description="Branch analysed and updated; default: HEAD."
    )
    exclude_packages: Patterns = Field(
        default_factory=list, description="Dependencies never updated (globs)."
    )
    exclude_paths: Patterns = Field(
        default_factory=list, description="Files never analysed (globs, e.g. 'vendor/**')."
    )
    detectors: dict[Annotated[str, Field(max_length=40)], bool] = Field(
        default_factory=dict, description="Detectors switched on (true) or off (false)."
    )
    min_release_age: int = Field(
        default=0,
        ge=0,
        le=365,
        description="Days a release must have been out before it is proposed (security "
        "updates skip this cooldown).",
    )
    groups: list[UpdateGroup] = Field(
        default_factory=list,
        max_length=50,
        description="Updates proposed together, in one job and one pull request.",
    )
    auto_update: bool = Field(
        default=False,
        description="Start an update job for every allowed update each scan finds.",
    )
    test_command: str | None = Field(
        default=None,
        max_length=1000,
        description="How update jobs run the tests; default: detected (pytest, npm test).",
    )
    pull_requests: PullRequestSettings = Field(
        default_factory=lambda: PullRequestSettings(),
        description="Where update jobs open their pull requests.",
    )


class RepoIn(Strict):
    clone_url: str = Field(
        min_length=1,
        max_length=2048,
        description="https:// or ssh:// (or user@host:path) URL; a local path or file:// "
        "URL only where the operator allows local clones.",
    )
    name: Name | None = Field(default=None, description="Default: from the URL, e.g. acme/api.")
    project_id: str | None = None
    username: str | None = Field(default=None, max_length=200)
    token: str | None = Field(
        default=None, max_length=2000, description="Password or access token for https clones."
    )
    settings: RepoSettings | None = None


class RepoPatch(Strict):
    name: Name | None = None
    project_id: str | None = None


class LastScan(BaseModel):
    analysis_id: str
    status: str
    commit_sha: str | None
    health_score: float | None
    grade: str | None
    open_findings: dict[str, int]
    gate_passed: bool | None
    finished_at: datetime | None


class RepoOut(BaseModel):
    id: str
    name: str
    project_id: str | None
    source: str
    clone_url: str | None
    has_credentials: bool
    status: str
    fetch_error: str | None
    default_branch: str | None
    head_commit: str | None
    last_fetched_at: datetime | None
    last_scan_at: datetime | None
    dependency_count: int | None = Field(description="As of the last dependency scan.")
    outdated_count: int | None = Field(
        description="Dependencies with an allowed update, as of the last dependency scan."
    )
    settings: RepoSettings
    quality_gates: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RepoDetail(RepoOut):
    last_scan: LastScan | None
    dependencies: list[dict[str, Any]] = Field(
        description="What the last dependency scan found, each with its update if any."
    )


class RepoSettingsOut(BaseModel):
    id: str
    settings: RepoSettings


class RepoEventOut(BaseModel):
    id: str
    kind: str
    message: str
    data: dict[str, Any]
    created_at: datetime


class GitUploadIn(Strict):
    repository_id: str | None = Field(
        default=None, description="Push into this repository; else a new one named `name`."
    )
    name: Name | None = Field(default=None, description="Name of the repository pushes create.")
    project_id: str | None = None


class GitUploadOut(BaseModel):
    id: str
    repository_id: str | None
    repository_name: str
    push_url: str
    username: str
    expires_at: datetime
    pushes: int
    last_push_at: datetime | None
    created_at: datetime


class GitUploadCreated(GitUploadOut):
    token: str = Field(description="The push password; shown only in this answer.")
    authenticated_url: str = Field(
        description="push_url with the credentials in it, for `git push <url> <branch>`."
    )
