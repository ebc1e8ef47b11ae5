"""Pipeline signatures: what a runner accepts and what it refuses."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from forgeyard.kernel.signing import (
    KeyInvalid,
    SignatureInvalid,
    canonical_json,
    generate_key,
    key_id,
    private_key_from_text,
    private_key_to_text,
    public_key_text,
    sign,
    verify,
)

PIPELINE = canonical_json(
    {"steps": [{"name": "test", "commands": ["make test"]}], "commit": "a" * 40}
)

# RFC 8032 (Edwards-Curve Digital Signature Algorithm), section 7.1 "Test Vectors for
# Ed25519", TEST 1: the empty message.
RFC8032_TEST1_SECRET_KEY = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_TEST1_PUBLIC_KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_TEST1_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def b64url(hex_text: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_text)).rstrip(b"=").decode()


def test_a_signed_pipeline_verifies() -> None:
    key = generate_key()
    verify(public_key_text(key), PIPELINE, sign(key, PIPELINE))


def test_one_flipped_byte_in_the_payload_is_refused() -> None:
    key = generate_key()
    signature = sign(key, PIPELINE)
    altered = bytearray(PIPELINE)
    altered[len(altered) // 2] ^= 0x01
    with pytest.raises(SignatureInvalid, match="altered after signing"):
        verify(public_key_text(key), bytes(altered), signature)


def test_a_signature_from_another_key_is_refused_naming_the_expected_key() -> None:
    server, other = generate_key(), generate_key()
    expected = key_id(public_key_text(server))
    with pytest.raises(SignatureInvalid, match=f"does not match key {expected}"):
        verify(public_key_text(server), PIPELINE, sign(other, PIPELINE))


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_an_unsigned_pipeline_is_refused(missing: str | None) -> None:
    key = generate_key()
    with pytest.raises(SignatureInvalid, match="not signed"):
        verify(public_key_text(key), PIPELINE, missing)


@pytest.mark.parametrize(
    ("garbage", "message"),
    [
        ("not base64!", "not valid base64url"),
        ("a+b/" * 22, "not valid base64url"),  # standard base64's alphabet is not accepted
        ("A", "not valid base64url"),  # no encoding has this length
        (base64.urlsafe_b64encode(b"x" * 63).decode(), "63 bytes"),
        (base64.urlsafe_b64encode(b"x" * 64).decode(), "does not match"),
    ],
)
def test_a_garbage_signature_is_refused(garbage: str, message: str) -> None:
    key = generate_key()
    with pytest.raises(SignatureInvalid, match=message):
        verify(public_key_text(key), PIPELINE, garbage)


def test_a_padded_signature_is_read_as_well() -> None:
    key = generate_key()
    signature = sign(key, PIPELINE)
    assert len(signature) == 86
    assert "=" not in signature
    verify(public_key_text(key), PIPELINE, signature + "==")


def test_a_bad_configured_public_key_refuses_rather_than_crashes() -> None:
    key = generate_key()
    with pytest.raises(SignatureInvalid, match="configured public key is invalid"):
        verify("short", PIPELINE, sign(key, PIPELINE))


def test_the_private_key_text_round_trips() -> None:
    key = generate_key()
    text = private_key_to_text(key)
    assert len(text) == 43  # 32 bytes, unpadded base64url: one line, fit for an env var
    again = private_key_from_text(text + "\n")
    assert private_key_to_text(again) == text
    assert public_key_text(again) == public_key_text(key)
    verify(public_key_text(key), PIPELINE, sign(again, PIPELINE))


def test_a_pkcs8_pem_private_key_is_accepted() -> None:
    key = generate_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert private_key_to_text(private_key_from_text(pem)) == private_key_to_text(key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        base64.urlsafe_b64encode(b"k" * 31).decode(),
        "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n",
    ],
)
def test_bad_private_key_text_is_refused(text: str) -> None:
    with pytest.raises(KeyInvalid):
        private_key_from_text(text)


def test_key_id_is_a_short_stable_fingerprint() -> None:
    one, two = generate_key(), generate_key()
    assert key_id(public_key_text(one)) == key_id(public_key_text(one))
    assert key_id(public_key_text(one)) != key_id(public_key_text(two))
    assert len(key_id(public_key_text(one))) == 16
    int(key_id(public_key_text(one)), 16)


def test_rfc8032_test_vector_1_verifies() -> None:
    public = b64url(RFC8032_TEST1_PUBLIC_KEY)
    verify(public, b"", b64url(RFC8032_TEST1_SIGNATURE))
    with pytest.raises(SignatureInvalid):
        verify(public, b"\x00", b64url(RFC8032_TEST1_SIGNATURE))


def test_rfc8032_test_vector_1_is_what_sign_produces() -> None:
    # Ed25519 is deterministic: the published secret key gives the published public key and
    # signature, so the text forms carry the key bytes unchanged.
    key = private_key_from_text(b64url(RFC8032_TEST1_SECRET_KEY))
    assert public_key_text(key) == b64url(RFC8032_TEST1_PUBLIC_KEY)
    assert sign(key, b"") == b64url(RFC8032_TEST1_SIGNATURE)


def test_canonical_json_is_one_spelling() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == canonical_json({"a": "é", "b": 1})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
