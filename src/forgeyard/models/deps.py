"""Dependency updates: what each repository depends on, the updates detected for it, the
jobs that try them, the pull requests they open, private registries and usage counters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin, UTCDateTime, utcnow
from forgeyard.kernel.ids import PrefixedId
from forgeyard.models.columns import organization, prefixed_id, repository


class Dependency(TimestampMixin, Base):
    """One declaration of a package in one manifest, as the last scan read it, with what a
    user set on it (``PATCH /deps/{id}/settings``)."""

    __tablename__ = "dependencies"
    id: Mapped[str] = prefixed_id("dep")
    organization_id: Mapped[str] = organization()
    repository_id: Mapped[str] = repository(index=True)
    ecosystem: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(214))
    manifest_path: Mapped[str] = mapped_column(String(1000))
    scope: Mapped[str] = mapped_column(String(100))  # main, dev, optional:<extra>…
    specifier: Mapped[str] = mapped_column(String(500))
    current_version: Mapped[str | None] = mapped_column(String(100))
    line: Mapped[int | None] = mapped_column(Integer)
    skip: Mapped[bool] = mapped_column(Boolean, default=False)
    pin: Mapped[str | None] = mapped_column(String(200))
    pin_reason: Mapped[str | None] = mapped_column(String(500))
    pin_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ignore_major: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("repository_id", "ecosystem", "name", "manifest_path"),)


class DependencyUpdate(Base):
    """The update the last scan proposes for one dependency, blocked or not; replaced by each
    scan, deleted when the dependency is up to date."""

    __tablename__ = "dependency_updates"
    id: Mapped[str] = prefixed_id("upd")
    organization_id: Mapped[str] = organization()
    repository_id: Mapped[str] = repository(index=True)
    dependency_id: Mapped[str] = mapped_column(
        PrefixedId("dep"), ForeignKey("dependencies.id", ondelete="CASCADE"), unique=True
    )
    current_version: Mapped[str | None] = mapped_column(String(100))
    candidate_version: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(16))  # major minor patch security…
    semver_change: Mapped[str | None] = mapped_column(String(16))
    severity: Mapped[str | None] = mapped_column(String(16))
    advisories: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deprecated: Mapped[str | None] = mapped_column(Text)
    current_yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    group_name: Mapped[str | None] = mapped_column(String(100))
    held_back: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Set when the registry could not answer: no candidate is known.
    registry_error: Mapped[str | None] = mapped_column(Text)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UpdateJob(Base):
    """The dependency-update side of one job of the job engine: what it changes, its
    confidence with every factor, and how it ended."""

    __tablename__ = "update_jobs"
    job_id: Mapped[str] = mapped_column(
        PrefixedId("job"), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[str] = organization()
    repository_id: Mapped[str] = repository(index=True)
    dependency: Mapped[str] = mapped_column(String(214))  # the package, or the group's name
    group_name: Mapped[str | None] = mapped_column(String(100))
    # [{ecosystem, name, manifest_path, from_version, to_version}], one per declaration.
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    from_version: Mapped[str | None] = mapped_column(String(100))
    to_version: Mapped[str] = mapped_column(String(100))
    branch: Mapped[str | None] = mapped_column(String(250))
    base_commit: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    confidence_factors: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    test_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new_findings: Mapped[int | None] = mapped_column(Integer)
    failure: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str | None] = mapped_column(String(16))  # completed, failed
    pull_request_id: Mapped[str | None] = mapped_column(PrefixedId("pr"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PullRequestStatus(StrEnum):
    OPEN = "open"
    MERGING = "merging"  # a deps.pull_request job is merging it
    CLOSING = "closing"
    MERGED = "merged"
    CLOSED = "closed"


# open -> merging or closing on request; the job ends them merged or closed, or back open
# when the forge refuses (the reason in ``error``).
PULL_REQUEST_TRANSITIONS: dict[PullRequestStatus, frozenset[PullRequestStatus]] = {
    PullRequestStatus.OPEN: frozenset({PullRequestStatus.MERGING, PullRequestStatus.CLOSING}),
    PullRequestStatus.MERGING: frozenset({PullRequestStatus.MERGED, PullRequestStatus.OPEN}),
    PullRequestStatus.CLOSING: frozenset({PullRequestStatus.CLOSED, PullRequestStatus.OPEN}),
    PullRequestStatus.MERGED: frozenset(),
    PullRequestStatus.CLOSED: frozenset(),
}


class PullRequest(TimestampMixin, Base):
    __tablename__ = "pull_requests"
    id: Mapped[str] = prefixed_id("pr")
    organization_id: Mapped[str] = organization()
    repository_id: Mapped[str] = repository(index=True)
    job_id: Mapped[str | None] = mapped_column(PrefixedId("job"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    number: Mapped[int | None] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(100))
    url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    base_branch: Mapped[str] = mapped_column(String(250))
    head_branch: Mapped[str] = mapped_column(String(250))
    head_commit: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PullRequestStatus.OPEN)
    diff_summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    test_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float)
    confidence_factors: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    merge_commit: Mapped[str | None] = mapped_column(String(64))
    # Why the last merge or close did not happen (the forge's or git's words).
    error: Mapped[str | None] = mapped_column(Text)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UsageCounter(Base):
    """Billable events counted per organization and calendar month (UTC)."""

    __tablename__ = "usage_counters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[str] = organization()
    period: Mapped[str] = mapped_column(String(7))  # "2026-11"
    metric: Mapped[str] = mapped_column(String(40))  # jobs_completed, prs_merged…
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("organization_id", "period", "metric"),)


class PackageRegistry(TimestampMixin, Base):
    """A private registry an organization (or one of its repositories) looks packages up in
    and installs from, instead of the instance's."""

    __tablename__ = "package_registries"
    id: Mapped[str] = prefixed_id("preg")
    organization_id: Mapped[str] = organization()
    # None: every repository of the organization without one of its own.
    repository_id: Mapped[str | None] = mapped_column(
        PrefixedId("repo"), ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    ecosystem: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2048))
    username: Mapped[str | None] = mapped_column(String(200))
    # The password or token, encrypted with the instance's SecretBox.
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # One per organization (or repository) and ecosystem; "" stands for the organization.
    scope_key: Mapped[str] = mapped_column(String(40))

    __table_args__ = (UniqueConstraint("organization_id", "scope_key", "ecosystem"),)
