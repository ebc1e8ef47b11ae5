"""An update job end to end, on a real repository and the local registries: the branch's
diff, the tests that ran, the pull request and its merge; and a failing update that opens
nothing and says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from forgeyard.deps import usage
from forgeyard.kernel.db import Database
from tests.deps.api.flows import registered
from tests.identity.conftest import Account, Tenants
from tests.repos.conftest import API, GitRepo, run_jobs

REQUIREMENTS = "# runtime\nfy-gamma==1.0.0  # arithmetic\nfy-alpha==1.0.0\n"
TEST_MATH = "from fy_gamma import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


@pytest.fixture
def app_repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "app")
    repo.path.mkdir()
    repo.git("init", "--quiet", "--initial-branch", "main")
    repo.commit(
        {
            "requirements.txt": REQUIREMENTS,
            "requirements-dev.txt": "pytest\n",
            "tests/test_math.py": TEST_MATH,
        },
        "first",
    )
    # origin takes pushes to main and to new branches, as a forge does.
    repo.git("config", "receive.denyCurrentBranch", "updateInstead")
    return repo


async def start_job(
    client: httpx.AsyncClient, account: Account, repo_id: str, dependency: str, version: str
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/jobs",
        json={"repo_id": repo_id, "dependency": dependency, "target_version": version},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["status"] == "queued"
    return created


def branch_diff(repo: GitRepo, branch: str) -> list[str]:
    diff = repo.git("diff", f"main...{branch}", "--unified=0", "--", "requirements.txt")
    return [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]


async def test_an_update_job_opens_a_tested_pull_request_that_merges(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, app_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, app_repo)
    created = await start_job(client, owner, repo_id, "fy-alpha", "1.1.0")
    await run_jobs(database)

    job = (await client.get(f"{API}/jobs/{created['id']}", headers=owner.headers)).json()
    assert job["status"] == "succeeded", job
    assert [s["name"] for s in job["stages"]] == [
        "checkout",
        "update",
        "install",
        "test",
        "analyze",
        "open_pull_request",
    ]
    assert (job["dependency"], job["from_version"], job["to_version"]) == (
        "fy-alpha",
        "1.0.0",
        "1.1.0",
    )
    assert job["update"]["test_summary"]["summary"] == "1 passed"
    pr_id = job["update"]["pull_request_id"]
    pull = (await client.get(f"{API}/pull-requests/{pr_id}", headers=owner.headers)).json()
    assert pull["status"] == "open"
    assert pull["confidence"] == job["confidence"]
    assert pull["confidence"] > 0
    factors = {f["name"]: f for f in pull["confidence_factors"]["factors"]}
    assert factors["tests"]["score"] == 1.0
    assert factors["semver"]["detail"] == "a minor update"
    assert pull["diff_summary"]["files_changed"] == 1
    # The branch is on origin; its diff is the one line, comments and order kept.
    assert branch_diff(app_repo, pull["head_branch"]) == ["-fy-alpha==1.0.0", "+fy-alpha==1.1.0"]

    asked = await client.post(f"{API}/pull-requests/{pr_id}/merge", headers=owner.headers)
    assert asked.status_code == 202, asked.text
    assert asked.json()["pull_request"]["status"] == "merging"
    twice = await client.post(f"{API}/pull-requests/{pr_id}/merge", headers=owner.headers)
    assert twice.status_code == 409  # one merge at a time
    await run_jobs(database)

    merged = (await client.get(f"{API}/pull-requests/{pr_id}", headers=owner.headers)).json()
    assert merged["status"] == "merged"
    assert app_repo.git("rev-parse", "main") == merged["merge_commit"]
    assert app_repo.git("show", "main:requirements.txt") == (
        "# runtime\nfy-gamma==1.0.0  # arithmetic\nfy-alpha==1.1.0"
    )
    again = await client.post(f"{API}/pull-requests/{pr_id}/merge", headers=owner.headers)
    assert again.status_code == 409
    async with database.transaction() as session:
        counted = await usage.usage(session, owner.organization_id, usage.current_period())
    assert counted == {"jobs_completed": 1, "jobs_failed": 0, "prs_created": 1, "prs_merged": 1}


async def test_an_update_that_breaks_the_tests_opens_nothing_and_names_the_test(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, app_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, app_repo)
    created = await start_job(client, owner, repo_id, "fy-gamma", "2.0.0")
    await run_jobs(database)

    job = (await client.get(f"{API}/jobs/{created['id']}", headers=owner.headers)).json()
    assert job["status"] == "failed"
    failure = job["update"]["failure"]
    assert failure["stage"] == "test"
    assert failure["failing_tests"] == ["tests/test_math.py::test_add"]
    assert "test_add" in failure["suspected_cause"]
    assert "pytest" in failure["command"]
    assert "assert" in failure["output_tail"]
    assert job["update"]["pull_request_id"] is None
    pulls = await client.get(f"{API}/pull-requests?repo_id={repo_id}", headers=owner.headers)
    assert pulls.json()["total"] == 0
    branches = app_repo.git("branch", "--list", "forgeyard/*")
    assert branches == ""


async def test_bad_update_jobs_are_refused(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, app_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, app_repo)
    url = f"{API}/jobs"
    cases = [
        ({"repo_id": repo_id, "dependency": "left-pad", "target_version": "1.0"}, "dependency"),
        ({"repo_id": repo_id, "dependency": "fy-alpha", "target_version": "one"}, "target_version"),
        ({"repo_id": repo_id, "dependency": "fy-alpha"}, "target_version"),
    ]
    for body, field in cases:
        refused = await client.post(url, json=body, headers=owner.headers)
        assert refused.status_code == 400, refused.text
        assert field in refused.text
    elsewhere = await client.post(
        url,
        json={"repo_id": repo_id, "dependency": "fy-alpha", "target_version": "1.1.0"},
        headers=tenants.other_owner.headers,
    )
    assert elsewhere.status_code == 404
    first = await start_job(client, owner, repo_id, "fy-alpha", "1.1.0")
    twice = await client.post(
        url,
        json={"repo_id": repo_id, "dependency": "fy-alpha", "target_version": "1.1.0"},
        headers=owner.headers,
    )
    assert twice.status_code == 409
    assert twice.json()["details"]["job_id"] == first["id"]
    listed = await client.get(
        f"{API}/jobs?repo_id={repo_id}&kind=deps.update", headers=owner.headers
    )
    assert [j["id"] for j in listed.json()["data"]] == [first["id"]]


async def test_a_merge_that_conflicts_leaves_the_pull_request_open_with_the_reason(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, app_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, app_repo)
    await start_job(client, owner, repo_id, "fy-alpha", "1.1.0")
    await run_jobs(database)
    pulls = await client.get(f"{API}/pull-requests?repo_id={repo_id}", headers=owner.headers)
    pr_id = pulls.json()["data"][0]["id"]
    # Meanwhile someone changes the same line on main.
    app_repo.commit({"requirements.txt": REQUIREMENTS.replace("1.0.0\n", "2.0.0\n")}, "bump")

    asked = await client.post(f"{API}/pull-requests/{pr_id}/merge", headers=owner.headers)
    assert asked.status_code == 202
    await run_jobs(database)

    pull = (await client.get(f"{API}/pull-requests/{pr_id}", headers=owner.headers)).json()
    assert pull["status"] == "open"
    assert "no longer merges cleanly" in pull["error"]
    assert "fy-alpha==2.0.0" in app_repo.git("show", "main:requirements.txt")
    closed = await client.post(f"{API}/pull-requests/{pr_id}/close", headers=owner.headers)
    assert closed.status_code == 202
    await run_jobs(database)
    pull = (await client.get(f"{API}/pull-requests/{pr_id}", headers=owner.headers)).json()
    assert pull["status"] == "closed"
    merge_closed = await client.post(f"{API}/pull-requests/{pr_id}/merge", headers=owner.headers)
    assert merge_closed.status_code == 409


async def test_a_forge_api_must_be_on_the_repositorys_own_host(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    """The repository's token goes to the forge API: never to a host a member picks."""
    owner = tenants.owner
    created = await client.post(
        f"{API}/repos",
        json={"clone_url": "https://93.184.215.14/acme/api.git", "token": "ghp_secret"},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    url = f"{API}/repos/{created.json()['id']}/settings"
    for api_url in ("https://collector.example/", "http://93.184.215.14/api/v3"):
        chosen = {"pull_requests": {"provider": "github", "api_url": api_url}}
        refused = await client.put(url, json=chosen, headers=owner.headers)
        assert refused.status_code == 400, refused.text
        assert refused.json()["details"]["field"] == "pull_requests.api_url"
    allowed = {"pull_requests": {"provider": "github", "api_url": "https://93.184.215.14/api/v3"}}
    assert (await client.put(url, json=allowed, headers=owner.headers)).status_code == 200


async def test_a_gitlab_repository_gets_its_hosts_api_by_default(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = tenants.owner
    created = await client.post(
        f"{API}/repos",
        json={"clone_url": "https://93.184.215.14/group/api.git", "token": "glpat-secret"},
        headers=owner.headers,
    )
    url = f"{API}/repos/{created.json()['id']}/settings"
    chosen = {"pull_requests": {"provider": "gitlab"}}
    assert (await client.put(url, json=chosen, headers=owner.headers)).status_code == 200
    elsewhere = {"pull_requests": {"provider": "gitlab", "api_url": "https://gitlab.com/api/v4"}}
    refused = await client.put(url, json=elsewhere, headers=owner.headers)
    assert refused.status_code == 400
    assert "93.184.215.14" in refused.json()["error"]
