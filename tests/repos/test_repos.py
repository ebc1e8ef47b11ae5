"""Repositories: registration by clone URL, the mirror and its fetches, settings, the
timeline, deletion, and every way a clone URL or a setting can be wrong."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import select

from forgeyard.kernel.db import Database
from forgeyard.models.repo import Repository
from forgeyard.repos.service import mirror_path
from forgeyard.settings import Settings
from tests.identity.conftest import Tenants
from tests.repos.conftest import API, GitRepo, register, run_jobs


async def test_a_registered_repository_is_mirrored_and_shows_its_branch_and_head(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    git_repo: GitRepo,
    settings: Settings,
) -> None:
    repo = await register(client, tenants.member, git_repo.url, name="acme/api")
    assert repo["status"] == "registered"
    assert repo["source"] == "url"
    await run_jobs(database)

    detail = (await client.get(f"{API}/repos/{repo['id']}", headers=tenants.viewer.headers)).json()
    assert detail["status"] == "active"
    assert detail["default_branch"] == "main"
    assert detail["head_commit"] == git_repo.git("rev-parse", "HEAD")
    assert detail["last_scan"] is None
    assert detail["dependencies"] == []
    async with database.transaction() as session:
        row = await session.get(Repository, repo["id"])
        assert row is not None
        assert (mirror_path(settings, row) / "HEAD").is_file()

    listed = await client.get(f"{API}/repos?status=active", headers=tenants.viewer.headers)
    assert [r["id"] for r in listed.json()["data"]] == [repo["id"]]
    none = await client.get(f"{API}/repos?status=error", headers=tenants.viewer.headers)
    assert none.json()["total"] == 0


async def test_a_fetch_that_fails_says_why_on_the_repository_and_its_timeline(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, tenants.owner, git_repo.url)
    (git_repo.path / ".git").rename(git_repo.path / "not-git")  # the upstream goes away
    await run_jobs(database)
    detail = (await client.get(f"{API}/repos/{repo['id']}", headers=tenants.owner.headers)).json()
    assert detail["status"] == "error"
    assert "git clone failed" in detail["fetch_error"]
    events = (
        await client.get(f"{API}/repos/{repo['id']}/events", headers=tenants.owner.headers)
    ).json()
    assert [e["kind"] for e in events["data"]] == ["fetch_failed", "registered"]


@pytest.mark.parametrize(
    ("url", "code", "says"),
    [
        ("ext::sh -c touch% /tmp/pwned", "invalid_input", "clone URLs are"),
        ("fd::17", "invalid_input", "clone URLs are"),
        ("-uhttps://example.com/x.git", "invalid_input", "not a URL"),
        ("https://user:secret@example.com/x.git", "invalid_input", "credentials"),
        ("https://127.0.0.1/x.git", "blocked_destination", "127.0.0.1"),
        ("https://10.1.2.3/x.git", "blocked_destination", "10.1.2.3"),
        ("ssh://example.com/acme/api.git", "invalid_input", "ssh clone URLs are not allowed"),
        ("git@example.com:acme/api.git", "invalid_input", "ssh clone URLs are not allowed"),
        ("", "invalid_input", "clone_url"),
    ],
)
async def test_clone_urls_git_must_not_see_are_refused(
    client: httpx.AsyncClient, tenants: Tenants, url: str, code: str, says: str
) -> None:
    response = await client.post(
        f"{API}/repos", json={"clone_url": url}, headers=tenants.owner.headers
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == code
    assert says in body["error"] + str(body["details"])
    listed = await client.get(f"{API}/repos", headers=tenants.owner.headers)
    assert listed.json()["total"] == 0, "nothing half-written"


async def test_local_paths_need_the_operator_to_allow_them(
    client: httpx.AsyncClient, tenants: Tenants, git_repo: GitRepo, settings: Settings
) -> None:
    settings.analysis.allow_local_clones = False
    for url in (git_repo.url, str(git_repo.path)):
        response = await client.post(
            f"{API}/repos", json={"clone_url": url}, headers=tenants.owner.headers
        )
        assert response.status_code == 400
        assert "not allowed on this server" in response.json()["error"]


async def test_credentials_are_encrypted_at_rest_and_never_shown(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    token = "ghp_a-very-secret-token-value"
    repo = await register(
        client,
        tenants.owner,
        "https://93.184.215.14/acme/private.git",
        username="bot",
        token=token,
    )
    assert repo["has_credentials"] is True
    assert token not in str(repo)
    detail = await client.get(f"{API}/repos/{repo['id']}", headers=tenants.owner.headers)
    assert token not in detail.text
    async with database.transaction() as session:
        stored = await session.scalar(
            select(Repository.credentials_encrypted).where(Repository.id == repo["id"])
        )
    assert stored
    assert token not in stored
    assert "bot" not in stored
    # A token goes only where it travels encrypted.
    plain = await client.post(
        f"{API}/repos",
        json={"clone_url": "http://93.184.215.14/acme/api.git", "token": token},
        headers=tenants.owner.headers,
    )
    assert plain.status_code == 400
    assert plain.json()["details"]["field"] == "token"


async def test_settings_are_replaced_whole_and_checked(
    client: httpx.AsyncClient, tenants: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, tenants.owner, git_repo.url)
    url = f"{API}/repos/{repo['id']}/settings"
    chosen = {
        "schedule": "daily",
        "target_branch": "main",
        "exclude_packages": ["@internal/legacy"],
        "exclude_paths": ["vendor/**"],
        "detectors": {"secrets": False},
        "min_release_age": 3,
        "groups": [{"name": "types", "patterns": ["@types/*"], "update_types": []}],
        "auto_update": True,
        "test_command": "make check",
        "pull_requests": {"provider": "local", "repository": None, "api_url": None},
    }
    response = await client.put(url, json=chosen, headers=tenants.member.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": repo["id"], "settings": chosen}
    shown = (await client.get(f"{API}/repos/{repo['id']}", headers=tenants.owner.headers)).json()
    assert shown["settings"] == chosen

    for bad, field in [
        ({"schedule": "hourly"}, "schedule"),
        ({"detectors": {"astrology": True}}, "detectors"),
        ({"exclude_paths": [""]}, "exclude_paths"),
        ({"target_branch": "--upload-pack=touch"}, "target_branch"),
        ({"target_branch": "a..b"}, "target_branch"),
        ({"surprise": 1}, "surprise"),
        ({"min_release_age": -1}, "min_release_age"),
        ({"groups": [{"name": "", "patterns": []}]}, "groups"),
        ({"pull_requests": {"provider": "svn"}}, "pull_requests"),
    ]:
        refused = await client.put(url, json=bad, headers=tenants.owner.headers)
        assert refused.status_code == 400, refused.text
        assert field in refused.text
    unchanged = (
        await client.get(f"{API}/repos/{repo['id']}", headers=tenants.owner.headers)
    ).json()
    assert unchanged["settings"] == chosen
    response = await client.put(url, json={"schedule": "weekly"}, headers=tenants.member.headers)
    replaced = response.json()["settings"]
    assert replaced["groups"] == []
    assert replaced["auto_update"] is False
    viewer = await client.put(url, json=chosen, headers=tenants.viewer.headers)
    assert viewer.status_code == 403


async def test_deleting_a_repository_removes_its_mirror(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    git_repo: GitRepo,
    settings: Settings,
) -> None:
    repo = await register(client, tenants.owner, git_repo.url)
    await run_jobs(database)
    mirror = settings.data_dir / "mirrors" / tenants.owner.organization_id / f"{repo['id']}.git"
    assert mirror.is_dir()
    assert (
        await client.delete(f"{API}/repos/{repo['id']}", headers=tenants.member.headers)
    ).status_code == 403
    response = await client.delete(f"{API}/repos/{repo['id']}", headers=tenants.admin.headers)
    assert response.status_code == 204
    await run_jobs(database)
    assert not mirror.exists()
    gone = await client.get(f"{API}/repos/{repo['id']}", headers=tenants.owner.headers)
    assert gone.status_code == 404


async def test_another_organizations_repository_is_not_found_anywhere(
    client: httpx.AsyncClient, tenants: Tenants, git_repo: GitRepo
) -> None:
    repo = await register(client, tenants.owner, git_repo.url)
    headers = tenants.other_owner.headers
    for method, path, body in [
        ("GET", f"/repos/{repo['id']}", None),
        ("GET", f"/repos/{repo['id']}/events", None),
        ("PUT", f"/repos/{repo['id']}/settings", {"schedule": "daily"}),
        ("DELETE", f"/repos/{repo['id']}", None),
    ]:
        response = await client.request(method, API + path, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.text)
    theirs = await client.get(f"{API}/repos", headers=headers)
    assert theirs.json()["total"] == 0


async def test_a_repository_name_is_unique_and_a_project_must_exist(
    client: httpx.AsyncClient, tenants: Tenants, git_repo: GitRepo, tmp_path: Path
) -> None:
    await register(client, tenants.owner, git_repo.url, name="acme/api")
    again = await client.post(
        f"{API}/repos",
        json={"clone_url": git_repo.url, "name": "acme/api"},
        headers=tenants.owner.headers,
    )
    assert again.status_code == 409
    nowhere = await client.post(
        f"{API}/repos",
        json={"clone_url": git_repo.url, "name": "other", "project_id": "prj_nope"},
        headers=tenants.owner.headers,
    )
    assert nowhere.status_code == 400
    assert nowhere.json()["details"]["field"] == "project_id"


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with ``answer`` (a redirect to ``location``) and records it."""

    seen: ClassVar[list[str]]
    answer: ClassVar[int] = 404
    location: ClassVar[str] = ""

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(self.answer)
        if self.location:
            self.send_header("Location", self.location + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


async def test_a_fetch_follows_no_redirect(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, settings: Settings
) -> None:
    """A clone URL that answers with a redirect (say, to a cloud metadata address) fails its
    fetch; the redirect's target never hears from git."""
    target_seen: list[str] = []
    origin_seen: list[str] = []
    target_handler = type("Target", (_Recorder,), {"seen": target_seen})
    target, target_url = _serve(target_handler)
    origin_handler = type(
        "Origin", (_Recorder,), {"seen": origin_seen, "answer": 302, "location": target_url}
    )
    origin, origin_url = _serve(origin_handler)
    settings.outbound.allowed_hosts = ["127.0.0.1"]
    try:
        repo = await register(client, tenants.owner, f"{origin_url}/acme/app.git")
        await run_jobs(database)
    finally:
        origin.shutdown()
        target.shutdown()
    detail = (await client.get(f"{API}/repos/{repo['id']}", headers=tenants.owner.headers)).json()
    assert detail["status"] == "error"
    assert origin_seen, "git asked the clone URL"
    assert target_seen == [], "and went nowhere else"
