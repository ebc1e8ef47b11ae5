"""Password hashing with argon2id (pwdlib), constant-time even for unknown accounts."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))
# Verifying against this when an account does not exist keeps the response time the same,
# so timing does not reveal which addresses have accounts.
_DUMMY_HASH = _hasher.hash("forgeyard-dummy-password")

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)
