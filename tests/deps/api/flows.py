"""Steps the dependency API tests share: register a repository, scan it, read updates."""

from __future__ import annotations

from typing import Any

import httpx

from forgeyard.kernel.db import Database
from tests.identity.conftest import Account
from tests.repos.conftest import API, GitRepo, register, run_jobs


async def scan(
    client: httpx.AsyncClient, database: Database, account: Account, repo_id: str
) -> None:
    response = await client.post(
        f"{API}/updates/scan", json={"repo_id": repo_id}, headers=account.headers
    )
    assert response.status_code == 202, response.text
    await run_jobs(database)


async def updates_of(
    client: httpx.AsyncClient, account: Account, repo_id: str
) -> dict[str, dict[str, Any]]:
    response = await client.get(f"{API}/updates?repo_id={repo_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    return {update["dependency"]: update for update in response.json()["data"]}


async def registered(
    client: httpx.AsyncClient, database: Database, account: Account, repo: GitRepo
) -> str:
    created = await register(client, account, repo.url, name="demo")
    await run_jobs(database)
    await scan(client, database, account, created["id"])
    return str(created["id"])
