"""Request and response shapes of the identity endpoints. No hash ever appears in one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from forgeyard.kernel.passwords import MIN_PASSWORD_LENGTH

RoleName = Literal["owner", "admin", "member", "viewer"]
PlanName = Literal["free", "growth", "pro", "enterprise"]
ScopeName = Literal["read", "write", "admin"]
Password = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)


def _email(value: str) -> str:
    # Self-hosted teams use internal domains (corp.local, example.test): syntax is checked,
    # global deliverability is not.
    try:
        checked = validate_email(value, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    return checked.normalized.lower()


EmailStr = Annotated[str, Field(max_length=320), AfterValidator(_email)]


class Strict(BaseModel):
    """Unknown fields are refused: a client sending ``role`` to a profile route learns so."""

    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    email: EmailStr
    password: str = Password
    name: str = Field(min_length=1, max_length=200)
    organization_name: str | None = Field(default=None, min_length=1, max_length=200)
    invitation_token: str | None = None


class LoginIn(Strict):
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)
    organization_id: str | None = None


class RefreshIn(Strict):
    refresh_token: str = Field(min_length=1)


class LogoutIn(Strict):
    refresh_token: str | None = None


class PasswordResetIn(Strict):
    email: EmailStr


class PasswordResetConfirmIn(Strict):
    token: str = Field(min_length=1)
    password: str = Password


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: RoleName
    organization_id: str
    disabled: bool = False
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int
    user: UserOut


class OrganizationOut(BaseModel):
    id: str
    name: str
    plan: PlanName
    created_at: datetime


class OrganizationPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    plan: PlanName | None = None


class InviteIn(Strict):
    email: EmailStr
    role: RoleName = "member"


class InvitationOut(BaseModel):
    id: str
    email: str
    role: RoleName
    organization_id: str
    expires_at: datetime


class RoleChangeIn(Strict):
    role: RoleName


class ApiKeyIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[ScopeName] = Field(default=["read"], min_length=1)
    expires_at: datetime | None = None


class ApiKeyOut(BaseModel):
    id: str
    name: str
    scopes: list[ScopeName]
    hint: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. Shown once: only its hash is stored.")


class AuditEventOut(BaseModel):
    id: str
    action: str
    actor_id: str | None
    target_id: str | None
    ip_address: str | None
    details: dict[str, object]
    created_at: datetime


class SetupStatusOut(BaseModel):
    state: Literal["needs_setup", "in_progress", "ready"]
    owner_created: bool


class BootstrapVerifyIn(Strict):
    token: str = Field(min_length=1)


class SetupSessionOut(BaseModel):
    setup_session_token: str
    expires_at: datetime


class SetupOwnerIn(Strict):
    email: EmailStr
    password: str = Password
    name: str = Field(min_length=1, max_length=200)
    organization_name: str = Field(min_length=1, max_length=200)


class UserRef(BaseModel):
    id: str
    email: str
    name: str


class MeOut(BaseModel):
    kind: Literal["user", "api_key"]
    organization_id: str
    role: RoleName
    plan: PlanName
    user: UserRef | None
    api_key_id: str | None
    scope: ScopeName | None


class Accepted(BaseModel):
    message: str


class InvitationCreated(InvitationOut):
    accept_url: str = Field(description="The link the invitee opens; also e-mailed when possible.")
    emailed: bool


class MemberOut(BaseModel):
    id: str
    name: str
    role: RoleName
    disabled: bool


class OidcConfigureIn(Strict):
    issuer: str = Field(min_length=1, max_length=500, description="The provider's issuer URL.")
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=500)


class OidcProviderOut(BaseModel):
    id: str
    issuer: str
    client_id: str


class OidcStartIn(Strict):
    redirect_uri: str = Field(min_length=1, max_length=1000)


class OidcStartOut(BaseModel):
    authorization_url: str


class OidcCallbackIn(Strict):
    code: str = Field(min_length=1, max_length=2000)
    state: str = Field(min_length=1, max_length=200)


class OidcOwnerIn(OidcCallbackIn):
    organization_name: str = Field(min_length=1, max_length=200)
