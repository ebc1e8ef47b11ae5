"""Turning a credential into a principal: the user or API key a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import select, update

from forgeyard.auth import policy
from forgeyard.auth.runtime import AuthRuntime
from forgeyard.kernel.db import Database, utcnow
from forgeyard.kernel.errors import UnauthorizedError
from forgeyard.kernel.tokens import ExpiredTokenError, InvalidTokenError, looks_like_api_key
from forgeyard.models.identity import ApiKey, Membership, Organization, User

# Writing last_used_at on every request would turn reads into writes; once a minute is enough
# to answer "is this key still in use?".
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["user", "api_key"]
    organization_id: str
    plan: str
    role: str
    user_id: str | None = None
    api_key_id: str | None = None
    scope: str | None = None
    email: str | None = None
    name: str | None = None
    # The person a key acts for: its creator, whose current role bounds it.
    on_behalf_of: str | None = None

    @property
    def actor_id(self) -> str:
        return self.user_id or self.api_key_id or ""

    def can(self, permission: str) -> bool:
        if not policy.role_allows(self.role, permission):
            return False
        return self.scope is None or policy.scope_allows(self.scope, permission)


@dataclass(frozen=True, slots=True)
class Credential:
    kind: Literal["jwt", "api_key"]
    value: str


def cache_key(runtime: AuthRuntime, credential: Credential) -> tuple[str, str]:
    """Where the principal of this exact credential is remembered."""
    if credential.kind == "jwt":
        return ("jwt", credential.value)
    return ("key", runtime.token_hasher.hash(credential.value))


def invalid_session(message: str = "invalid or revoked credentials") -> UnauthorizedError:
    return UnauthorizedError(message, code="invalid_session")


async def principal_from_access_token(
    database: Database, runtime: AuthRuntime, token: str
) -> Principal:
    # The exact token string was verified before: its signature cannot have changed.
    seen: Principal | None = runtime.principals.get(("jwt", token))
    if seen is not None:
        return seen
    try:
        claims = runtime.access_tokens.decode(token)
    except ExpiredTokenError as exc:
        raise UnauthorizedError("access token has expired", code="session_expired") from exc
    except InvalidTokenError as exc:
        raise invalid_session("access token is not valid") from exc
    token_lifetime = (claims.expires_at - utcnow()).total_seconds()
    cache_key = ("user", claims.subject, claims.organization_id)
    cached: Principal | None = runtime.principals.get(cache_key)
    if cached is not None:
        runtime.principals.put(("jwt", token), cached, max_age=token_lifetime)
        return cached
    statement = (
        select(Membership.role, Organization.plan, User.email, User.name, User.sessions_valid_after)
        .join(Organization, Organization.id == Membership.organization_id)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.user_id == claims.subject,
            Membership.organization_id == claims.organization_id,
            Membership.disabled_at.is_(None),
        )
    )
    async with database.transaction(read_only=True) as session:
        row = (await session.execute(statement)).one_or_none()
    if row is None:
        raise invalid_session("this account is disabled or no longer a member")
    if row.sessions_valid_after is not None and claims.issued_at < row.sessions_valid_after:
        raise invalid_session("this session was signed out (password changed)")
    principal = Principal(
        kind="user",
        organization_id=claims.organization_id,
        plan=row.plan,
        role=row.role,
        user_id=claims.subject,
        email=row.email,
        name=row.name,
    )
    runtime.principals.put(cache_key, principal)
    runtime.principals.put(("jwt", token), principal, max_age=token_lifetime)
    return principal


async def principal_from_api_key(database: Database, runtime: AuthRuntime, key: str) -> Principal:
    if not looks_like_api_key(key):
        raise invalid_session("API key is malformed (checksum mismatch)")
    token_hash = runtime.token_hasher.hash(key)
    cached: Principal | None = runtime.principals.get(("key", token_hash))
    if cached is not None:
        return cached
    async with database.transaction(read_only=True) as session:
        row = (
            await session.execute(
                select(ApiKey, Organization.plan, Membership.role, Membership.disabled_at)
                .join(Organization, Organization.id == ApiKey.organization_id)
                .outerjoin(
                    Membership,
                    (Membership.user_id == ApiKey.created_by_id)
                    & (Membership.organization_id == ApiKey.organization_id),
                )
                .where(ApiKey.token_hash == token_hash)
            )
        ).one_or_none()
    now = utcnow()
    if row is None or row.ApiKey.revoked_at is not None:
        raise invalid_session("API key is not valid or has been revoked")
    api_key: ApiKey = row.ApiKey
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise UnauthorizedError("API key has expired", code="session_expired")
    if row.disabled_at is not None:
        raise invalid_session("the person who created this API key is disabled")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        async with database.transaction() as session:
            touch = update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now)
            await session.execute(touch)
    scope = max(api_key.scopes, key=policy.SCOPES.index)
    principal = Principal(
        kind="api_key",
        organization_id=api_key.organization_id,
        plan=row.plan,
        # A key does what its scope and its creator's current role both allow (docs/roles.md).
        role=row.role or policy.SCOPE_ROLE[scope],
        api_key_id=api_key.id,
        scope=scope,
        on_behalf_of=api_key.created_by_id,
    )
    # Never remembered past the key's own expiry.
    lifetime = (api_key.expires_at - now).total_seconds() if api_key.expires_at else None
    runtime.principals.put(("key", token_hash), principal, max_age=lifetime)
    return principal
