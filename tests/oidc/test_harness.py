"""The OIDC harness on its own: a full authorization code flow with PKCE, no Forgeyard code.

If these fail, sign-in tests of the application built on the harness cannot be trusted.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from tests.oidc.harness import (
    Provider,
    SignInError,
    node_available,
    sign_in,
    start_provider,
)

pytestmark = pytest.mark.skipif(not node_available(), reason="needs Node.js and npm")

# Two registered redirect URIs, to show a client may have several. Nothing listens on them:
# sign_in returns the redirect to them without following it.
REDIRECT_URIS = ["http://127.0.0.1:8000/oidc/callback", "http://127.0.0.1:8001/oidc/callback"]


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with start_provider(tmp_path_factory.mktemp("oidc"), REDIRECT_URIS) as running:
        yield running


@pytest.fixture(scope="module")
def discovery(provider: Provider) -> dict[str, Any]:
    response = httpx.get(provider.discovery_url, trust_env=False)
    response.raise_for_status()
    return dict(response.json())


def test_discovery_names_the_issuer_and_its_endpoints(
    provider: Provider, discovery: dict[str, Any]
) -> None:
    assert discovery["issuer"] == provider.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert discovery[endpoint].startswith(f"{provider.issuer}/")
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "email", "profile"} <= set(discovery["scopes_supported"])


def test_sign_in_yields_a_code_that_buys_signed_tokens_with_the_email(
    provider: Provider, discovery: dict[str, Any]
) -> None:
    claims = _sign_in_and_redeem(provider, discovery, "alice", REDIRECT_URIS[0])

    assert claims["sub"] == "alice"
    assert claims["email"] == "alice@example.test"
    assert claims["email_verified"] is True
    assert claims["name"] == "alice"


def test_login_noemail_yields_an_id_token_without_email(
    provider: Provider, discovery: dict[str, Any]
) -> None:
    claims = _sign_in_and_redeem(provider, discovery, "noemail", REDIRECT_URIS[1])

    assert claims["sub"] == "noemail"
    assert "email" not in claims
    assert "email_verified" not in claims


def test_the_provider_refuses_an_authorization_request_without_pkce(
    provider: Provider, discovery: dict[str, Any]
) -> None:
    url = _authorization_url(provider, discovery, REDIRECT_URIS[0], "state", "nonce", None)

    callback = parse_qs(urlsplit(sign_in(url, "alice")).query)

    assert callback["error"] == ["invalid_request"]
    assert "PKCE" in callback["error_description"][0]
    assert callback["state"] == ["state"]


def test_sign_in_says_why_when_the_provider_never_redirects_back(
    provider: Provider, discovery: dict[str, Any]
) -> None:
    unregistered = "http://127.0.0.1:8002/oidc/callback"
    url = _authorization_url(provider, discovery, unregistered, "state", "nonce", "v" * 43)

    with pytest.raises(SignInError, match="redirect_uri did not match any of the client"):
        sign_in(url, "alice")


def _sign_in_and_redeem(
    provider: Provider, discovery: dict[str, Any], login: str, redirect_uri: str
) -> dict[str, Any]:
    """The relying party's side of one sign-in, done by hand; returns the ID token's claims."""
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)  # RFC 7636: 43 to 128 characters
    url = _authorization_url(provider, discovery, redirect_uri, state, nonce, verifier)

    location = sign_in(url, login)

    assert location.startswith(f"{redirect_uri}?")
    callback = parse_qs(urlsplit(location).query)
    assert callback["state"] == [state]
    assert callback["iss"] == [provider.issuer]  # RFC 9207
    response = httpx.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": callback["code"][0],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(provider.client_id, provider.client_secret),  # client_secret_basic
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"]
    claims = _verified_claims(tokens["id_token"], provider, discovery)
    assert claims["nonce"] == nonce
    return claims


def _authorization_url(
    provider: Provider,
    discovery: dict[str, Any],
    redirect_uri: str,
    state: str,
    nonce: str,
    verifier: str | None,
) -> str:
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": state,
        "nonce": nonce,
    }
    if verifier is not None:
        digest = hashlib.sha256(verifier.encode()).digest()
        params["code_challenge"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        params["code_challenge_method"] = "S256"
    return f"{discovery['authorization_endpoint']}?{urlencode(params)}"


def _verified_claims(
    id_token: str, provider: Provider, discovery: dict[str, Any]
) -> dict[str, Any]:
    """Checks the signature against the provider's published keys, as a relying party must."""
    jwks = httpx.get(discovery["jwks_uri"], trust_env=False).json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(id_token)["kid"]]
    return dict(
        jwt.decode(
            id_token,
            key=key,
            algorithms=["RS256"],
            audience=provider.client_id,
            issuer=provider.issuer,
        )
    )
