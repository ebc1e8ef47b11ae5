"""Model to response shapes, in one place so no route can leak a column by accident."""

from __future__ import annotations

from forgeyard.identity import schemas
from forgeyard.identity.service import Member
from forgeyard.models.identity import ApiKey


def user_out(member: Member) -> schemas.UserOut:
    return schemas.UserOut(
        id=member.user.id,
        email=member.user.email,
        name=member.user.name,
        role=member.membership.role,
        organization_id=member.membership.organization_id,
        disabled=member.membership.disabled_at is not None,
        created_at=member.user.created_at,
    )


def api_key_out(api_key: ApiKey) -> schemas.ApiKeyOut:
    return schemas.ApiKeyOut(
        id=api_key.id,
        name=api_key.name,
        scopes=api_key.scopes,
        hint=api_key.hint,
        created_at=api_key.created_at,
        expires_at=api_key.expires_at,
        last_used_at=api_key.last_used_at,
        revoked=api_key.revoked_at is not None,
    )
