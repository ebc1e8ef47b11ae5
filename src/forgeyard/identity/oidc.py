"""Sign-in with any OpenID Connect provider: discovery, code flow with state, nonce and PKCE.

Authlib drives the OAuth 2 exchange; joserfc (the same authors' JOSE library) verifies the
ID token against the provider's published keys. Errors carry the codes of seed 003.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.runtime import AuthRuntime
from forgeyard.identity.authlib_client import AsyncOAuth2Client
from forgeyard.kernel.crypto import new_token
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import (
    ConflictError,
    ForgeyardError,
    InvalidInputError,
    RateLimitedError,
)
from forgeyard.models.identity import AuthRequest, IdentityProvider

SCOPES = "openid email profile"
PENDING_LIFETIME = timedelta(minutes=10)
MAX_PENDING = 100  # unfinished sign-ins at once, so nobody can fill the table
ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]
HTTP_TIMEOUT = httpx.Timeout(10.0)


class ProviderError(ForgeyardError):
    """The provider failed or answered something that cannot be trusted (502)."""

    status_code = 502
    code = "oidc_discovery_error"


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    subject: str
    email: str
    name: str


def check_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise InvalidInputError(
            "redirect_uri must be an absolute http(s) URL without a fragment",
            code="invalid_redirect_uri",
            details={"field": "redirect_uri"},
        )
    return uri


async def discover(issuer: str) -> dict[str, Any]:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            response = await http.get(url)
            response.raise_for_status()
            metadata: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderError(f"cannot read {url}: {exc}") from exc
    if metadata.get("issuer") != issuer.rstrip("/"):
        raise ProviderError(f"discovery at {url} names another issuer: {metadata.get('issuer')}")
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not metadata.get(endpoint):
            raise ProviderError(f"discovery at {url} has no {endpoint}")
    return metadata


async def configure(
    *, session: AsyncSession, runtime: AuthRuntime, issuer: str, client_id: str, client_secret: str
) -> IdentityProvider:
    """Checks the provider answers discovery, then stores it (the secret encrypted)."""
    await discover(issuer)
    provider = await current_provider(session=session)
    if provider is None:
        provider = IdentityProvider(kind="oidc")
        session.add(provider)
    provider.issuer = issuer.rstrip("/")
    provider.client_id = client_id
    provider.client_secret_encrypted = runtime.secret_box.encrypt(client_secret)
    await session.flush()
    return provider


async def current_provider(*, session: AsyncSession) -> IdentityProvider | None:
    return await session.scalar(select(IdentityProvider).order_by(IdentityProvider.id).limit(1))


async def _require_provider(session: AsyncSession) -> IdentityProvider:
    provider = await current_provider(session=session)
    if provider is None:
        raise ConflictError("no OpenID Connect provider is configured", code="oidc_not_configured")
    return provider


async def remember(
    *,
    session: AsyncSession,
    runtime: AuthRuntime,
    purpose: str,
    state: str,
    verifier: str,
    redirect_uri: str,
    nonce: str = "",
    provider_id: str | None = None,
) -> None:
    """Keeps what the callback will need; refuses once too many sign-ins are pending."""
    pending = await session.scalar(
        select(func.count())
        .select_from(AuthRequest)
        .where(AuthRequest.completed_at.is_(None), AuthRequest.expires_at > utcnow())
    )
    if (pending or 0) >= MAX_PENDING:
        raise RateLimitedError(
            "too many sign-ins are waiting for the provider", code="too_many_pending"
        )
    session.add(
        AuthRequest(
            provider_id=provider_id,
            purpose=purpose,
            state_hash=runtime.token_hasher.hash(state),
            nonce=nonce,
            code_verifier_encrypted=runtime.secret_box.encrypt(verifier),
            redirect_uri=redirect_uri,
            expires_at=utcnow() + PENDING_LIFETIME,
        )
    )
    await session.flush()


async def claim(
    *, session: AsyncSession, runtime: AuthRuntime, purpose: str, state: str
) -> AuthRequest:
    """The pending sign-in ``state`` names; each state is good for one use."""
    request = await session.scalar(
        select(AuthRequest).where(AuthRequest.state_hash == runtime.token_hasher.hash(state))
    )
    if request is None or request.purpose != purpose or request.completed_at is not None:
        raise InvalidInputError(
            "unknown or used state", code="invalid_state", details={"field": "state"}
        )
    if request.expires_at <= utcnow():
        raise InvalidInputError("the sign-in took too long; start again", code="invalid_state")
    request.completed_at = utcnow()
    await session.flush()
    return request


async def start(
    *, session: AsyncSession, runtime: AuthRuntime, purpose: str, redirect_uri: str
) -> str:
    """The provider's authorization URL for a new sign-in; its state is stored hashed."""
    provider = await _require_provider(session)
    metadata = await discover(provider.issuer)
    state, nonce, verifier = new_token(), new_token(), new_token(48)
    client = AsyncOAuth2Client(
        provider.client_id,
        redirect_uri=check_redirect_uri(redirect_uri),
        scope=SCOPES,
        code_challenge_method="S256",
    )
    url, _ = client.create_authorization_url(
        metadata["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
    )
    await remember(
        session=session,
        runtime=runtime,
        purpose=purpose,
        state=state,
        verifier=verifier,
        redirect_uri=redirect_uri,
        nonce=nonce,
        provider_id=provider.id,
    )
    return str(url)


async def finish(
    *, session: AsyncSession, runtime: AuthRuntime, purpose: str, code: str, state: str
) -> VerifiedIdentity:
    """Exchanges the code and verifies the ID token."""
    request = await claim(session=session, runtime=runtime, purpose=purpose, state=state)
    provider = await session.get(IdentityProvider, request.provider_id)
    if provider is None:
        raise ConflictError("the provider was removed during sign-in", code="oidc_not_configured")
    metadata = await discover(provider.issuer)
    tokens = await exchange_code(
        runtime,
        token_url=metadata["token_endpoint"],
        client_id=provider.client_id,
        client_secret=runtime.secret_box.decrypt(provider.client_secret_encrypted),
        request=request,
        code=code,
    )
    return await verify_id_token(provider, metadata, tokens, request.nonce)


async def exchange_code(
    runtime: AuthRuntime,
    *,
    token_url: str,
    client_id: str,
    client_secret: str,
    request: AuthRequest,
    code: str,
) -> dict[str, Any]:
    """The provider's tokens for ``code``, proven with the request's PKCE verifier."""
    client = AsyncOAuth2Client(
        client_id, client_secret, redirect_uri=request.redirect_uri, timeout=HTTP_TIMEOUT
    )
    try:
        async with client:
            token: dict[str, Any] = await client.fetch_token(
                token_url,
                code=code,
                code_verifier=runtime.secret_box.decrypt(request.code_verifier_encrypted),
                headers={"Accept": "application/json"},
            )
    except Exception as exc:  # Authlib raises OAuthError, httpx errors, or JSON errors
        raise ProviderError(
            f"the provider refused the code: {exc}", code="token_exchange_error"
        ) from exc
    return token


async def verify_id_token(
    provider: IdentityProvider, metadata: dict[str, Any], tokens: dict[str, Any], nonce: str
) -> VerifiedIdentity:
    id_token = tokens.get("id_token")
    if not id_token:
        raise ProviderError("the provider sent no ID token", code="missing_id_token")
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            keys = KeySet.import_key_set((await http.get(metadata["jwks_uri"])).json())
        token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, httpx.HTTPError, ValueError) as exc:
        raise ProviderError(
            f"the ID token does not verify: {exc}", code="id_token_verification_error"
        ) from exc
    claims = token.claims
    email = claims.get("email")
    if not email or claims.get("email_verified") is False:
        raise ProviderError("the provider sent no verified e-mail address", code="missing_email")
    return VerifiedIdentity(
        str(claims["sub"]), str(email).lower(), str(claims.get("name") or email)
    )
