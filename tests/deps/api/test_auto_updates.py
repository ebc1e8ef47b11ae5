"""Scans that start update jobs themselves (auto_update), grouped updates in one job and
one pull request, and the organization's history feeding the next repository's confidence."""

from __future__ import annotations

import httpx

from forgeyard.kernel.db import Database
from tests.deps.api.flows import registered, scan
from tests.identity.conftest import Tenants
from tests.repos.conftest import API, GitRepo, register, run_jobs


async def test_a_scan_starts_one_job_per_group_and_not_twice(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, deps_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, deps_repo)
    chosen = {"auto_update": True, "groups": [{"name": "everything", "patterns": []}]}
    response = await client.put(
        f"{API}/repos/{repo_id}/settings", json=chosen, headers=owner.headers
    )
    assert response.status_code == 200, response.text

    await scan(client, database, owner, repo_id)
    await scan(client, database, owner, repo_id)  # an open pull request: nothing new starts

    jobs = await client.get(f"{API}/jobs?repo_id={repo_id}&kind=deps.update", headers=owner.headers)
    assert jobs.json()["total"] == 1
    job = jobs.json()["data"][0]
    assert job["status"] == "succeeded", job["update"]
    assert job["dependency"] == "everything"
    assert sorted(c["name"] for c in job["update"]["changes"]) == ["fy-alpha", "fy-left"]
    pull = (
        await client.get(
            f"{API}/pull-requests/{job['update']['pull_request_id']}", headers=owner.headers
        )
    ).json()
    assert pull["title"] == "Update everything (2 updates)"
    assert pull["head_branch"].startswith("forgeyard/group/everything-")
    assert sorted(f["path"] for f in pull["diff_summary"]["files"]) == [
        "package.json",
        "requirements.txt",
    ]


async def test_how_an_update_fared_elsewhere_counts_in_the_next_repository(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, deps_repo: GitRepo
) -> None:
    owner = tenants.owner
    first = await registered(client, database, owner, deps_repo)
    second = (await register(client, owner, deps_repo.url, name="second"))["id"]
    await run_jobs(database)
    await scan(client, database, owner, second)
    factors = {}
    for repo_id in (first, second):
        started = await client.post(
            f"{API}/jobs",
            json={"repo_id": repo_id, "dependency": "fy-alpha", "target_version": "1.1.0"},
            headers=owner.headers,
        )
        assert started.status_code == 201, started.text
        await run_jobs(database)
        job = await client.get(f"{API}/jobs/{started.json()['id']}", headers=owner.headers)
        assert job.json()["status"] == "succeeded"
        by_name = {f["name"]: f for f in job.json()["update"]["confidence"]["factors"]}
        factors[repo_id] = by_name["organization_history"]

    assert factors[first]["score"] is None
    assert factors[second]["score"] == round(2 / 3, 3)
    assert factors[second]["detail"].startswith("1 of 1 other repositories")
