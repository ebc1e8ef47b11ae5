"""Forge integrations (GitHub App installations, GitLab OAuth grants), the forge repositories
they can see, inbound webhook deliveries seen, and the instance's settings.

A GitHub App installation is an ``integrations`` row of kind ``github`` rather than a table of
its own: its only field of its own is the installation id, which is ``external_id`` here
(unique per kind, indexed for webhook look-ups). Later kinds (datadog, slack, ...) fit the
same row: ``config`` holds what may be shown, ``secrets_encrypted`` one sealed JSON object of
what may not, and ``inbound_token_hash`` the hash of a token a service sends back to us.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin, UTCDateTime, utcnow
from forgeyard.kernel.ids import PrefixedId
from forgeyard.models.columns import organization, prefixed_id


class IntegrationKind(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"


class IntegrationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # the forge suspended the installation: events are ignored
    REMOVED = "removed"  # uninstalled on the forge's side; kept until someone deletes it


class Integration(TimestampMixin, Base):
    __tablename__ = "integrations"
    id: Mapped[str] = prefixed_id("int")
    organization_id: Mapped[str] = organization()
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=IntegrationStatus.ACTIVE)
    # The forge's own id of what was connected: a GitHub installation id.
    external_id: Mapped[str | None] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # One JSON object (tokens, client secrets) sealed with the instance's SecretBox.
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    # Keyed hash of the token a forge sends with each webhook (GitLab's X-Gitlab-Token).
    inbound_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (UniqueConstraint("kind", "external_id"),)


class ForgeRepository(TimestampMixin, Base):
    """A repository the forge lets an integration see; ``enabled`` ones build on events and are
    linked to a Forgeyard repository."""

    __tablename__ = "forge_repositories"
    id: Mapped[str] = prefixed_id("frep")
    organization_id: Mapped[str] = organization()
    integration_id: Mapped[str] = mapped_column(
        PrefixedId("int"), ForeignKey("integrations.id", ondelete="CASCADE")
    )
    forge_repo_id: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(500))
    clone_url: Mapped[str | None] = mapped_column(String(2048))
    default_branch: Mapped[str | None] = mapped_column(String(255))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    repository_id: Mapped[str | None] = mapped_column(
        PrefixedId("repo"), ForeignKey("repositories.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (
        UniqueConstraint("integration_id", "forge_repo_id"),
        Index("ix_forge_repositories_integration_full_name", "integration_id", "full_name"),
    )


class IntegrationState(Base):
    """An unfinished connection (``/integrations/*/start``): single use, short-lived, bound to
    the organization and person who started it; only the state's hash is kept."""

    __tablename__ = "integration_states"
    id: Mapped[str] = prefixed_id("ints")
    organization_id: Mapped[str] = organization()
    user_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # GitLab: base_url, client_id, redirect_uri; secrets inside are sealed.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InboundDelivery(Base):
    """A forge delivery already handled: a replay of its id does nothing. (Outgoing webhooks
    own the name ``webhook_deliveries``.)"""

    __tablename__ = "inbound_webhook_deliveries"
    id: Mapped[str] = prefixed_id("inwh")
    forge: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("forge", "delivery_id"),)


class InstanceSetting(Base):
    """One instance-wide setting (``artifact_storage``, ``preferences``); secret parts of a
    value are sealed inside it."""

    __tablename__ = "instance_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(40))
