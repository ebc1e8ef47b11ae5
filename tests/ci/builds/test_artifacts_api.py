"""Artifacts a runner uploads: listed with size and SHA-256, downloaded once through a link,
refused past the size limit or outside the workspace, and gone from another organization."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from forgeyard.kernel.db import Database
from forgeyard.settings import Settings
from tests.ci.builds.flows import (
    API,
    RunnerSession,
    claim,
    project_with_repo,
    register_runner,
    start_build,
)
from tests.identity.conftest import Tenants
from tests.repos.conftest import GitRepo

CONTENT = b"wheel bytes\n" * 1000


async def _uploaded(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, repo: GitRepo
) -> tuple[dict[str, Any], httpx.Response, RunnerSession]:
    project = await project_with_repo(client, database, tenants.owner, repo)
    runner = await register_runner(client, tenants.admin)
    build = await start_build(client, tenants.member, project)
    await claim(client, runner)
    uploaded = await client.put(
        runner.url(f"/builds/{build['id']}/artifacts?path=dist/app.whl"),
        content=CONTENT,
        headers=runner.headers,
    )
    return build, uploaded, runner


async def test_an_uploaded_artifact_is_listed_and_downloads_once(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    build, uploaded, _ = await _uploaded(client, database, tenants, ci_repo)

    assert uploaded.status_code == 201, uploaded.text
    listed = await client.get(
        f"{API}/builds/{build['id']}/artifacts", headers=tenants.viewer.headers
    )
    [artifact] = listed.json()["data"]
    assert artifact["path"] == "dist/app.whl"
    assert artifact["size"] == len(CONTENT)
    assert artifact["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    link = await client.post(
        f"{API}/artifacts/{artifact['id']}/download-link", headers=tenants.viewer.headers
    )
    assert link.status_code == 201
    first = await client.get(link.json()["url"])
    assert first.status_code == 200
    assert first.content == CONTENT
    assert first.headers["x-checksum-sha256"] == artifact["sha256"]
    assert 'filename="app.whl"' in first.headers["content-disposition"]
    again = await client.get(link.json()["url"])
    assert again.status_code == 410
    assert again.json()["code"] == "token_consumed"
    fresh = await client.post(
        f"{API}/artifacts/{artifact['id']}/download-link", headers=tenants.viewer.headers
    )
    assert (await client.get(fresh.json()["url"])).status_code == 200


async def test_the_same_path_twice_is_refused_and_the_first_kept(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    build, _, runner = await _uploaded(client, database, tenants, ci_repo)

    again = await client.put(
        runner.url(f"/builds/{build['id']}/artifacts?path=dist/app.whl"),
        content=b"something else",
        headers=runner.headers,
    )

    assert again.status_code == 409
    assert again.json()["details"]["field"] == "path"
    listed = await client.get(
        f"{API}/builds/{build['id']}/artifacts", headers=tenants.viewer.headers
    )
    [kept] = listed.json()["data"]
    assert kept["sha256"] == hashlib.sha256(CONTENT).hexdigest()


async def test_an_artifact_past_the_limit_is_refused_and_nothing_is_listed(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    ci_repo: GitRepo,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings.ci, "max_artifact_bytes", 1000)

    build, uploaded, _ = await _uploaded(client, database, tenants, ci_repo)

    assert uploaded.status_code == 413, uploaded.text
    assert uploaded.json()["details"]["limit"] == 1000
    listed = await client.get(
        f"{API}/builds/{build['id']}/artifacts", headers=tenants.viewer.headers
    )
    assert listed.json()["total"] == 0


async def test_another_organization_cannot_see_or_link_an_artifact(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    build, _, _ = await _uploaded(client, database, tenants, ci_repo)
    listed = await client.get(
        f"{API}/builds/{build['id']}/artifacts", headers=tenants.viewer.headers
    )
    artifact_id = listed.json()["data"][0]["id"]

    seen = await client.get(
        f"{API}/builds/{build['id']}/artifacts", headers=tenants.other_owner.headers
    )
    link = await client.post(
        f"{API}/artifacts/{artifact_id}/download-link", headers=tenants.other_owner.headers
    )

    assert seen.status_code == 404
    assert link.status_code == 404
