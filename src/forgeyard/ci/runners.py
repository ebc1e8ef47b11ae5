"""Runners: registration tokens an admin makes, runners registering with them, runner tokens.

A registration token is shown once, stored as a hash, and registers any number of runners
until it expires or is deleted. A runner's own token is shown once at registration and stored
as a hash; every call a runner makes carries it (:func:`authenticate_runner`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.kernel.crypto import TokenHasher, new_token
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import ForbiddenError, UnauthorizedError
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.ci import Runner, RunnerRegistrationToken, RunnerStatus
from forgeyard.protocol.runner import RUNNER_TOKEN_PREFIX, RegisterRequest

REGISTRATION_TOKEN_PREFIX = "fyrr_"  # noqa: S105 - the visible prefix, not a secret


async def create_registration_token(
    *,
    session: AsyncSession,
    who: Principal,
    hasher: TokenHasher,
    description: str | None,
    labels: list[str],
    valid_hours: int,
) -> tuple[RunnerRegistrationToken, str]:
    return await registration_token_for(
        session=session,
        organization_id=who.organization_id,
        created_by_id=who.user_id,
        hasher=hasher,
        description=description,
        labels=labels,
        valid_hours=valid_hours,
    )


async def registration_token_for(
    *,
    session: AsyncSession,
    organization_id: str,
    created_by_id: str | None,
    hasher: TokenHasher,
    description: str | None,
    labels: list[str],
    valid_hours: int,
) -> tuple[RunnerRegistrationToken, str]:
    """A registration token of ``organization_id`` (also what ``serve --runner`` makes for
    its local runner)."""
    token = REGISTRATION_TOKEN_PREFIX + new_token()
    row = RunnerRegistrationToken(
        organization_id=organization_id,
        description=description,
        token_hash=hasher.hash(token),
        labels=sorted(set(labels)),
        expires_at=utcnow() + timedelta(hours=valid_hours),
        created_by_id=created_by_id,
    )
    session.add(row)
    await session.flush()
    return row, token


async def list_registration_tokens(
    *, session: AsyncSession, who: Principal, page: PageParams
) -> tuple[list[RunnerRegistrationToken], int]:
    statement = (
        select(RunnerRegistrationToken)
        .where(RunnerRegistrationToken.organization_id == who.organization_id)
        .order_by(RunnerRegistrationToken.created_at.desc())
    )
    return await paginate(session, statement, page)


async def delete_registration_token(
    *, session: AsyncSession, who: Principal, token_id: str
) -> None:
    row = await get_owned(
        session,
        RunnerRegistrationToken,
        token_id,
        organization_id=who.organization_id,
        kind="registration token",
        prefix="rrt",
    )
    await session.delete(row)
    await session.flush()


async def register(
    *, session: AsyncSession, hasher: TokenHasher, request: RegisterRequest
) -> tuple[Runner, str]:
    """A new runner of the token's organization, with the token's labels and its own."""
    registration = await session.scalar(
        select(RunnerRegistrationToken).where(
            RunnerRegistrationToken.token_hash == hasher.hash(request.registration_token)
        )
    )
    if registration is None or registration.expires_at <= utcnow():
        raise UnauthorizedError(
            "the registration token is unknown or has expired", code="invalid_registration_token"
        )
    token = RUNNER_TOKEN_PREFIX + new_token()
    runner = Runner(
        organization_id=registration.organization_id,
        name=request.name,
        labels=sorted(set(registration.labels) | set(request.labels)),
        version=request.version,
        status=RunnerStatus.ONLINE,
        token_hash=hasher.hash(token),
        last_seen_at=utcnow(),
        registered_with_id=registration.id,
    )
    session.add(runner)
    await session.flush()
    return runner, token


async def authenticate_runner(
    *, session: AsyncSession, hasher: TokenHasher, token: str, runner_id: str
) -> Runner:
    """The runner the token belongs to; 401 for an unknown token, 403 for another runner's
    path (a runner speaks only for itself)."""
    runner = None
    if token.startswith(RUNNER_TOKEN_PREFIX):
        runner = await session.scalar(select(Runner).where(Runner.token_hash == hasher.hash(token)))
    if runner is None:
        raise UnauthorizedError("a runner token is required", code="invalid_runner_token")
    if runner.id != runner_id:
        raise ForbiddenError(
            "this runner token belongs to another runner", details={"runner_id": runner_id}
        )
    return runner


async def check_in(
    *, session: AsyncSession, hasher: TokenHasher, token: str, runner_id: str
) -> Runner:
    """:func:`authenticate_runner`, and the runner marked seen now: an idle runner asking
    for work is as alive as a busy one heartbeating."""
    runner = await authenticate_runner(
        session=session, hasher=hasher, token=token, runner_id=runner_id
    )
    runner.last_seen_at = utcnow()
    await session.flush()
    return runner


async def get_runner(*, session: AsyncSession, who: Principal, runner_id: str) -> Runner:
    return await get_owned(
        session, Runner, runner_id, organization_id=who.organization_id, kind="runner", prefix="rnr"
    )


async def list_runners(
    *, session: AsyncSession, who: Principal, status: str | None, page: PageParams
) -> tuple[list[Runner], int]:
    statement = select(Runner).where(Runner.organization_id == who.organization_id)
    if status is not None:
        statement = statement.where(Runner.status == status)
    return await paginate(session, statement.order_by(Runner.name, Runner.id), page)


async def delete_runner(*, session: AsyncSession, who: Principal, runner_id: str) -> None:
    """Its token stops working at once; builds it holds are re-queued when their lease ends."""
    runner = await get_runner(session=session, who=who, runner_id=runner_id)
    await session.delete(runner)
    await session.flush()


def update_runner(
    runner: Runner, *, labels: list[str] | None, version: str | None, status: str | None
) -> None:
    if labels is not None:
        runner.labels = sorted(set(labels))
    if version is not None:
        runner.version = version
    if status is not None:
        runner.status = status
    runner.last_seen_at = utcnow()
