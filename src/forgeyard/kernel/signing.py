"""Ed25519 signatures over a build's resolved pipeline.

The server signs the exact bytes of each build's resolved pipeline; a runner verifies them
against the public key it was configured with (or fetched) before it runs anything, and
refuses a pipeline that is unsigned or altered. Sign the bytes that are sent, and have the
runner parse them only after they verified: then no two sides need to agree on how a document
is serialized. Where a document has to be rebuilt on the other side, ``canonical_json`` gives
one spelling of it.

Text forms:

- private key: the raw 32-byte Ed25519 seed in unpadded base64url (43 characters). One line
  with no structure, so it fits an environment variable, a settings row sealed with the
  instance's ``SecretBox``, or a file; PKCS#8 PEM (what ``openssl genpkey -algorithm ed25519``
  writes) is accepted when read, so an operator may bring a key made with other tools.
- public key: the raw 32 bytes in unpadded base64url, what runners are configured with.
- signature: the raw 64 bytes in unpadded base64url.

The comparison of signatures is the ``cryptography`` library's (OpenSSL's); nothing here
compares signature bytes itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_ID_HEX_DIGITS = 16  # 64 bits of SHA-256: enough to tell configured keys apart
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class SignatureInvalid(Exception):  # noqa: N818 - the refusal a runner reports, by name
    """A pipeline's signature is missing, malformed or does not match: do not run it."""


class KeyInvalid(ValueError):  # noqa: N818 - named like SignatureInvalid
    """Key text that is not an Ed25519 key in one of the accepted forms."""


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_text(key: Ed25519PrivateKey) -> str:
    """The 32-byte seed, unpadded base64url (see the module docstring for why)."""
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return _encode(raw)


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """Reads ``private_key_to_text``'s form, or an unencrypted PKCS#8 PEM Ed25519 key."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(stripped.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyInvalid(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyInvalid(f"the PEM key is {type(key).__name__}, not an Ed25519 private key")
        return key
    raw = _decode(stripped)
    if raw is None or len(raw) != KEY_BYTES:
        raise KeyInvalid(
            f"a private key must be {KEY_BYTES} bytes in base64url or a PKCS#8 PEM key"
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public half, raw 32 bytes in unpadded base64url."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return _encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def public_key_from_text(text: str) -> Ed25519PublicKey:
    raw = _decode(text.strip())
    if raw is None or len(raw) != KEY_BYTES:
        raise KeyInvalid(f"a public key must be {KEY_BYTES} bytes in base64url")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise KeyInvalid(f"not an Ed25519 public key: {exc}") from None


def key_id(public_key_text: str) -> str:
    """A short fingerprint of a public key (hex of its SHA-256), for messages and logs: a
    runner names the key it expected, an operator compares it with the server's."""
    public = public_key_from_text(public_key_text)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX_DIGITS]


def sign(key: Ed25519PrivateKey, payload: bytes) -> str:
    """The signature of ``payload``, unpadded base64url."""
    return _encode(key.sign(payload))


def verify(public_key_text: str, payload: bytes, signature: str | None) -> None:
    """Returns if ``signature`` is ``payload`` signed by the key ``public_key_text``; raises
    ``SignatureInvalid`` otherwise, a bad configured key included (a runner fails closed)."""
    try:
        public = public_key_from_text(public_key_text)
        expected = key_id(public_key_text)
    except KeyInvalid as exc:
        raise SignatureInvalid(
            f"cannot verify: the configured public key is invalid ({exc})"
        ) from None
    if signature is None or not signature.strip():
        raise SignatureInvalid(
            f"the pipeline is not signed (expected a signature by key {expected})"
        )
    raw = _decode(signature.strip())
    if raw is None:
        raise SignatureInvalid("the pipeline signature is not valid base64url")
    if len(raw) != SIGNATURE_BYTES:
        raise SignatureInvalid(
            f"the pipeline signature is {len(raw)} bytes; an Ed25519 signature is {SIGNATURE_BYTES}"
        )
    try:
        public.verify(raw, payload)
    except InvalidSignature:
        raise SignatureInvalid(
            f"the pipeline signature does not match key {expected}: the pipeline was altered "
            "after signing, or signed with another key"
        ) from None


def canonical_json(value: Any) -> bytes:
    """One byte spelling of a JSON document (sorted keys, no spaces, UTF-8), for a side that
    must rebuild the signed bytes from a parsed document."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    """base64url, padded or not; None for anything else (standard base64's ``+`` and ``/``,
    spaces, a length no encoding gives)."""
    if not _BASE64URL.fullmatch(text):
        return None
    unpadded = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        return None
