"""Request and response shapes of analyses, findings, quality gates and upload sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from forgeyard.analysis.gates import QualityGates
from forgeyard.kernel.git import check_ref_name

Severity = Literal["critical", "high", "medium", "low", "info"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerIn(Strict):
    repository_id: str = Field(max_length=40)
    ref: Annotated[str, AfterValidator(check_ref_name)] | None = Field(
        default=None,
        description="Branch, tag or commit; default: the repository's target or default branch.",
    )


class AnalysisOut(BaseModel):
    id: str
    repository_id: str
    job_id: str | None
    trigger: str
    status: str
    ref: str | None
    commit_sha: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    files_total: int | None
    files_analysed: int | None = Field(description="Files re-run; the others came from cache.")
    lines: int | None
    detectors: dict[str, str]
    health_score: float | None
    grade: str | None
    score_components: dict[str, Any]
    open_findings: dict[str, int]
    new_findings: dict[str, int]
    fixed_findings: int | None
    gate_passed: bool | None
    gate_reasons: list[str]


class ConcurrencyOut(BaseModel):
    limit: int
    in_use: int
    available: int
    analyses_per_hour: int | None
    started_last_hour: int


class FindingOut(BaseModel):
    id: str
    repository_id: str
    fingerprint: str
    detector: str
    rule_id: str
    severity: str
    status: str
    path: str
    line_start: int
    line_end: int
    message: str
    snippet: str
    symbol: str | None
    fixable: bool
    first_analysis_id: str
    fixed_analysis_id: str | None
    ignored_reason: str | None
    ignored_at: datetime | None
    created_at: datetime
    updated_at: datetime


class FindingStatusIn(Strict):
    """Ignore a finding (a reason is required) or take the ignore back."""

    status: Literal["ignored", "open"]
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class SeveritySummary(BaseModel):
    total: int
    by_severity: dict[str, int]
    by_status: dict[str, int]


class DetectorGroup(BaseModel):
    detector: str
    total: int
    by_severity: dict[str, int]


class QualityGatesOut(BaseModel):
    repository_id: str
    quality_gates: QualityGates


class SessionOut(BaseModel):
    id: str
    status: str
    filename: str
    archive_format: str
    size_bytes: int
    files: int
    repository_id: str | None
    analysis: AnalysisOut | None
    created_at: datetime
