"""Analyses of a repository, the findings they see, the per-file result cache and uploads.

A finding is one problem in one repository, identified across analyses by its content
fingerprint; ``finding_occurrences`` records which analyses saw it, so a finding keeps its id
and its status (new, open, fixed, ignored) from one analysis to the next.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin, UTCDateTime
from forgeyard.kernel.ids import PrefixedId
from forgeyard.models.columns import organization, prefixed_id, repository


class AnalysisStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ANALYSIS_TRANSITIONS: dict[AnalysisStatus, frozenset[AnalysisStatus]] = {
    AnalysisStatus.QUEUED: frozenset(
        {AnalysisStatus.RUNNING, AnalysisStatus.FAILED, AnalysisStatus.CANCELLED}
    ),
    # running -> running: a retried job starts the analysis again.
    AnalysisStatus.RUNNING: frozenset(
        {
            AnalysisStatus.RUNNING,
            AnalysisStatus.COMPLETED,
            AnalysisStatus.FAILED,
            AnalysisStatus.CANCELLED,
        }
    ),
    AnalysisStatus.COMPLETED: frozenset(),
    AnalysisStatus.FAILED: frozenset(),
    AnalysisStatus.CANCELLED: frozenset(),
}
ACTIVE_ANALYSIS = frozenset({AnalysisStatus.QUEUED, AnalysisStatus.RUNNING})


class FindingStatus(StrEnum):
    NEW = "new"  # first seen by the repository's latest analysis
    OPEN = "open"  # seen before and still there
    FIXED = "fixed"  # gone from the latest analysis
    IGNORED = "ignored"  # a person said so; stays ignored while the fingerprint lasts


class Analysis(TimestampMixin, Base):
    __tablename__ = "analyses"
    id: Mapped[str] = prefixed_id("ana")
    organization_id: Mapped[str] = organization()
    repository_id: Mapped[str] = repository()
    job_id: Mapped[str | None] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(16))  # manual, schedule, push, session
    ref: Mapped[str | None] = mapped_column(String(255))
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=AnalysisStatus.QUEUED)
    # At most one queued or running analysis per repository: the unique key holds the
    # repository id while active and is cleared when the analysis ends.
    active_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    files_total: Mapped[int | None] = mapped_column(Integer)
    files_analysed: Mapped[int | None] = mapped_column(Integer)  # cache misses, re-run
    lines: Mapped[int | None] = mapped_column(Integer)
    detectors: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # name -> version
    health_score: Mapped[float | None] = mapped_column(Float)
    grade: Mapped[str | None] = mapped_column(String(1))
    score_components: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Open (new + open) findings by severity, and what changed since the previous analysis.
    open_by_severity: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    new_by_severity: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    fixed_count: Mapped[int | None] = mapped_column(Integer)
    gate_passed: Mapped[bool | None] = mapped_column(Boolean)
    gate_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        Index("ix_analyses_repository", "repository_id", "id"),
        Index("ix_analyses_org_created", "organization_id", "created_at"),
    )


class Finding(TimestampMixin, Base):
    __tablename__ = "findings"
    id: Mapped[str] = prefixed_id("fnd")
    organization_id: Mapped[str] = organization()
    repository_id: Mapped[str] = repository()
    fingerprint: Mapped[str] = mapped_column(String(80))
    detector: Mapped[str] = mapped_column(String(40))
    rule_id: Mapped[str] = mapped_column(String(80))
    severity: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    line_start: Mapped[int] = mapped_column(Integer)
    line_end: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    snippet: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str | None] = mapped_column(String(500))
    fixable: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=FindingStatus.NEW)
    first_analysis_id: Mapped[str] = mapped_column(String(40))
    fixed_analysis_id: Mapped[str | None] = mapped_column(String(40))
    ignored_reason: Mapped[str | None] = mapped_column(Text)
    ignored_by_id: Mapped[str | None] = mapped_column(String(40))
    ignored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("repository_id", "fingerprint"),
        Index("ix_findings_org_status", "organization_id", "status", "severity"),
    )


class FindingOccurrence(Base):
    """Finding ``finding_id`` was seen by analysis ``analysis_id``."""

    __tablename__ = "finding_occurrences"
    analysis_id: Mapped[str] = mapped_column(
        PrefixedId("ana"), ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True
    )
    finding_id: Mapped[str] = mapped_column(
        PrefixedId("fnd"), ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_finding_occurrences_finding", "finding_id"),)


class FileResult(Base):
    """One detector's report on one file content: what makes re-analysis incremental.

    Keyed by content (the git blob id) and the detector's version, never by path or commit,
    so a file that did not change is never analysed twice. Scoped to the organization: a
    cache hit must not tell anyone what another organization's code contains.
    """

    __tablename__ = "analysis_file_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = organization()
    detector: Mapped[str] = mapped_column(String(40))
    detector_version: Mapped[str] = mapped_column(String(120))
    blob: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("organization_id", "detector", "detector_version", "blob"),)


class UploadSession(TimestampMixin, Base):
    """The legacy flow: an archive of a source tree, analysed as a repository of its own.

    Its status is its analysis's (or "uploaded" before one), so it is not stored twice.
    """

    __tablename__ = "upload_sessions"
    id: Mapped[str] = prefixed_id("ses")
    organization_id: Mapped[str] = organization()
    filename: Mapped[str] = mapped_column(String(500))
    archive_format: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(Integer)
    files: Mapped[int] = mapped_column(Integer)
    repository_id: Mapped[str | None] = mapped_column(
        PrefixedId("repo"), ForeignKey("repositories.id", ondelete="SET NULL")
    )
    analysis_id: Mapped[str | None] = mapped_column(String(40))
    created_by_id: Mapped[str | None] = mapped_column(String(40))
