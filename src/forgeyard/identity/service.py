"""Accounts, organizations, memberships, invitations and API keys.

Functions take keyword arguments, scope every query to the caller's organization, flush and
never commit. Another domain calls these, never the router.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit, policy
from forgeyard.auth.principals import Principal
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.kernel.crypto import new_token
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from forgeyard.kernel.ids import is_valid_id
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.kernel.passwords import hash_password
from forgeyard.kernel.tokens import generate_api_key
from forgeyard.models.identity import ApiKey, Invitation, Membership, Organization, Role, User


@dataclass(frozen=True, slots=True)
class Member:
    user: User
    membership: Membership


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _not_found(kind: str, id_: str) -> NotFoundError:
    return NotFoundError(f"{kind} {id_} not found")


async def get_organization(*, session: AsyncSession, org_id: str, who: Principal) -> Organization:
    # Another organization's id answers exactly like one that does not exist.
    if org_id != who.organization_id or not is_valid_id("org", org_id):
        raise _not_found("organization", org_id)
    organization = await session.get(Organization, org_id)
    if organization is None:
        raise _not_found("organization", org_id)
    return organization


async def update_organization(
    *,
    session: AsyncSession,
    runtime: AuthRuntime,
    org_id: str,
    who: Principal,
    name: str | None,
    plan: str | None,
) -> Organization:
    organization = await get_organization(session=session, org_id=org_id, who=who)
    if plan is not None and plan != organization.plan:
        if not who.can("org:change_plan"):
            raise ForbiddenError("only an owner may change the plan")
        organization.plan = plan
        runtime.access_changed(session)
    if name is not None:
        organization.name = name
    await session.flush()
    return organization


async def create_account(
    *,
    session: AsyncSession,
    email: str,
    name: str,
    password: str | None,
    organization_id: str,
    role: Role,
) -> Member:
    email = normalize_email(email)
    if await session.scalar(select(User.id).where(User.email == email)):
        raise ConflictError("an account with this e-mail address exists", code="conflict")
    password_hash = await asyncio.to_thread(hash_password, password) if password else None
    user = User(email=email, name=name, password_hash=password_hash)
    session.add(user)
    await session.flush()
    membership = Membership(organization_id=organization_id, user_id=user.id, role=role)
    session.add(membership)
    await session.flush()
    return Member(user, membership)


async def create_organization(*, session: AsyncSession, name: str) -> Organization:
    organization = Organization(name=name)
    session.add(organization)
    await session.flush()
    return organization


def _members_query(org_id: str):  # type: ignore[no-untyped-def]
    return (
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == org_id)
    )


async def list_members(
    *, session: AsyncSession, who: Principal, page: PageParams
) -> tuple[list[Member], int]:
    statement = _members_query(who.organization_id).order_by(Membership.id)
    counted = select(func.count()).select_from(
        select(Membership.id).where(Membership.organization_id == who.organization_id).subquery()
    )
    total = int(await session.scalar(counted) or 0)
    rows = await session.execute(statement.limit(page.limit).offset(page.offset))
    return [Member(row.User, row.Membership) for row in rows], total


async def get_member(*, session: AsyncSession, who: Principal, user_id: str) -> Member:
    if not is_valid_id("usr", user_id):
        raise _not_found("user", user_id)
    row = (
        await session.execute(_members_query(who.organization_id).where(User.id == user_id))
    ).one_or_none()
    if row is None:
        raise _not_found("user", user_id)
    return Member(row.User, row.Membership)


async def _active_owner_count(session: AsyncSession, org_id: str) -> int:
    # Locking the owners' rows (PostgreSQL) makes two owners demoting each other at the same
    # moment take turns, so the second sees the first's change. SQLite serialises anyway.
    owners = await session.scalars(
        select(Membership.id)
        .where(
            Membership.organization_id == org_id,
            Membership.role == Role.OWNER,
            Membership.disabled_at.is_(None),
        )
        .with_for_update()
    )
    return len(owners.all())


async def _guard_owner_change(session: AsyncSession, who: Principal, member: Member) -> None:
    if member.membership.role == Role.OWNER:
        if not who.can("users:grant_owner"):
            raise ForbiddenError("only an owner may change an owner")
        active = member.membership.disabled_at is None
        if active and await _active_owner_count(session, who.organization_id) <= 1:
            raise ConflictError("the last owner cannot be demoted or disabled", code="last_owner")


async def change_role(
    *,
    session: AsyncSession,
    runtime: AuthRuntime,
    who: Principal,
    user_id: str,
    role: Role,
    ip: str | None,
) -> Member:
    member = await get_member(session=session, who=who, user_id=user_id)
    if role == Role.OWNER and not who.can("users:grant_owner"):
        raise ForbiddenError("only an owner may make someone an owner")
    if member.membership.role != role:
        await _guard_owner_change(session, who, member)
        previous = member.membership.role
        member.membership.role = role
        await session.flush()
        runtime.access_changed(session)
        await audit.record(
            session,
            action="user.role_changed",
            organization_id=who.organization_id,
            actor_id=who.actor_id,
            target_id=user_id,
            ip_address=ip,
            details={"from": previous, "to": role.value},
        )
    return member


async def set_disabled(
    *,
    session: AsyncSession,
    runtime: AuthRuntime,
    who: Principal,
    user_id: str,
    disabled: bool,
    ip: str | None,
) -> Member:
    member = await get_member(session=session, who=who, user_id=user_id)
    if disabled and member.membership.disabled_at is None:
        await _guard_owner_change(session, who, member)
        member.membership.disabled_at = utcnow()
    elif not disabled and member.membership.disabled_at is not None:
        if member.membership.role == Role.OWNER and not who.can("users:grant_owner"):
            raise ForbiddenError("only an owner may enable an owner")
        member.membership.disabled_at = None
    else:
        return member
    await session.flush()
    runtime.access_changed(session)
    await audit.record(
        session,
        action="user.disabled" if disabled else "user.enabled",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=user_id,
        ip_address=ip,
    )
    return member


async def invite(
    *,
    session: AsyncSession,
    runtime: AuthRuntime,
    who: Principal,
    email: str,
    role: Role,
    ip: str | None,
) -> tuple[Invitation, str]:
    """The invitation and its token (to be e-mailed; only its hash is kept)."""
    if role == Role.OWNER and not who.can("users:grant_owner"):
        raise ForbiddenError("only an owner may invite an owner")
    email = normalize_email(email)
    existing = await session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email, Membership.organization_id == who.organization_id)
    )
    if existing:
        raise ConflictError(f"{email} is already a member", code="conflict")
    token = new_token()
    invitation = Invitation(
        organization_id=who.organization_id,
        email=email,
        role=role,
        token_hash=runtime.token_hasher.hash(token),
        invited_by_id=who.user_id,
        expires_at=utcnow() + timedelta(days=runtime.settings.auth.invitation_days),
    )
    session.add(invitation)
    await session.flush()
    await audit.record(
        session,
        action="user.invited",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=invitation.id,
        ip_address=ip,
        details={"email": email, "role": role.value},
    )
    return invitation, token


async def redeem_invitation(
    *, session: AsyncSession, runtime: AuthRuntime, token: str, email: str
) -> Invitation:
    invitation = await session.scalar(
        select(Invitation).where(Invitation.token_hash == runtime.token_hasher.hash(token))
    )
    if invitation is None or invitation.email != normalize_email(email):
        raise InvalidInputError(
            "the invitation is not valid for this address", details={"field": "invitation_token"}
        )
    if invitation.accepted_at is not None:
        raise ConflictError("the invitation has been used", code="token_consumed")
    if invitation.expires_at <= utcnow():
        raise ConflictError("the invitation has expired", code="token_expired")
    invitation.accepted_at = utcnow()
    await session.flush()
    return invitation


async def list_api_keys(
    *, session: AsyncSession, who: Principal, page: PageParams
) -> tuple[list[ApiKey], int]:
    statement = (
        select(ApiKey).where(ApiKey.organization_id == who.organization_id).order_by(ApiKey.id)
    )
    return await paginate(session, statement, page)


async def create_api_key(
    *,
    session: AsyncSession,
    runtime: AuthRuntime,
    who: Principal,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    ip: str | None,
) -> tuple[ApiKey, str]:
    broadest = max(scopes, key=policy.SCOPES.index)
    if not policy.role_at_least(who.role, policy.SCOPE_ROLE[broadest]):
        raise ForbiddenError(
            f"a {who.role} cannot create a key with the {broadest} scope",
            details={"scope": broadest},
        )
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInputError("expires_at must be in the future", details={"field": "expires_at"})
    key = generate_api_key()
    api_key = ApiKey(
        organization_id=who.organization_id,
        # A key made with a key acts for the same person, so it is bounded the same way.
        created_by_id=who.user_id or who.on_behalf_of,
        name=name,
        scopes=sorted(set(scopes), key=policy.SCOPES.index),
        token_hash=runtime.token_hasher.hash(key),
        hint=f"{key[:3]}…{key[-4:]}",
        expires_at=expires_at,
    )
    session.add(api_key)
    await session.flush()
    await audit.record(
        session,
        action="api_key.created",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=api_key.id,
        ip_address=ip,
        details={"name": name, "scopes": api_key.scopes},
    )
    return api_key, key


async def revoke_api_key(
    *, session: AsyncSession, runtime: AuthRuntime, who: Principal, key_id: str, ip: str | None
) -> ApiKey:
    api_key = (
        await session.scalar(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.organization_id == who.organization_id)
        )
        if is_valid_id("key", key_id)
        else None
    )
    if api_key is None:
        raise _not_found("API key", key_id)
    if api_key.created_by_id != (who.user_id or who.on_behalf_of) and not who.can("users:manage"):
        raise ForbiddenError("only owners and admins may revoke other people's keys")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        await session.flush()
        runtime.access_changed(session)
        await audit.record(
            session,
            action="api_key.revoked",
            organization_id=who.organization_id,
            actor_id=who.actor_id,
            target_id=key_id,
            ip_address=ip,
        )
    return api_key
