"""Signing in and staying signed in: login, refresh rotation, logout, password resets.

Refresh tokens rotate on every use. Presenting a rotated token again means it was copied:
the whole family (every token descended from that sign-in) is revoked, unless it comes back
within a short grace window, which is what a client that lost the previous response does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.identity.service import Member, normalize_email
from forgeyard.kernel.crypto import new_token
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from forgeyard.kernel.ids import new_id
from forgeyard.kernel.passwords import hash_password, verify_password
from forgeyard.models.identity import Membership, PasswordReset, RefreshToken, User


@dataclass(frozen=True, slots=True)
class IssuedSession:
    access_token: str
    refresh_token: str
    expires_in: int
    member: Member


def _bad_credentials() -> UnauthorizedError:
    # One message for a wrong password and an unknown address: neither reveals the other.
    return UnauthorizedError(
        "wrong e-mail address or password", code="invalid_credentials", keep_changes=True
    )


async def _issue(
    session: AsyncSession, runtime: AuthRuntime, member: Member, family_id: str
) -> IssuedSession:
    access_token, _ = runtime.access_tokens.issue(
        subject=member.user.id, organization_id=member.membership.organization_id
    )
    refresh_token = new_token()
    session.add(
        RefreshToken(
            family_id=family_id,
            user_id=member.user.id,
            organization_id=member.membership.organization_id,
            token_hash=runtime.token_hasher.hash(refresh_token),
            expires_at=utcnow() + timedelta(days=runtime.settings.auth.refresh_token_days),
        )
    )
    await session.flush()
    lifetime = int(runtime.access_tokens.lifetime.total_seconds())
    return IssuedSession(access_token, refresh_token, lifetime, member)


async def start_session(
    *, session: AsyncSession, runtime: AuthRuntime, member: Member
) -> IssuedSession:
    return await _issue(session, runtime, member, new_id("fam"))


async def _throttled(runtime: AuthRuntime, email: str, ip: str) -> RateLimitedError | None:
    auth = runtime.settings.auth
    for rate, key in (
        (auth.login_failures_per_account, email),
        (auth.login_failures_per_client, ip),
    ):
        state = await runtime.limiter.exceeded(rate, "login-failures", key)
        if not state.allowed:
            return RateLimitedError(
                "too many failed sign-ins; try again later",
                code="too_many_attempts",
                details={"retry_after": state.retry_after},
                headers={"Retry-After": str(state.retry_after)},
            )
    return None


async def _count_failure(runtime: AuthRuntime, email: str, ip: str) -> None:
    auth = runtime.settings.auth
    await runtime.limiter.hit(auth.login_failures_per_account, "login-failures", email)
    await runtime.limiter.hit(auth.login_failures_per_client, "login-failures", ip)


async def _member_for_login(
    session: AsyncSession, user: User, organization_id: str | None
) -> Member | None:
    statement = select(Membership).where(
        Membership.user_id == user.id, Membership.disabled_at.is_(None)
    )
    if organization_id:
        statement = statement.where(Membership.organization_id == organization_id)
    membership = await session.scalar(statement.order_by(Membership.id).limit(1))
    return Member(user, membership) if membership else None


async def login(
    *,
    session: AsyncSession,
    runtime: AuthRuntime,
    email: str,
    password: str,
    organization_id: str | None,
    ip: str,
) -> IssuedSession:
    email = normalize_email(email)
    if error := await _throttled(runtime, email, ip):
        raise error
    user = await session.scalar(select(User).where(User.email == email))
    password_hash = user.password_hash if user else None
    verified = await asyncio.to_thread(verify_password, password, password_hash)
    member = await _member_for_login(session, user, organization_id) if verified and user else None
    if member is None:
        await _count_failure(runtime, email, ip)
        # Attributed to the account's organization, so its admins see attacks on it.
        org_id = (
            await session.scalar(
                select(Membership.organization_id).where(Membership.user_id == user.id).limit(1)
            )
            if user
            else None
        )
        await audit.record(
            session,
            action="auth.login_failed",
            organization_id=org_id,
            actor_id=user.id if user else None,
            ip_address=ip,
            details={"email": email},
        )
        raise _bad_credentials()
    issued = await start_session(session=session, runtime=runtime, member=member)
    await audit.record(
        session,
        action="auth.login",
        organization_id=member.membership.organization_id,
        actor_id=member.user.id,
        ip_address=ip,
    )
    return issued


async def _revoke_family(session: AsyncSession, family_id: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def refresh(
    *, session: AsyncSession, runtime: AuthRuntime, refresh_token: str
) -> IssuedSession:
    token_hash = runtime.token_hasher.hash(refresh_token)
    stored = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    )
    now = utcnow()
    if stored is None or stored.revoked_at is not None:
        raise UnauthorizedError("refresh token is not valid", code="invalid_session")
    if stored.expires_at <= now:
        raise UnauthorizedError("refresh token has expired", code="session_expired")
    if stored.rotated_at is not None:
        grace = timedelta(seconds=runtime.settings.auth.refresh_reuse_grace_seconds)
        if now - stored.rotated_at > grace:
            await _revoke_family(session, stored.family_id)
            await audit.record(
                session,
                action="auth.refresh_reuse",
                organization_id=stored.organization_id,
                actor_id=stored.user_id,
                details={"family_id": stored.family_id},
            )
            raise UnauthorizedError(
                "refresh token was already used; every session of this sign-in is revoked",
                code="invalid_session",
                keep_changes=True,  # the revocation must stand although the request fails
            )
    member = await _active_member(session, stored.user_id, stored.organization_id)
    stored.rotated_at = stored.rotated_at or now
    return await _issue(session, runtime, member, stored.family_id)


async def _active_member(session: AsyncSession, user_id: str, org_id: str) -> Member:
    row = (
        await session.execute(
            select(User, Membership)
            .join(Membership, Membership.user_id == User.id)
            .where(
                User.id == user_id,
                Membership.organization_id == org_id,
                Membership.disabled_at.is_(None),
            )
        )
    ).one_or_none()
    if row is None:
        raise UnauthorizedError("this account is disabled", code="invalid_session")
    return Member(row.User, row.Membership)


async def logout(
    *, session: AsyncSession, runtime: AuthRuntime, user_id: str, refresh_token: str | None
) -> None:
    """Revokes the family of the given refresh token, or every session of the user."""
    if refresh_token:
        stored = await session.scalar(
            select(RefreshToken).where(
                RefreshToken.token_hash == runtime.token_hasher.hash(refresh_token),
                RefreshToken.user_id == user_id,
            )
        )
        if stored is not None:
            await _revoke_family(session, stored.family_id)
        return
    await _sign_out_everywhere(session, runtime, user_id)


async def _sign_out_everywhere(session: AsyncSession, runtime: AuthRuntime, user_id: str) -> None:
    """Every refresh token revoked, every access token issued so far refused."""
    now = utcnow()
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(update(User).where(User.id == user_id).values(sessions_valid_after=now))
    runtime.access_changed(session)


async def request_password_reset(
    *, session: AsyncSession, runtime: AuthRuntime, email: str
) -> tuple[User, str] | None:
    """A reset token for the account, or None when there is none (the caller says nothing)."""
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        return None
    token = new_token()
    session.add(
        PasswordReset(
            user_id=user.id,
            token_hash=runtime.token_hasher.hash(token),
            expires_at=utcnow() + timedelta(minutes=runtime.settings.auth.password_reset_minutes),
        )
    )
    await session.flush()
    return user, token


async def reset_password(
    *, session: AsyncSession, runtime: AuthRuntime, token: str, password: str
) -> User:
    reset = await session.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == runtime.token_hasher.hash(token))
    )
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        raise UnauthorizedError("the reset link is not valid or has expired", code="invalid_token")
    user = await session.get(User, reset.user_id)
    assert user is not None
    user.password_hash = await asyncio.to_thread(hash_password, password)
    reset.used_at = utcnow()
    await session.flush()
    await _sign_out_everywhere(session, runtime, user.id)
    await audit.record(
        session, action="auth.password_reset", organization_id=None, actor_id=user.id
    )
    return user


async def login_verified(
    *, session: AsyncSession, runtime: AuthRuntime, email: str, ip: str, method: str
) -> IssuedSession:
    """A session for an address a provider vouched for; only existing members get one."""
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    member = await _member_for_login(session, user, None) if user else None
    if member is None:
        raise ForbiddenError(
            f"no active account for {normalize_email(email)}; ask an admin for an invitation",
            code="user_not_found",
        )
    issued = await start_session(session=session, runtime=runtime, member=member)
    await audit.record(
        session,
        action="auth.login",
        organization_id=member.membership.organization_id,
        actor_id=member.user.id,
        ip_address=ip,
        details={"method": method},
    )
    return issued
