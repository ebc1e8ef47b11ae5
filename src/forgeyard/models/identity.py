"""Organizations, people, their memberships, and the credentials that prove who they are."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeyard.kernel.db import Base, TimestampMixin, UTCDateTime
from forgeyard.kernel.ids import PrefixedId, new_id


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class Plan(StrEnum):
    FREE = "free"
    GROWTH = "growth"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class SetupState(StrEnum):
    NEEDS_SETUP = "needs_setup"
    IN_PROGRESS = "in_progress"
    READY = "ready"


def _id(prefix: str) -> Mapped[str]:
    return mapped_column(PrefixedId(prefix), primary_key=True, default=lambda: new_id(prefix))


def _fk(target: str, prefix: str, *, nullable: bool = False, index: bool = True) -> Mapped[Any]:
    return mapped_column(
        PrefixedId(prefix), ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index
    )


class Organization(TimestampMixin, Base):
    __tablename__ = "organizations"
    id: Mapped[str] = _id("org")
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(16), default=Plan.FREE)


class User(TimestampMixin, Base):
    __tablename__ = "users"
    id: Mapped[str] = _id("usr")
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))  # None: signs in via OIDC
    # Access tokens issued before this are refused: "sign out everywhere", password resets.
    sessions_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Membership(TimestampMixin, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)
    id: Mapped[str] = _id("mem")
    organization_id: Mapped[str] = _fk("organizations.id", "org")
    user_id: Mapped[str] = _fk("users.id", "usr")
    role: Mapped[str] = mapped_column(String(16))
    # Disabling keeps the row, so the history that names this person stays whole.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Invitation(TimestampMixin, Base):
    __tablename__ = "invitations"
    id: Mapped[str] = _id("inv")
    organization_id: Mapped[str] = _fk("organizations.id", "org")
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[str | None] = _fk("users.id", "usr", nullable=True, index=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PasswordReset(TimestampMixin, Base):
    __tablename__ = "password_resets"
    id: Mapped[str] = _id("pwr")
    user_id: Mapped[str] = _fk("users.id", "usr")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RefreshToken(TimestampMixin, Base):
    """One link of a rotation chain; every link of a sign-in shares ``family_id``."""

    __tablename__ = "refresh_tokens"
    id: Mapped[str] = _id("rt")
    family_id: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[str] = _fk("users.id", "usr")
    organization_id: Mapped[str] = _fk("organizations.id", "org", index=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKey(TimestampMixin, Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = _id("key")
    organization_id: Mapped[str] = _fk("organizations.id", "org")
    created_by_id: Mapped[str | None] = _fk("users.id", "usr", nullable=True, index=False)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # fy_…last4, to recognise a key in lists
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InstanceSetup(TimestampMixin, Base):
    """The first-run state of this installation: one row."""

    __tablename__ = "instance_setup"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    state: Mapped[str] = mapped_column(String(16), default=SetupState.NEEDS_SETUP)
    owner_user_id: Mapped[str | None] = _fk("users.id", "usr", nullable=True, index=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BootstrapToken(TimestampMixin, Base):
    __tablename__ = "bootstrap_tokens"
    id: Mapped[str] = _id("bst")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SetupSession(TimestampMixin, Base):
    __tablename__ = "setup_sessions"
    id: Mapped[str] = _id("sss")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # slides on every use


class IdentityProvider(TimestampMixin, Base):
    """The instance's OpenID Connect provider (seed 003: one, configured during setup)."""

    __tablename__ = "identity_providers"
    id: Mapped[str] = _id("idp")
    kind: Mapped[str] = mapped_column(String(16))  # "oidc"
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    client_secret_encrypted: Mapped[str] = mapped_column(String(1000))


class AuthRequest(TimestampMixin, Base):
    """A sign-in sent to the provider and not yet back: state, nonce and PKCE verifier."""

    __tablename__ = "auth_requests"
    id: Mapped[str] = _id("oar")
    # None for GitHub, whose endpoints are fixed by configuration rather than discovered.
    provider_id: Mapped[str | None] = _fk("identity_providers.id", "idp", nullable=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "login", "setup_owner", "github_login"
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier_encrypted: Mapped[str] = mapped_column(String(500))
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
