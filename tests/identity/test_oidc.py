"""OpenID Connect against a real, certified provider (npm oidc-provider) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from forgeyard.identity import oidc, setup
from forgeyard.kernel.db import Database
from forgeyard.kernel.errors import ForgeyardError
from forgeyard.models.identity import IdentityProvider
from tests.identity.conftest import runtime_of
from tests.oidc.harness import Provider, sign_in, start_provider

API = "/api/v1"
CALLBACK = "http://127.0.0.1:8000/oidc/callback"


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with start_provider(tmp_path_factory.mktemp("oidc"), [CALLBACK]) as running:
        yield running


def _code_and_state(location: str) -> dict[str, str]:
    query = parse_qs(urlsplit(location).query)
    return {"code": query["code"][0], "state": query["state"][0]}


async def _setup_session(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> dict[str, str]:
    async with database.transaction() as session:
        token = await setup.issue_bootstrap_token(session=session, runtime=runtime_of(app))
    verified = await client.post(f"{API}/setup/bootstrap-token/verify", json={"token": token})
    return {"Authorization": f"Bearer {verified.json()['setup_session_token']}"}


async def _configure(
    client: httpx.AsyncClient, auth: dict[str, str], provider: Provider
) -> httpx.Response:
    return await client.post(
        f"{API}/setup/oidc/configure",
        json={
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
        },
        headers=auth,
    )


async def _ready_with_oidc_owner(
    app: FastAPI, database: Database, client: httpx.AsyncClient, provider: Provider
) -> dict[str, object]:
    auth = await _setup_session(app, database, client)
    assert (await _configure(client, auth, provider)).status_code == 200
    started = await client.post(
        f"{API}/setup/owner/start-oidc", json={"redirect_uri": CALLBACK}, headers=auth
    )
    assert started.status_code == 200, started.text
    location = sign_in(started.json()["authorization_url"], "alice")
    owner = await client.post(
        f"{API}/setup/owner/verify-oidc",
        json={**_code_and_state(location), "organization_name": "Acme"},
        headers=auth,
    )
    assert owner.status_code == 201, owner.text
    assert (await client.post(f"{API}/setup/complete", headers=auth)).status_code == 200
    return dict(owner.json())


async def _oidc_login(client: httpx.AsyncClient, login: str) -> httpx.Response:
    started = await client.get(f"{API}/auth/oidc/start", params={"redirect_uri": CALLBACK})
    assert started.status_code == 200, started.text
    location = sign_in(started.json()["authorization_url"], login)
    return await client.post(f"{API}/auth/oidc/callback", json=_code_and_state(location))


async def test_owner_set_up_through_the_provider_then_signs_in_with_it(
    app: FastAPI, database: Database, client: httpx.AsyncClient, provider: Provider
) -> None:
    owner = await _ready_with_oidc_owner(app, database, client, provider)
    assert (owner["email"], owner["role"]) == ("alice@example.test", "owner")
    login = await _oidc_login(client, "alice")
    assert login.status_code == 200, login.text
    assert login.json()["user"]["id"] == owner["id"]
    me = await client.get(
        f"{API}/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["user"]["email"] == "alice@example.test"


async def test_the_client_secret_is_stored_encrypted(
    app: FastAPI, database: Database, client: httpx.AsyncClient, provider: Provider
) -> None:
    await _configure(client, await _setup_session(app, database, client), provider)
    async with database.sessionmaker() as session:
        stored = (await session.scalars(select(IdentityProvider))).one()
    assert provider.client_secret not in stored.client_secret_encrypted
    assert (
        runtime_of(app).secret_box.decrypt(stored.client_secret_encrypted) == provider.client_secret
    )


async def test_someone_without_an_account_is_refused(
    app: FastAPI, database: Database, client: httpx.AsyncClient, provider: Provider
) -> None:
    await _ready_with_oidc_owner(app, database, client, provider)
    response = await _oidc_login(client, "mallory")
    assert response.status_code == 403
    assert response.json()["code"] == "user_not_found"


async def test_an_identity_without_email_is_refused(
    app: FastAPI, database: Database, client: httpx.AsyncClient, provider: Provider
) -> None:
    await _ready_with_oidc_owner(app, database, client, provider)
    response = await _oidc_login(client, "noemail")
    assert response.status_code == 502
    assert response.json()["code"] == "missing_email"


async def test_a_state_works_once(
    app: FastAPI, database: Database, client: httpx.AsyncClient, provider: Provider
) -> None:
    await _ready_with_oidc_owner(app, database, client, provider)
    started = await client.get(f"{API}/auth/oidc/start", params={"redirect_uri": CALLBACK})
    callback = _code_and_state(sign_in(started.json()["authorization_url"], "alice"))
    assert (await client.post(f"{API}/auth/oidc/callback", json=callback)).status_code == 200
    replay = await client.post(f"{API}/auth/oidc/callback", json=callback)
    assert replay.status_code == 400
    assert replay.json()["code"] == "invalid_state"


async def test_a_forged_code_fails_the_exchange(
    app: FastAPI, database: Database, client: httpx.AsyncClient, provider: Provider
) -> None:
    await _ready_with_oidc_owner(app, database, client, provider)
    started = await client.get(f"{API}/auth/oidc/start", params={"redirect_uri": CALLBACK})
    callback = _code_and_state(sign_in(started.json()["authorization_url"], "alice"))
    response = await client.post(
        f"{API}/auth/oidc/callback", json={**callback, "code": "forged-code"}
    )
    assert response.status_code == 502
    assert response.json()["code"] == "token_exchange_error"


async def test_an_unreachable_provider_is_a_discovery_error(
    app: FastAPI, database: Database, client: httpx.AsyncClient
) -> None:
    auth = await _setup_session(app, database, client)
    response = await client.post(
        f"{API}/setup/oidc/configure",
        json={"issuer": "http://127.0.0.1:1", "client_id": "x", "client_secret": "y"},
        headers=auth,
    )
    assert response.status_code == 502
    assert response.json()["code"] == "oidc_discovery_error"


@pytest.mark.parametrize("redirect_uri", ["javascript:alert(1)", "/relative", "http://x/#frag"])
async def test_a_bad_redirect_uri_is_refused(
    app: FastAPI,
    database: Database,
    client: httpx.AsyncClient,
    provider: Provider,
    redirect_uri: str,
) -> None:
    await _ready_with_oidc_owner(app, database, client, provider)
    response = await client.get(f"{API}/auth/oidc/start", params={"redirect_uri": redirect_uri})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_redirect_uri"


async def test_id_tokens_are_verified_against_the_providers_keys(provider: Provider) -> None:
    metadata = await oidc.discover(provider.issuer)
    record = IdentityProvider(issuer=provider.issuer, client_id=provider.client_id)
    forged = jwt.encode(
        {"alg": "RS256", "kid": "attacker"},
        {
            "iss": provider.issuer,
            "aud": provider.client_id,
            "sub": "x",
            "exp": 4102444800,
            "iat": 1,
            "nonce": "n",
            "email": "ceo@example.test",
        },
        RSAKey.generate_key(2048, parameters={"kid": "attacker"}),
    )
    with pytest.raises(ForgeyardError) as forged_error:
        await oidc.verify_id_token(record, metadata, {"id_token": forged}, "n")
    assert forged_error.value.code == "id_token_verification_error"
    with pytest.raises(ForgeyardError) as missing:
        await oidc.verify_id_token(record, metadata, {"access_token": "x"}, "n")
    assert missing.value.code == "missing_id_token"


def test_the_harness_is_not_skipped_silently(tmp_path: Path) -> None:
    # The OIDC tests above need Node; the CI machine has it, so they must really run there.
    from tests.oidc.harness import node_available

    assert node_available()


async def test_owner_setup_through_oidc_refuses_bad_input(
    app: FastAPI, database: Database, client: httpx.AsyncClient, provider: Provider
) -> None:
    auth = await _setup_session(app, database, client)
    await _configure(client, auth, provider)
    bad_uri = await client.post(
        f"{API}/setup/owner/start-oidc", json={"redirect_uri": "ftp://x/cb"}, headers=auth
    )
    assert bad_uri.status_code == 400
    assert bad_uri.json()["code"] == "invalid_redirect_uri"
    unknown_state = await client.post(
        f"{API}/setup/owner/verify-oidc",
        json={"code": "c", "state": "never-issued", "organization_name": "Acme"},
        headers=auth,
    )
    assert unknown_state.status_code == 400
    assert unknown_state.json()["code"] == "invalid_state"
    assert (await client.get(f"{API}/public/setup-status")).json()["owner_created"] is False
