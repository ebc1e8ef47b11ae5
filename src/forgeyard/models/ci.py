"""CI: pipelines, builds and their steps, logs and artifacts, runners and their tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin, UTCDateTime, utcnow
from forgeyard.kernel.ids import PrefixedId
from forgeyard.models.columns import organization, prefixed_id, repository


class PipelineSource(StrEnum):
    STORED = "stored"  # the YAML is kept here (``content``)
    REPOSITORY = "repository"  # read from ``path`` in the repository at each build's commit


class PipelineDefinition(TimestampMixin, Base):
    __tablename__ = "ci_pipelines"
    id: Mapped[str] = prefixed_id("pip")
    organization_id: Mapped[str] = organization()
    project_id: Mapped[str] = mapped_column(
        PrefixedId("prj"), ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text)
    repository_id: Mapped[str | None] = mapped_column(
        PrefixedId("repo"), ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (UniqueConstraint("project_id", "name"),)


class BuildStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


FINAL_BUILD_STATUSES = frozenset(
    {BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.CANCELLED, BuildStatus.TIMED_OUT}
)
# running -> queued: the runner lost its lease and the build waits for another.
BUILD_TRANSITIONS: dict[BuildStatus, frozenset[BuildStatus]] = {
    BuildStatus.QUEUED: frozenset({BuildStatus.RUNNING, BuildStatus.CANCELLED}),
    BuildStatus.RUNNING: FINAL_BUILD_STATUSES | {BuildStatus.QUEUED},
    **{status: frozenset() for status in FINAL_BUILD_STATUSES},
}


class Build(TimestampMixin, Base):
    """One run of a pipeline against one commit.

    ``spec`` holds the exact signed bytes the runner gets (the resolved pipeline, the commit,
    which steps to run); a retry copies the pipeline from it, so it runs what the original ran.
    ``runner_id`` and ``lease_expires_at`` say who holds the build while it runs.
    """

    __tablename__ = "ci_builds"
    id: Mapped[str] = prefixed_id("bld")
    organization_id: Mapped[str] = organization()
    project_id: Mapped[str | None] = mapped_column(
        PrefixedId("prj"), ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    repository_id: Mapped[str] = repository(index=True)
    pipeline_id: Mapped[str | None] = mapped_column(
        PrefixedId("pip"), ForeignKey("ci_pipelines.id", ondelete="SET NULL")
    )
    number: Mapped[int] = mapped_column(Integer)  # per repository, from 1
    ref: Mapped[str] = mapped_column(String(255))
    commit_sha: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=BuildStatus.QUEUED)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)  # a runner must have them all
    spec: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))
    retry_of_id: Mapped[str | None] = mapped_column(PrefixedId("bld"))
    pull_request_id: Mapped[str | None] = mapped_column(String(40), index=True)
    runner_id: Mapped[str | None] = mapped_column(
        PrefixedId("rnr"), ForeignKey("ci_runners.id", ondelete="SET NULL")
    )
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[str | None] = mapped_column(String(40))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("repository_id", "number"),
        Index("ix_ci_builds_status_queued_at", "status", "queued_at"),
    )


class BuildCounter(Base):
    """The last build number of a repository. A new build takes the next one in one upsert
    that locks this row until its transaction ends: numbers are never shared and nothing
    retries (as GitLab's internal ids)."""

    __tablename__ = "ci_build_counters"
    repository_id: Mapped[str] = mapped_column(
        PrefixedId("repo"), ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(Integer)


class BuildStep(Base):
    __tablename__ = "ci_build_steps"
    id: Mapped[str] = prefixed_id("stp")
    build_id: Mapped[str] = mapped_column(
        PrefixedId("bld"), ForeignKey("ci_builds.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    reused: Mapped[bool] = mapped_column(Boolean, default=False)  # kept from the retried build
    log_lines: Mapped[int] = mapped_column(Integer, default=0)
    log_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    log_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("build_id", "position"),)


class BuildLogChunk(Base):
    """A batch of one step's log lines as the runner sent it, numbered across the build.

    ``seq`` orders the chunks of a build (it is the SSE event id), ``first_line`` is the step's
    line number of the chunk's first line, ``text`` the lines joined by newlines.
    """

    __tablename__ = "ci_log_chunks"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    build_id: Mapped[str] = mapped_column(
        PrefixedId("bld"), ForeignKey("ci_builds.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    first_line: Mapped[int] = mapped_column(Integer)
    line_count: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)

    # A batch sent again (its answer was lost) is the same step's same first line.
    __table_args__ = (
        UniqueConstraint("build_id", "seq"),
        UniqueConstraint("build_id", "step", "first_line", name="uq_ci_log_chunks_batch"),
    )


class Artifact(Base):
    __tablename__ = "ci_artifacts"
    id: Mapped[str] = prefixed_id("art")
    organization_id: Mapped[str] = organization()
    build_id: Mapped[str] = mapped_column(
        PrefixedId("bld"), ForeignKey("ci_builds.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(500))
    storage_key: Mapped[str] = mapped_column(String(600))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("build_id", "path"),)


class AccessTokenKind(StrEnum):
    LOG_STREAM = "log_stream"  # follow one build's logs; lives minutes, used many times
    ARTIFACT_DOWNLOAD = "artifact_download"  # one artifact, once


class CiAccessToken(Base):
    """Short-lived tokens that stand in for a session where a browser cannot send one
    (an EventSource, a download link); stored only as hashes."""

    __tablename__ = "ci_access_tokens"
    id: Mapped[str] = prefixed_id("cat")
    organization_id: Mapped[str] = organization()
    kind: Mapped[str] = mapped_column(String(24))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    subject_id: Mapped[str] = mapped_column(String(40))  # the build or the artifact
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RunnerStatus(StrEnum):
    ONLINE = "online"
    PAUSED = "paused"  # claims nothing, finishes what it holds
    OFFLINE = "offline"


class Runner(TimestampMixin, Base):
    __tablename__ = "ci_runners"
    id: Mapped[str] = prefixed_id("rnr")
    organization_id: Mapped[str] = organization()
    name: Mapped[str] = mapped_column(String(100))
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RunnerStatus.ONLINE)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    registered_with_id: Mapped[str | None] = mapped_column(String(40))


class RunnerRegistrationToken(TimestampMixin, Base):
    """What an admin hands to whoever sets up runners; valid for several until it expires."""

    __tablename__ = "ci_registration_tokens"
    id: Mapped[str] = prefixed_id("rrt")
    organization_id: Mapped[str] = organization()
    description: Mapped[str | None] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)  # given to every runner
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[str | None] = mapped_column(String(40))
