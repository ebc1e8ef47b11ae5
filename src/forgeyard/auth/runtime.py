"""The security machinery of one running instance, built once from the settings and the key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.cache import TtlCache
from forgeyard.auth.ratelimit import RateLimiter
from forgeyard.kernel.crypto import SecretBox, TokenHasher
from forgeyard.kernel.tokens import AccessTokenCodec
from forgeyard.settings import Settings


@dataclass(frozen=True)
class AuthRuntime:
    settings: Settings
    access_tokens: AccessTokenCodec
    token_hasher: TokenHasher
    secret_box: SecretBox
    limiter: RateLimiter
    principals: TtlCache[Any]  # credential -> Principal; see forgeyard.auth.cache

    @classmethod
    def create(cls, settings: Settings, secret_key: str, limiter: RateLimiter) -> AuthRuntime:
        auth = settings.auth
        return cls(
            settings=settings,
            access_tokens=AccessTokenCodec(
                secret_key,
                issuer=auth.issuer,
                audience=auth.audience,
                lifetime=timedelta(minutes=auth.access_token_minutes),
            ),
            token_hasher=TokenHasher(secret_key),
            secret_box=SecretBox(secret_key),
            limiter=limiter,
            principals=TtlCache(auth.principal_cache_seconds),
        )

    def access_changed(self, session: AsyncSession) -> None:
        """Someone's role, membership, key or plan changed: forget every cached principal.

        Now, and again once the change is committed, so that a request reading the old row
        in between cannot keep it cached.
        """
        self.principals.clear()
        event.listen(session.sync_session, "after_commit", self._forget, once=True)

    def _forget(self, _session: Any) -> None:
        self.principals.clear()
