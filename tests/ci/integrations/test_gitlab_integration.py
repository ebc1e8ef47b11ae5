"""Connecting GitLab (seed 003's gitlab/start and gitlab/authorize) through a real OAuth
exchange: the certified oidc-provider with GitLab's endpoint paths, PKCE and
client_secret_post (gitlab_standin.mjs), and GitLab's documented example answers for the user
and project list, served only to a token that provider issued. GitLab itself cannot run here."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from forgeyard.kernel.crypto import TokenHasher
from forgeyard.models.repo import Repository
from forgeyard.settings import Settings
from tests.ci.integrations.conftest import assert_error, call, field_of
from tests.identity.conftest import Tenants
from tests.oidc.harness import sign_in
from tests.processes import free_port, node_available, npm_ci_once, stop

HERE = Path(__file__).resolve().parent
OIDC_DIR = HERE.parent.parent / "oidc"  # its npm install holds oidc-provider
EXAMPLES = HERE / "gitlab_examples.json"
CLIENT_ID = "forgeyard-gitlab-test"
REDIRECT_URI = "http://127.0.0.1:8000/integrations/gitlab/callback"  # the settings' default


@dataclass(frozen=True)
class GitLab:
    url: str
    client_secret: str


@pytest.fixture(scope="session")
def gitlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitLab]:
    if not node_available():
        pytest.skip("the GitLab stand-in needs Node.js and npm")
    npm_ci_once(OIDC_DIR)
    module = (OIDC_DIR / "node_modules" / "oidc-provider" / "lib" / "index.js").as_uri()
    secret = secrets.token_urlsafe(24)
    client = {"client_id": CLIENT_ID, "client_secret": secret, "redirect_uris": [REDIRECT_URI]}
    port = free_port()
    log_path = tmp_path_factory.mktemp("gitlab") / "gitlab-standin.log"
    command = ["node", str(HERE / "gitlab_standin.mjs"), str(port), json.dumps(client)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, module, str(EXAMPLES)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield GitLab(_ready(process, log_path), secret)
    finally:
        stop(process)


def _ready(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("READY "):
                return line.removeprefix("READY ").strip()
        time.sleep(0.05)
    raise RuntimeError("the GitLab stand-in did not start:\n" + log_path.read_text())


async def start(client: httpx.AsyncClient, tenants: Tenants, gitlab: GitLab) -> dict[str, str]:
    body = {
        "base_url": gitlab.url + "/",
        "client_id": CLIENT_ID,
        "client_secret": gitlab.client_secret,
    }
    started = await call(client, "POST", "/integrations/gitlab/start", tenants.owner, body)
    assert started.status_code == 200, started.text
    return dict(started.json())


async def connect(client: httpx.AsyncClient, tenants: Tenants, gitlab: GitLab) -> dict:
    started = await start(client, tenants, gitlab)
    back = parse_qs(urlsplit(sign_in(started["url"], "john_smith")).query)
    assert back["state"] == [started["state"]]
    body = {"code": back["code"][0], "state": started["state"]}
    done = await call(client, "POST", "/integrations/gitlab/authorize", tenants.owner, body)
    assert done.status_code == 201, done.text
    return dict(done.json())


async def test_the_authorize_url_is_gitlabs_with_pkce(
    client: httpx.AsyncClient, tenants: Tenants, gitlab: GitLab
) -> None:
    started = await start(client, tenants, gitlab)
    url = urlsplit(started["url"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{gitlab.url}/oauth/authorize"
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [started["state"]]
    assert query["scope"] == ["read_api read_repository"]
    assert gitlab.client_secret not in started["url"]


async def test_a_code_is_exchanged_and_the_grant_stored_sealed(
    client: httpx.AsyncClient, tenants: Tenants, gitlab: GitLab, app: object
) -> None:
    done = await connect(client, tenants, gitlab)
    integration = done["integration"]
    assert integration["kind"] == "gitlab"
    assert integration["config"]["username"] == "john_smith"
    assert integration["repositories_count"] == 2
    assert done["webhook_url"].endswith("/api/v1/webhooks/gitlab")
    repos = await call(
        client, "GET", f"/integrations/{integration['id']}/repositories", tenants.viewer
    )
    names = {repo["full_name"]: repo["private"] for repo in repos.json()["data"]}
    assert names == {"diaspora/diaspora-client": True, "brightbox/puppet": False}
    # The stored token still works: listing again asks the stand-in with it.
    refreshed = await call(
        client,
        "GET",
        f"/integrations/{integration['id']}/repositories",
        tenants.viewer,
        params={"refresh": "true"},
    )
    assert refreshed.json()["total"] == 2, refreshed.text
    shown = (await call(client, "GET", f"/integrations/{integration['id']}", tenants.owner)).text
    assert gitlab.client_secret not in shown
    assert done["webhook_token"] not in shown
    # Only the webhook token's hash is kept; the token finds its integration.
    database = app.state.database  # type: ignore[attr-defined]
    async with database.transaction() as session:
        from forgeyard.ci import integrations

        hasher: TokenHasher = app.state.auth.token_hasher  # type: ignore[attr-defined]
        found = await integrations.gitlab_integration(
            session=session, hasher=hasher, token=done["webhook_token"]
        )
        assert found is not None
        assert found.id == integration["id"]
        assert done["webhook_token"] not in (found.inbound_token_hash or "")
        assert gitlab.client_secret not in (found.secrets_encrypted or "")


async def test_a_code_gitlab_refuses_is_a_502_and_stores_nothing(
    client: httpx.AsyncClient, tenants: Tenants, gitlab: GitLab
) -> None:
    started = await start(client, tenants, gitlab)
    body = {"code": "not-a-code-gitlab-issued", "state": started["state"]}
    refused = await call(client, "POST", "/integrations/gitlab/authorize", tenants.owner, body)
    assert_error(refused, 502, "token_exchange_error")
    assert (await call(client, "GET", "/integrations", tenants.owner)).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_url": "ftp://gitlab.example", "client_id": "a", "client_secret": "b"}, "base_url"),
        ({"base_url": "http://10.0.0.7", "client_id": "a", "client_secret": "b"}, "base_url"),
        ({"base_url": "https://93.184.215.14", "client_secret": "b"}, "body.client_id"),
        (
            {"base_url": "https://93.184.215.14", "client_id": "a", "client_secret": ""},
            "body.client_secret",
        ),
    ],
)
async def test_bad_start_input_names_the_field(
    client: httpx.AsyncClient, tenants: Tenants, body: dict[str, str], field: str
) -> None:
    refused = await call(client, "POST", "/integrations/gitlab/start", tenants.owner, body)
    assert refused.status_code == 400, refused.text
    assert field_of(refused.json()) == field


async def test_authorize_refuses_a_state_it_did_not_issue_and_someone_elses(
    client: httpx.AsyncClient, tenants: Tenants, settings: Settings
) -> None:
    body = {"base_url": "https://93.184.215.14", "client_id": "a", "client_secret": "b"}
    started = await call(client, "POST", "/integrations/gitlab/start", tenants.owner, body)
    for account in (tenants.other_owner, tenants.admin):
        stolen = {"code": "c", "state": started.json()["state"]}
        refused = await call(client, "POST", "/integrations/gitlab/authorize", account, stolen)
        assert field_of(assert_error(refused, 400, "invalid_state")) == "state"
    missing = await call(
        client, "POST", "/integrations/gitlab/authorize", tenants.owner, {"code": "c"}
    )
    assert field_of(assert_error(missing, 400, "invalid_input")) == "body.state"


async def test_members_may_not_connect_gitlab(client: httpx.AsyncClient, tenants: Tenants) -> None:
    body = {"base_url": "https://93.184.215.14", "client_id": "a", "client_secret": "b"}
    refused = await call(client, "POST", "/integrations/gitlab/start", tenants.member, body)
    assert refused.json()["details"] == {"permission": "integrations:manage"}


async def test_a_gitlab_project_is_enabled_and_linked_by_clone_url(
    client: httpx.AsyncClient, tenants: Tenants, gitlab: GitLab, app: object
) -> None:
    database = app.state.database  # type: ignore[attr-defined]
    async with database.transaction() as session:
        existing = Repository(
            organization_id=tenants.owner.organization_id,
            name="puppet",
            clone_url="https://gitlab.example.com/brightbox/puppet.git",
            settings={},
            quality_gates={},
        )
        session.add(existing)
        await session.flush()
    integration = (await connect(client, tenants, gitlab))["integration"]
    path = f"/integrations/{integration['id']}/repositories"
    body = {"repositories": ["brightbox/puppet"], "enabled": True}
    refused = await call(client, "POST", path, tenants.member, body)
    assert refused.json()["details"] == {"permission": "integrations:manage"}
    unknown = await call(client, "POST", path, tenants.owner, body | {"repositories": ["a/b"]})
    assert field_of(assert_error(unknown, 400, "invalid_input")) == "repositories"
    enabled = await call(client, "POST", path, tenants.owner, body)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["data"][0]["repository_id"] == existing.id
    globex = await call(client, "POST", path, tenants.other_owner, body)
    assert_error(globex, 404, "not_found")
