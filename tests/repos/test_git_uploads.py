"""Git uploads: a real git client pushes to Forgeyard's own smart-HTTP remote, served by a
real server on loopback; the push creates or updates the repository and starts its analysis."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import update

from forgeyard.api import create_app
from forgeyard.kernel.db import Database, utcnow
from forgeyard.models.repo import GitUpload
from forgeyard.settings import Settings
from tests.identity.conftest import Tenants
from tests.processes import free_port
from tests.repos.conftest import API, GIT_ENV, GitRepo, register, run_jobs


@pytest.fixture
def live_settings(settings: Settings) -> Iterator[Settings]:
    """The test's settings, with public_url pointing at the server started below."""
    settings.public_url = f"http://127.0.0.1:{free_port()}"
    return settings


@pytest.fixture
def live_server(live_settings: Settings) -> Iterator[str]:
    """Forgeyard itself on loopback, on its own database connections and event loop."""
    host, port = live_settings.public_url.removeprefix("http://").split(":")
    config = uvicorn.Config(
        create_app(live_settings),
        host=host,
        port=int(port),
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = time.monotonic()
    while not server.started:
        assert time.monotonic() - started < 20, "the server did not start"
        time.sleep(0.02)
    yield live_settings.public_url
    server.should_exit = True
    thread.join(10)


async def git_push(repo: GitRepo, url: str, *refs: str) -> tuple[int, str]:
    """``git push`` by the real client, with nothing of this machine's git config."""
    env = {**GIT_ENV, "PATH": os.environ["PATH"], "HOME": str(repo.path), "LC_ALL": "C"}
    process = await asyncio.create_subprocess_exec(
        "git",
        "push",
        url,
        *(refs or ("main",)),
        cwd=repo.path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, err.decode(errors="replace")


async def _upload(client: httpx.AsyncClient, tenants: Tenants, **body: str) -> dict:
    response = await client.post(f"{API}/git-uploads", json=body, headers=tenants.member.headers)
    assert response.status_code == 201, response.text
    created: dict = response.json()
    return created


async def test_a_push_creates_the_repository_and_its_analysis(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    git_repo: GitRepo,
    live_server: str,
) -> None:
    upload = await _upload(client, tenants, name="pushed/app")
    assert upload["push_url"] == f"{live_server}/api/v1/git-uploads/{upload['id']}/repo.git"
    assert upload["repository_id"] is None
    assert upload["token"] in upload["authenticated_url"]

    code, said = await git_push(git_repo, upload["authenticated_url"])
    assert code == 0, said
    shown = (
        await client.get(f"{API}/git-uploads/{upload['id']}", headers=tenants.viewer.headers)
    ).json()
    assert shown["pushes"] == 1
    assert "token" not in shown
    repo_id = shown["repository_id"]
    repo = (await client.get(f"{API}/repos/{repo_id}", headers=tenants.viewer.headers)).json()
    assert (repo["name"], repo["source"], repo["status"]) == ("pushed/app", "push", "active")
    assert repo["head_commit"] == git_repo.git("rev-parse", "HEAD")
    assert repo["default_branch"] == "main"

    await run_jobs(database)  # repo.pushed -> an analysis of what arrived
    scans = (
        await client.get(f"{API}/repos/{repo_id}/scans", headers=tenants.viewer.headers)
    ).json()
    (scan,) = scans["data"]
    assert (scan["trigger"], scan["status"]) == ("push", "completed")
    assert scan["commit_sha"] == repo["head_commit"]

    # A second push updates the same repository and is analysed in turn.
    head = git_repo.commit({"app/extra.py": "VALUE = 1\n"})
    code, said = await git_push(git_repo, upload["authenticated_url"])
    assert code == 0, said
    await run_jobs(database)
    scans = (
        await client.get(f"{API}/repos/{repo_id}/scans", headers=tenants.viewer.headers)
    ).json()
    assert [s["commit_sha"] for s in scans["data"]] == [head, repo["head_commit"]]
    assert scans["data"][0]["files_analysed"] == 1
    events = (
        await client.get(f"{API}/repos/{repo_id}/events", headers=tenants.viewer.headers)
    ).json()
    kinds = [e["kind"] for e in reversed(events["data"])]
    assert kinds[:2] == ["registered", "pushed"]
    assert kinds.count("pushed") == 2
    assert kinds.count("analysed") == 2


async def test_a_wrong_or_expired_token_is_refused_by_the_git_client(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    git_repo: GitRepo,
    live_server: str,
) -> None:
    upload = await _upload(client, tenants, name="guarded")
    wrong = upload["authenticated_url"].replace(upload["token"], "not-the-token")
    code, said = await git_push(git_repo, wrong)
    assert code != 0
    assert "Authentication failed" in said or "401" in said, said

    async with database.transaction() as session:
        await session.execute(
            update(GitUpload)
            .where(GitUpload.id == upload["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    code, said = await git_push(git_repo, upload["authenticated_url"])
    assert code != 0
    assert "Authentication failed" in said or "401" in said, said
    shown = (
        await client.get(f"{API}/git-uploads/{upload['id']}", headers=tenants.viewer.headers)
    ).json()
    assert (shown["pushes"], shown["repository_id"]) == (0, None)
    assert (await client.get(f"{API}/repos", headers=tenants.viewer.headers)).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "repository_id"),
        ({"name": "a", "repository_id": "repo_x"}, "repository_id"),
        ({"name": "../x"}, "name"),
        ({"name": "ok", "token": "mine"}, "token"),
    ],
)
async def test_bad_uploads_are_refused(
    client: httpx.AsyncClient, tenants: Tenants, body: dict, field: str
) -> None:
    response = await client.post(f"{API}/git-uploads", json=body, headers=tenants.owner.headers)
    assert response.status_code == 400, response.text
    assert field in response.text


async def test_a_cloned_repository_takes_no_pushes_and_another_organization_sees_nothing(
    client: httpx.AsyncClient, tenants: Tenants, git_repo: GitRepo, tmp_path: Path
) -> None:
    cloned = await register(client, tenants.owner, git_repo.url)
    refused = await client.post(
        f"{API}/git-uploads", json={"repository_id": cloned["id"]}, headers=tenants.owner.headers
    )
    assert refused.status_code == 400
    assert "fetched from its clone URL" in refused.json()["error"]
    upload = await _upload(client, tenants, name="mine")
    theirs = await client.get(
        f"{API}/git-uploads/{upload['id']}", headers=tenants.other_owner.headers
    )
    assert theirs.status_code == 404
    into_ours = await client.post(
        f"{API}/git-uploads",
        json={"repository_id": cloned["id"]},
        headers=tenants.other_owner.headers,
    )
    assert into_ours.status_code == 404
