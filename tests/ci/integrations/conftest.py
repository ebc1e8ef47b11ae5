"""Integrations, instance settings and forge webhooks on the shared set-up (Acme's people,
Globex's owner), with a GitHub App configured: a fresh RSA key, a webhook secret, and its API
at GitHub's OpenAPI description served by prism when a test asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from forgeyard.settings import Settings
from tests.ci.test_artifact_storage import BUCKET, moto_endpoint  # noqa: F401
from tests.github import harness
from tests.identity.conftest import Account, tenants  # noqa: F401

API = "/api/v1"
WEBHOOK_SECRET = "It's a Secret to Everybody"  # GitHub's documented test secret
APP_SLUG = "forgeyard-test"
S3_BUCKET = BUCKET

needs_prism = pytest.mark.skipif(
    not harness.runnable(), reason="the GitHub contract tests need Node.js and npm on Linux x86-64"
)


@pytest.fixture(scope="session")
def app_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def github_api_url() -> str:
    """Where the GitHub App's API calls go; the prism tests point it at prism."""
    return "https://api.github.invalid"


@pytest.fixture
def settings(
    settings: Settings, app_private_key: rsa.RSAPrivateKey, github_api_url: str
) -> Settings:
    github = settings.github.model_copy(
        update={
            "app_id": "424242",
            "app_slug": APP_SLUG,
            "private_key": SecretStr(pem(app_private_key)),
            "webhook_secret": SecretStr(WEBHOOK_SECRET),
            "api_url": github_api_url,
        }
    )
    # The forges' stand-ins listen on loopback; local clone URLs serve the webhook builds.
    outbound = settings.outbound.model_copy(update={"allowed_hosts": ["127.0.0.1"]})
    analysis = settings.analysis.model_copy(update={"allow_local_clones": True})
    return settings.model_copy(
        update={"github": github, "outbound": outbound, "analysis": analysis}
    )


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Prism]:
    with harness.start_prism(tmp_path_factory.mktemp("prism")) as server:
        yield server


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert set(body) == {"error", "code", "details", "retryable", "request_id"}
    return body


def field_of(body: dict[str, Any]) -> str:
    """The field an error names: ``details.field``, or the first of ``details.fields``."""
    details = body["details"]
    if "field" in details:
        return str(details["field"])
    return str(details["fields"][0]["field"])


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    account: Account,
    json: Any = None,
    **kwargs: Any,
) -> httpx.Response:
    return await client.request(method, API + path, json=json, headers=account.headers, **kwargs)
