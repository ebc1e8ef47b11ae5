"""CI: pipelines, stored in Forgeyard or read from a repository's file."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin
from forgeyard.kernel.ids import PrefixedId
from forgeyard.models.columns import organization, prefixed_id


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
