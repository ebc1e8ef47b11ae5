"""Connecting a GitHub App installation (seed 003's github/start and github/complete, seed 001's
/github/installations) against GitHub's OpenAPI description served by prism with request
validation on: every call the server makes is one GitHub's description accepts, with the app's
RS256 JWT and then an installation token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from forgeyard.ci import forge_clients
from forgeyard.models.repo import Repository
from forgeyard.settings import Settings
from tests.ci.integrations.conftest import APP_SLUG, assert_error, call, field_of, needs_prism
from tests.github import harness
from tests.identity.conftest import Tenants

# The repository of GitHub's example answer to GET /installation/repositories.
EXAMPLE_REPO = "octocat/Hello-World"
EXAMPLE_CLONE_URL = "https://github.com/octocat/Hello-World.git"


@pytest.fixture
def github_api_url(prism: harness.Prism) -> str:
    return prism.url


async def start(client: httpx.AsyncClient, tenants: Tenants) -> str:
    started = await call(client, "POST", "/integrations/github/start", tenants.owner)
    assert started.status_code == 200, started.text
    url = urlsplit(started.json()["url"])
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "github.com",
        f"/apps/{APP_SLUG}/installations/new",
    )
    state: str = started.json()["state"]
    assert parse_qs(url.query)["state"] == [state]
    return state


async def connect(client: httpx.AsyncClient, tenants: Tenants, installation_id: int = 1) -> dict:
    state = await start(client, tenants)
    body = {"installation_id": installation_id, "state": state}
    done = await call(client, "POST", "/integrations/github/complete", tenants.owner, body)
    assert done.status_code == 201, done.text
    return dict(done.json())


def test_the_app_jwt_is_rs256_issued_by_the_app_a_minute_early(
    settings: Settings, app_private_key: rsa.RSAPrivateKey
) -> None:
    token = forge_clients.app_jwt(settings, now=1_700_000_000)
    claims = jwt.decode(
        token, app_private_key.public_key(), algorithms=["RS256"], options={"verify_exp": False}
    )
    assert claims == {"iat": 1_700_000_000 - 60, "exp": 1_700_000_000 + 480, "iss": "424242"}


@needs_prism
async def test_an_installation_is_checked_with_github_then_listed(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    integration = await connect(client, tenants)
    assert integration["kind"] == "github"
    assert integration["status"] == "active"
    assert integration["external_id"] == "1"  # the example installation's id
    assert integration["config"]["account"] == "octocat"
    assert integration["repositories_count"] >= 1
    assert integration["enabled_count"] == 0
    listed = await call(client, "GET", "/integrations", tenants.viewer, params={"kind": "github"})
    assert [item["id"] for item in listed.json()["data"]] == [integration["id"]]
    assert (
        await call(client, "GET", "/integrations", tenants.viewer, params={"kind": "gitlab"})
    ).json()["total"] == 0
    installs = await call(client, "GET", "/github/installations", tenants.viewer)
    assert installs.json()["data"][0]["installation_id"] == 1
    repos = await call(
        client, "GET", f"/github/installations/{integration['id']}/repos", tenants.viewer
    )
    assert EXAMPLE_REPO in [repo["full_name"] for repo in repos.json()["data"]]
    refreshed = await call(
        client,
        "GET",
        f"/integrations/{integration['id']}/repositories",
        tenants.viewer,
        params={"refresh": "true"},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["total"] == repos.json()["total"]


@needs_prism
async def test_a_state_works_once_and_only_for_who_started_it(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    state = await start(client, tenants)
    body = {"installation_id": 1, "state": state}
    stolen = await call(client, "POST", "/integrations/github/complete", tenants.admin, body)
    assert field_of(assert_error(stolen, 400, "invalid_state")) == "state"
    done = await call(client, "POST", "/integrations/github/complete", tenants.owner, body)
    assert done.status_code == 201, done.text
    again = await call(client, "POST", "/integrations/github/complete", tenants.owner, body)
    assert_error(again, 400, "invalid_state")


@needs_prism
async def test_one_installation_belongs_to_one_organization(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    await connect(client, tenants)
    started = await call(client, "POST", "/integrations/github/start", tenants.other_owner)
    body = {"installation_id": 1, "state": started.json()["state"]}
    taken = await call(client, "POST", "/integrations/github/complete", tenants.other_owner, body)
    assert field_of(assert_error(taken, 409, "conflict")) == "installation_id"


@needs_prism
async def test_enabling_links_the_repository_with_the_same_clone_url(
    client: httpx.AsyncClient, tenants: Tenants, app: FastAPI
) -> None:
    async with app.state.database.transaction() as session:
        existing = Repository(
            organization_id=tenants.owner.organization_id,
            name="hello",
            clone_url=EXAMPLE_CLONE_URL.removesuffix(".git"),
            settings={},
            quality_gates={},
        )
        session.add(existing)
        await session.flush()
    integration = await connect(client, tenants)
    path = f"/github/installations/{integration['id']}/repos"
    body = {"repositories": [EXAMPLE_REPO], "enabled": True}
    enabled = await call(client, "POST", path, tenants.admin, body)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["data"][0]["repository_id"] == existing.id
    assert enabled.json()["data"][0]["enabled"] is True
    disabled = await call(client, "POST", path, tenants.owner, body | {"enabled": False})
    assert disabled.json()["data"][0] | {"enabled": False} == disabled.json()["data"][0]
    shown = await call(client, "GET", f"/integrations/{integration['id']}", tenants.viewer)
    assert shown.json()["enabled_count"] == 0


@needs_prism
async def test_bad_repository_names_name_the_field_and_change_nothing(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    integration = await connect(client, tenants)
    path = f"/github/installations/{integration['id']}/repos"
    for names, field in [
        (["no-slash"], "body.repositories.0"),
        ([EXAMPLE_REPO, "octocat/unknown"], "repositories"),
        ([], "body.repositories"),
    ]:
        refused = await call(
            client, "POST", path, tenants.owner, {"repositories": names, "enabled": True}
        )
        assert field_of(assert_error(refused, 400, "invalid_input")) == field
    shown = await call(client, "GET", f"/integrations/{integration['id']}", tenants.owner)
    assert shown.json()["enabled_count"] == 0


@needs_prism
async def test_another_organization_sees_nothing_and_roles_are_checked(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    integration = await connect(client, tenants)
    globex = tenants.other_owner
    for method, path in [
        ("GET", f"/integrations/{integration['id']}"),
        ("GET", f"/integrations/{integration['id']}/repositories"),
        ("GET", f"/github/installations/{integration['id']}/repos"),
        ("DELETE", f"/integrations/{integration['id']}"),
    ]:
        assert_error(await call(client, method, path, globex), 404, "not_found")
    assert (await call(client, "GET", "/integrations", globex)).json()["total"] == 0
    for method, path, body in [
        ("POST", "/integrations/github/start", None),
        ("DELETE", f"/integrations/{integration['id']}", None),
        (
            "POST",
            f"/github/installations/{integration['id']}/repos",
            {"repositories": [EXAMPLE_REPO], "enabled": True},
        ),
    ]:
        refused = await call(client, method, path, tenants.member, body)
        assert refused.json()["details"] == {"permission": "integrations:manage"}
    deleted = await call(client, "DELETE", f"/integrations/{integration['id']}", tenants.admin)
    assert deleted.status_code == 204
    gone = await call(client, "GET", f"/integrations/{integration['id']}", tenants.owner)
    assert_error(gone, 404, "not_found")


async def test_complete_refuses_bad_input_by_field(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    for body, field in [
        ({"installation_id": 0, "state": "x"}, "body.installation_id"),
        ({"installation_id": "one", "state": "x"}, "body.installation_id"),
        ({"installation_id": 1}, "body.state"),
        ({"installation_id": 1, "state": "never-issued"}, "state"),
    ]:
        refused = await call(client, "POST", "/integrations/github/complete", tenants.owner, body)
        assert field_of(refused.json()) == field, refused.text
    assert (await call(client, "GET", "/integrations", tenants.owner)).json()["total"] == 0


async def test_without_a_github_app_start_says_so(
    client: httpx.AsyncClient, tenants: Tenants, settings: Settings
) -> None:
    settings.github.app_slug = None
    refused = await call(client, "POST", "/integrations/github/start", tenants.owner)
    assert_error(refused, 409, "not_configured")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/integrations", {"kind": "bitbucket"}, "query.kind"),
        ("/integrations", {"limit": "0"}, "query.limit"),
        ("/github/installations", {"offset": "-1"}, "query.offset"),
        ("/integrations/{id}/repositories", {"refresh": "maybe"}, "query.refresh"),
        ("/github/installations/{id}/repos", {"limit": "many"}, "query.limit"),
    ],
)
async def test_bad_query_parameters_name_the_field(
    client: httpx.AsyncClient, tenants: Tenants, path: str, params: dict[str, str], field: str
) -> None:
    url = path.format(id="int_01M8GF1HKY8BMGJQMTGYEGV4G2")
    refused = await call(client, "GET", url, tenants.viewer, params=params)
    assert field_of(assert_error(refused, 400, "invalid_input")) == field


async def test_unknown_and_malformed_ids_answer_404(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    for path in ("/integrations/int_01M8GF1HKY8BMGJQMTGYEGV4G2", "/integrations/not-an-id"):
        assert_error(await call(client, "GET", path, tenants.owner), 404, "not_found")
        assert_error(await call(client, "DELETE", path, tenants.owner), 404, "not_found")
