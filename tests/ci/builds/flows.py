"""Steps the build tests share: a project with a fetched repository, a registered runner,
and the runner protocol spoken over the API, as a runner speaks it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from forgeyard.kernel.db import Database
from tests.identity.conftest import Account
from tests.repos.conftest import GitRepo, register, run_jobs

API = "/api/v1"
PIPELINE = """\
triggers:
  push: {branches: ["main"]}
  pull_request: {branches: ["main"]}
  manual: true
steps:
  - name: hello
    commands: ["echo hello", "echo world"]
  - name: nap
    commands: ["sleep 0.2"]
  - name: broken
    commands: ["echo about to fail", "exit 3"]
  - name: report
    commands: ["mkdir -p out", "echo report > out/report.txt"]
    when: {status: failure}
artifacts: ["out/*.txt"]
"""


@dataclass
class Project:
    id: str
    repo_id: str


@dataclass
class RunnerSession:
    id: str
    token: str
    public_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, tail: str = "") -> str:
        return f"{API}/runners/{self.id}{tail}"


async def project_with_repo(
    client: httpx.AsyncClient, database: Database, account: Account, repo: GitRepo
) -> Project:
    project = await client.post(f"{API}/projects", json={"name": "Web"}, headers=account.headers)
    assert project.status_code == 201, project.text
    created = await register(
        client, account, repo.url, name="demo", project_id=project.json()["id"]
    )
    await run_jobs(database)
    return Project(id=project.json()["id"], repo_id=created["id"])


async def registration_token(
    client: httpx.AsyncClient, admin: Account, labels: list[str] | None = None
) -> str:
    response = await client.post(
        f"{API}/runners/registration-tokens",
        json={"description": "test runners", "labels": labels or []},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def register_runner(
    client: httpx.AsyncClient, admin: Account, name: str = "r1", labels: list[str] | None = None
) -> RunnerSession:
    token = await registration_token(client, admin)
    response = await client.post(
        f"{API}/runners/register",
        json={"registration_token": token, "name": name, "labels": labels or ["linux"]},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return RunnerSession(body["id"], body["token"], body["pipeline_public_key"])


async def start_build(
    client: httpx.AsyncClient, account: Account, project: Project, ref: str = "main", **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/projects/{project.id}/builds",
        json={"repository_id": project.repo_id, "ref": ref, **extra},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    build: dict[str, Any] = response.json()
    return build


async def claim(
    client: httpx.AsyncClient, runner: RunnerSession, wait: float = 0
) -> dict[str, Any] | None:
    response = await client.post(
        runner.url("/claim"), json={"wait_seconds": wait}, headers=runner.headers
    )
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    claimed: dict[str, Any] = response.json()
    return claimed


async def report(
    client: httpx.AsyncClient, runner: RunnerSession, build_id: str, tail: str, body: Any
) -> httpx.Response:
    return await client.post(
        runner.url(f"/builds/{build_id}{tail}"), json=body, headers=runner.headers
    )


async def build_of(client: httpx.AsyncClient, account: Account, build_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/builds/{build_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    build: dict[str, Any] = response.json()
    return build
