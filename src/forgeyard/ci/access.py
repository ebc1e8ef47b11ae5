"""Short-lived tokens for what a browser fetches without its session: a log stream, a download.

Each is scoped to one build or one artifact, stored only as a hash, and expires within
minutes. A download token works once: it is spent by a conditional update, so of two requests
racing with it exactly one gets the file.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.kernel.crypto import TokenHasher, new_token
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import ForgeyardError, UnauthorizedError
from forgeyard.models.ci import AccessTokenKind, CiAccessToken


class TokenSpent(ForgeyardError):  # noqa: N818 - named for the answer, as the seed does
    status_code = 410
    code = "token_consumed"


async def issue(
    *,
    session: AsyncSession,
    hasher: TokenHasher,
    organization_id: str,
    kind: AccessTokenKind,
    subject_id: str,
    seconds: int,
) -> tuple[str, datetime]:
    token = new_token()
    expires_at = utcnow() + timedelta(seconds=seconds)
    session.add(
        CiAccessToken(
            organization_id=organization_id,
            kind=kind,
            token_hash=hasher.hash(token),
            subject_id=subject_id,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return token, expires_at


async def check_stream_token(
    *, session: AsyncSession, hasher: TokenHasher, token: str, build_id: str
) -> CiAccessToken:
    """The token if it may open ``build_id``'s log stream now; 401 otherwise."""
    row = await _find(session, hasher, token, AccessTokenKind.LOG_STREAM)
    if row is None or row.subject_id != build_id or row.expires_at <= utcnow():
        raise UnauthorizedError(
            "the stream token is unknown, expired or for another build: ask for a new one",
            code="invalid_stream_token",
        )
    return row


async def spend_download_token(
    *, session: AsyncSession, hasher: TokenHasher, token: str
) -> CiAccessToken:
    """The token's row, now spent; 410 if it was used or has expired, 404 if unknown."""
    row = await _find(session, hasher, token, AccessTokenKind.ARTIFACT_DOWNLOAD)
    if row is None:
        raise UnauthorizedError("unknown download link", code="invalid_download_token")
    if row.expires_at <= utcnow():
        raise TokenSpent("this download link has expired: ask for a new one", code="token_expired")
    spent = await session.execute(
        update(CiAccessToken)
        .where(CiAccessToken.id == row.id, CiAccessToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise TokenSpent("this download link was already used: ask for a new one")
    return row


async def _find(
    session: AsyncSession, hasher: TokenHasher, token: str, kind: AccessTokenKind
) -> CiAccessToken | None:
    if not token or len(token) > 200:
        return None
    return await session.scalar(
        select(CiAccessToken).where(
            CiAccessToken.token_hash == hasher.hash(token), CiAccessToken.kind == kind
        )
    )
