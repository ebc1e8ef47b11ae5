"""Sign-in with GitHub (seed 000) against a stand-in that follows GitHub's documented flow."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from tests.identity.conftest import Tenants, runtime_of
from tests.identity.github_standin import GitHubStandIn, running_github

API = "/api/v1"


@pytest.fixture(scope="session")
def github_server() -> Iterator[GitHubStandIn]:
    with running_github() as standin:
        yield standin


@pytest.fixture
def github(app: FastAPI, github_server: GitHubStandIn) -> GitHubStandIn:
    settings = runtime_of(app).settings.github
    settings.client_id = github_server.client_id
    settings.client_secret = SecretStr(github_server.client_secret)
    settings.web_url = settings.api_url = github_server.url
    return github_server


async def _sign_in_with_github(
    client: httpx.AsyncClient, emails: list[dict[str, object]], github: GitHubStandIn
) -> httpx.Response:
    github.emails = emails
    start = await client.get(f"{API}/auth/github/start")
    assert start.status_code == 307
    # The browser visits GitHub, which sends it back to our callback with code and state.
    async with httpx.AsyncClient() as browser:
        back = await browser.get(start.headers["location"], follow_redirects=False)
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    assert callback.path == "/api/v1/auth/github/callback"
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    return await client.get(callback.path, params=params)


@pytest.mark.usefixtures("tenants")
async def test_a_member_signs_in_with_their_verified_primary_github_address(
    client: httpx.AsyncClient, github: GitHubStandIn, tenants: Tenants
) -> None:
    response = await _sign_in_with_github(
        client,
        [
            {
                "email": "old@elsewhere.example",
                "primary": False,
                "verified": True,
                "visibility": None,
            },
            {
                "email": "Member@acme.example",
                "primary": True,
                "verified": True,
                "visibility": "private",
            },
        ],
        github,
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == tenants.member.user_id
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("fy_session="))
    assert "httponly" in cookie.lower()


@pytest.mark.usefixtures("tenants")
async def test_an_unverified_address_is_not_trusted(
    client: httpx.AsyncClient, github: GitHubStandIn
) -> None:
    response = await _sign_in_with_github(
        client, [{"email": "member@acme.example", "primary": True, "verified": False}], github
    )
    assert response.status_code == 502
    assert response.json()["code"] == "missing_email"


@pytest.mark.usefixtures("tenants")
async def test_a_github_account_without_a_forgeyard_account_is_refused(
    client: httpx.AsyncClient, github: GitHubStandIn
) -> None:
    response = await _sign_in_with_github(
        client, [{"email": "stranger@acme.example", "primary": True, "verified": True}], github
    )
    assert response.status_code == 403
    assert response.json()["code"] == "user_not_found"


@pytest.mark.usefixtures("tenants")
async def test_a_wrong_code_is_a_token_exchange_error(
    client: httpx.AsyncClient, github: GitHubStandIn
) -> None:
    start = await client.get(f"{API}/auth/github/start")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    response = await client.get(
        f"{API}/auth/github/callback", params={"code": "not-a-code", "state": state}
    )
    assert response.status_code == 502
    assert response.json()["code"] == "token_exchange_error"


@pytest.mark.usefixtures("tenants")
async def test_without_configuration_github_sign_in_says_so(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/auth/github/start")
    assert response.status_code == 409
    assert response.json()["code"] == "github_not_configured"


@pytest.mark.usefixtures("tenants", "github")
async def test_the_callback_needs_code_and_state(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/auth/github/callback", params={"code": "x"})
    assert response.status_code == 400
    assert response.json()["details"]["fields"][0]["field"] == "query.state"
