"""Projects, the repositories they group, each repository's timeline, and git-upload remotes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin, UTCDateTime
from forgeyard.kernel.ids import PrefixedId
from forgeyard.models.columns import organization, prefixed_id


class RepoSource(StrEnum):
    URL = "url"  # cloned and fetched from clone_url
    PUSH = "push"  # filled by git pushes to a git-upload remote
    ARCHIVE = "archive"  # made from an uploaded archive (legacy sessions)


class RepoStatus(StrEnum):
    REGISTERED = "registered"  # no successful fetch yet
    ACTIVE = "active"  # the mirror holds the repository
    ERROR = "error"  # the last fetch failed (fetch_error says why)


class Project(TimestampMixin, Base):
    __tablename__ = "projects"
    id: Mapped[str] = prefixed_id("prj")
    organization_id: Mapped[str] = organization()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (UniqueConstraint("organization_id", "name"),)


class Repository(TimestampMixin, Base):
    __tablename__ = "repositories"
    id: Mapped[str] = prefixed_id("repo")
    organization_id: Mapped[str] = organization()
    project_id: Mapped[str | None] = mapped_column(
        PrefixedId("prj"), ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), default=RepoSource.URL)
    clone_url: Mapped[str | None] = mapped_column(String(2048))
    # "user:secret" or a token for https clones, encrypted with the instance's SecretBox.
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=RepoStatus.REGISTERED)
    fetch_error: Mapped[str | None] = mapped_column(Text)
    default_branch: Mapped[str | None] = mapped_column(String(255))
    head_commit: Mapped[str | None] = mapped_column(String(64))
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # No foreign key: analyses reference repositories, and a cycle would complicate deletes.
    last_analysis_id: Mapped[str | None] = mapped_column(String(40))
    last_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # As of the last dependency scan (seed 000's list shows them); None before the first.
    dependency_count: Mapped[int | None] = mapped_column(Integer)
    outdated_count: Mapped[int | None] = mapped_column(Integer)
    # Validated by repos.schemas.RepoSettings / QualityGates; stored whole.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quality_gates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # When the schedule next runs an analysis (None: never scheduled).
    next_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_by_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (UniqueConstraint("organization_id", "name"),)


class RepoEvent(Base):
    """One line of a repository's timeline: registered, fetched, analysed, gate failed, …"""

    __tablename__ = "repository_events"
    id: Mapped[str] = prefixed_id("rev")
    organization_id: Mapped[str] = organization()
    repository_id: Mapped[str] = mapped_column(
        PrefixedId("repo"), ForeignKey("repositories.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_repository_events_timeline", "repository_id", "id"),)


class GitUpload(TimestampMixin, Base):
    """A temporary git remote: pushes to it with its token fill one repository."""

    __tablename__ = "git_uploads"
    id: Mapped[str] = prefixed_id("gup")
    organization_id: Mapped[str] = organization()
    # Set from the start when the upload targets an existing repository, else by the first push.
    repository_id: Mapped[str | None] = mapped_column(
        PrefixedId("repo"), ForeignKey("repositories.id", ondelete="CASCADE")
    )
    repository_name: Mapped[str] = mapped_column(String(200))
    project_id: Mapped[str | None] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pushes: Mapped[int] = mapped_column(Integer, default=0)
    last_push_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[str | None] = mapped_column(String(40))
