"""Access tokens (JWT) and the API key format.

Access tokens are HS256 JWTs typed ``at+jwt`` (RFC 9068) with ``iss``, ``aud``, ``exp``,
``iat``, ``jti``, ``sub`` and the organization. Decoding accepts exactly one algorithm, so
``alg: none`` and algorithm swaps are refused before the signature is looked at.

API keys look like ``fy_`` + 30 random base62 characters + a 6-character CRC32 checksum, the
scheme GitHub uses for its tokens: a typo, or a string that merely looks like a key, is
rejected without a database look-up, and secret scanners can recognise the shape.
"""

from __future__ import annotations

import secrets
import string
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from forgeyard.kernel.crypto import derive_key
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.ids import new_id

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - the RFC 9068 media type, not a secret
JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "fy_"
_BASE62 = string.digits + string.ascii_letters
_KEY_BODY_LENGTH = 30
_CHECKSUM_LENGTH = 6


class InvalidTokenError(Exception):
    """The token is not one of ours, or has been tampered with."""


class ExpiredTokenError(InvalidTokenError):
    pass


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    organization_id: str
    token_id: str
    issued_at: datetime
    expires_at: datetime


class AccessTokenCodec:
    def __init__(self, secret: str, *, issuer: str, audience: str, lifetime: timedelta) -> None:
        self._key = derive_key(secret, "access-token")
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime

    def issue(self, *, subject: str, organization_id: str) -> tuple[str, AccessClaims]:
        now = utcnow()
        claims = AccessClaims(
            subject=subject,
            organization_id=organization_id,
            token_id=new_id("jti"),
            issued_at=now,
            expires_at=now + self.lifetime,
        )
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "org": organization_id,
            "jti": claims.token_id,
            # Fractional, so a token issued a moment after "sign out everywhere" is told
            # apart from one issued a moment before (RFC 7519 NumericDate allows fractions).
            "iat": now.timestamp(),
            "exp": int(claims.expires_at.timestamp()),
        }
        token = jwt.encode(
            payload, self._key, algorithm=JWT_ALGORITHM, headers={"typ": ACCESS_TOKEN_TYPE}
        )
        return token, claims

    def decode(self, token: str) -> AccessClaims:
        try:
            decoded = jwt.decode_complete(
                token,
                self._key,
                algorithms=[JWT_ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["iss", "aud", "exp", "iat", "jti", "sub", "org"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise ExpiredTokenError("access token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        if decoded["header"].get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidTokenError("not an access token")
        payload = decoded["payload"]
        return AccessClaims(
            subject=str(payload["sub"]),
            organization_id=str(payload["org"]),
            token_id=str(payload["jti"]),
            issued_at=datetime.fromtimestamp(payload["iat"], tz=utcnow().tzinfo),
            expires_at=datetime.fromtimestamp(payload["exp"], tz=utcnow().tzinfo),
        )


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LENGTH)


def generate_api_key() -> str:
    body = "".join(secrets.choice(_BASE62) for _ in range(_KEY_BODY_LENGTH))
    return f"{API_KEY_PREFIX}{body}{_checksum(body)}"


def looks_like_api_key(value: str) -> bool:
    """True when ``value`` has the shape and a valid checksum; says nothing of validity."""
    if not value.startswith(API_KEY_PREFIX):
        return False
    rest = value[len(API_KEY_PREFIX) :]
    if len(rest) != _KEY_BODY_LENGTH + _CHECKSUM_LENGTH or not all(c in _BASE62 for c in rest):
        return False
    body, checksum = rest[:_KEY_BODY_LENGTH], rest[_KEY_BODY_LENGTH:]
    return secrets.compare_digest(_checksum(body), checksum)
