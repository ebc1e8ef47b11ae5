"""Keys derived from the instance secret, hashing of opaque tokens, encryption at rest.

One secret (``FORGEYARD_SECRET_KEY`` or the generated ``secret.key``) yields independent keys
per purpose through HKDF, so a key leaked from one use (say, JWT signing) says nothing about
another (encryption of stored OAuth secrets).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=f"forgeyard:{purpose}".encode()
    ).derive(secret.encode())


def new_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe token (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


class TokenHasher:
    """Stores opaque tokens (refresh, bootstrap, invitations, API keys) as keyed hashes.

    The tokens are random and long, so a fast hash is enough; keying it with a derived secret
    means a stolen database alone cannot even confirm a guessed token.
    """

    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "token-hash")

    def hash(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def matches(self, token: str, stored_hash: str) -> bool:
        return hmac.compare_digest(self.hash(token), stored_hash)


class DecryptionError(Exception):
    pass


class SecretBox:
    """Authenticated encryption (Fernet) for secrets that must be read back later."""

    def __init__(self, secret: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret, "secret-box")))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionError("stored secret cannot be decrypted with this key") from exc
