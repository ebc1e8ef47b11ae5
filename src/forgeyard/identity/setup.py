"""First-run setup (seed 003): bootstrap token, setup session, the owner, completion.

The states run one way: needs_setup, then in_progress once an owner exists, then ready.
After ready every setup mutation answers 409 ``already_configured``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.identity.service import Member, create_account, create_organization
from forgeyard.kernel.crypto import new_token
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import (
    ConflictError,
    ForgeyardError,
    RateLimitedError,
    UnauthorizedError,
)
from forgeyard.models.identity import BootstrapToken, InstanceSetup, Role, SetupSession, SetupState


class GoneError(ForgeyardError):
    status_code = 410
    code = "token_consumed"


@dataclass(frozen=True, slots=True)
class SetupStatus:
    state: SetupState
    owner_created: bool


async def _instance(session: AsyncSession) -> InstanceSetup:
    instance = await session.get(InstanceSetup, 1)
    if instance is None:
        instance = InstanceSetup(id=1, state=SetupState.NEEDS_SETUP)
        session.add(instance)
        await session.flush()
    return instance


async def status(*, session: AsyncSession) -> SetupStatus:
    instance = await _instance(session)
    return SetupStatus(SetupState(instance.state), instance.owner_user_id is not None)


async def refuse_when_ready(*, session: AsyncSession) -> InstanceSetup:
    instance = await _instance(session)
    if instance.state == SetupState.READY:
        raise ConflictError("this instance is already set up", code="already_configured")
    return instance


async def issue_bootstrap_token(*, session: AsyncSession, runtime: AuthRuntime) -> str | None:
    """A fresh bootstrap token when the instance needs setup, else None.

    Earlier unused tokens stop working: only the newest printed one is valid.
    """
    instance = await _instance(session)
    if instance.state == SetupState.READY:
        return None
    now = utcnow()
    for old in await session.scalars(
        select(BootstrapToken).where(BootstrapToken.consumed_at.is_(None))
    ):
        old.expires_at = min(old.expires_at, now)
    token = new_token()
    session.add(
        BootstrapToken(
            token_hash=runtime.token_hasher.hash(token),
            expires_at=now + timedelta(minutes=runtime.settings.auth.bootstrap_token_minutes),
        )
    )
    await session.flush()
    return token


async def verify_bootstrap_token(
    *, session: AsyncSession, runtime: AuthRuntime, token: str, ip: str
) -> tuple[str, datetime]:
    """Exchanges the bootstrap token for a setup session token."""
    await refuse_when_ready(session=session)
    rate = runtime.settings.auth.bootstrap_failures
    throttle = await runtime.limiter.exceeded(rate, "bootstrap-failures", ip)
    if not throttle.allowed:
        raise RateLimitedError(
            "too many wrong bootstrap tokens; try again later",
            code="too_many_attempts",
            details={"retry_after": throttle.retry_after},
            headers={"Retry-After": str(throttle.retry_after)},
        )
    stored = await session.scalar(
        select(BootstrapToken).where(BootstrapToken.token_hash == runtime.token_hasher.hash(token))
    )
    now = utcnow()
    if stored is None:
        await runtime.limiter.hit(rate, "bootstrap-failures", ip)
        raise UnauthorizedError("the bootstrap token is not valid", code="invalid_token")
    if stored.consumed_at is not None:
        raise GoneError("the bootstrap token has been used", code="token_consumed")
    if stored.expires_at <= now:
        raise GoneError("the bootstrap token has expired", code="token_expired")
    stored.consumed_at = now
    instance = await _instance(session)
    if instance.state == SetupState.NEEDS_SETUP:
        instance.state = SetupState.IN_PROGRESS
    session_token, expires_at = await _new_setup_session(session, runtime)
    await audit.record(
        session,
        action="setup.bootstrap_verified",
        organization_id=None,
        actor_id=None,
        ip_address=ip,
    )
    return session_token, expires_at


async def _new_setup_session(session: AsyncSession, runtime: AuthRuntime) -> tuple[str, datetime]:
    token = new_token()
    expires_at = utcnow() + timedelta(minutes=runtime.settings.auth.setup_session_minutes)
    session.add(SetupSession(token_hash=runtime.token_hasher.hash(token), expires_at=expires_at))
    await session.flush()
    return token, expires_at


async def check_setup_session(*, session: AsyncSession, runtime: AuthRuntime, token: str) -> None:
    """Accepts a live setup session and slides its expiry forward."""
    await refuse_when_ready(session=session)
    stored = await session.scalar(
        select(SetupSession).where(SetupSession.token_hash == runtime.token_hasher.hash(token))
    )
    now = utcnow()
    if stored is None:
        raise UnauthorizedError("no setup session with this token", code="no_session")
    if stored.expires_at <= now:
        raise UnauthorizedError("the setup session has expired", code="session_expired")
    stored.expires_at = now + timedelta(minutes=runtime.settings.auth.setup_session_minutes)
    await session.flush()


async def create_owner(
    *,
    session: AsyncSession,
    email: str,
    password: str | None,
    name: str,
    organization_name: str,
) -> Member:
    instance = await refuse_when_ready(session=session)
    if instance.owner_user_id is not None:
        raise ConflictError("the owner has already been created", code="invalid_state")
    organization = await create_organization(session=session, name=organization_name)
    member = await create_account(
        session=session,
        email=email,
        name=name,
        password=password,
        organization_id=organization.id,
        role=Role.OWNER,
    )
    instance.owner_user_id = member.user.id
    instance.state = SetupState.IN_PROGRESS
    await session.flush()
    await audit.record(
        session,
        action="setup.owner_created",
        organization_id=organization.id,
        actor_id=member.user.id,
    )
    return member


async def complete(*, session: AsyncSession) -> SetupStatus:
    instance = await refuse_when_ready(session=session)
    if instance.owner_user_id is None:
        raise ConflictError("create the owner before completing setup", code="invalid_state")
    instance.state = SetupState.READY
    instance.completed_at = utcnow()
    await session.flush()
    await audit.record(
        session, action="setup.completed", organization_id=None, actor_id=instance.owner_user_id
    )
    return SetupStatus(SetupState.READY, True)


async def require_ready(*, session: AsyncSession) -> None:
    """Sign-in and registration wait until setup is complete (seed 003)."""
    instance = await _instance(session)
    if instance.state != SetupState.READY:
        raise ConflictError("finish first-run setup before signing in", code="setup_incomplete")
