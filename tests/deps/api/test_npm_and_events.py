"""An npm update end to end (package.json and its lock, refreshed against the registry),
and the update's events reaching a subscribed webhook, signed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from forgeyard.kernel.db import Database
from forgeyard.settings import Settings
from forgeyard.webhooks import tasks as webhook_tasks
from tests.deps.api.flows import registered
from tests.identity.conftest import Tenants
from tests.registries.harness import Verdaccio
from tests.repos.conftest import API, GitRepo, run_jobs
from tests.webhooks.conftest import Receiver, receiver  # noqa: F401  (fixture)

PACKAGE_JSON = {
    "name": "web",
    "version": "1.0.0",
    "private": True,
    "dependencies": {"fy-left": "1.2.0"},
}


@pytest.fixture
def npm_repo(tmp_path: Path, npm_registry: Verdaccio) -> GitRepo:
    """package.json and the lock npm itself wrote against the local registry."""
    repo = GitRepo(tmp_path / "web")
    repo.path.mkdir()
    repo.git("init", "--quiet", "--initial-branch", "main")
    repo.write({"package.json": json.dumps(PACKAGE_JSON, indent=2) + "\n"})
    command = ["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit"]
    command += ["--no-fund", "--registry", f"{npm_registry.url}/"]
    subprocess.run(
        [*command, "--userconfig", str(npm_registry.npmrc)],
        cwd=repo.path,
        check=True,
        capture_output=True,
    )
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "-m", "first")
    repo.git("config", "receive.denyCurrentBranch", "updateInstead")
    return repo


def locked_version(repo: GitRepo, ref: str, name: str) -> str:
    lock = json.loads(repo.git("show", f"{ref}:package-lock.json"))
    return str(lock["packages"][f"node_modules/{name}"]["version"])


async def test_an_npm_update_changes_the_manifest_line_and_refreshes_the_lock(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, npm_repo: GitRepo
) -> None:
    owner = tenants.owner
    repo_id = await registered(client, database, owner, npm_repo)
    started = await client.post(
        f"{API}/jobs",
        json={"repo_id": repo_id, "dependency": "fy-left", "target_version": "2.0.0"},
        headers=owner.headers,
    )
    assert started.status_code == 201, started.text
    await run_jobs(database)

    job = (await client.get(f"{API}/jobs/{started.json()['id']}", headers=owner.headers)).json()
    assert job["status"] == "succeeded", job["update"]
    # No test script: the job goes on, and the confidence says the tests did not run.
    assert job["update"]["test_summary"]["ran"] is False
    factors = {f["name"]: f for f in job["update"]["confidence"]["factors"]}
    assert factors["tests"]["score"] is None
    pull = (
        await client.get(
            f"{API}/pull-requests/{job['update']['pull_request_id']}", headers=owner.headers
        )
    ).json()
    branch = pull["head_branch"]
    diff = npm_repo.git("diff", f"main...{branch}", "--unified=0", "--", "package.json")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert changed == ['-    "fy-left": "1.2.0"', '+    "fy-left": "2.0.0"']
    assert locked_version(npm_repo, "main", "fy-left") == "1.2.0"
    assert locked_version(npm_repo, branch, "fy-left") == "2.0.0"
    assert sorted(f["path"] for f in pull["diff_summary"]["files"]) == [
        "package-lock.json",
        "package.json",
    ]


async def test_update_events_reach_the_subscribed_webhook(
    client: httpx.AsyncClient,
    database: Database,
    tenants: Tenants,
    npm_repo: GitRepo,
    settings: Settings,
    receiver: Receiver,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhook_tasks, "get_settings", lambda: settings)
    owner = tenants.owner
    hook = await client.post(
        f"{API}/webhooks",
        json={
            "url": f"{receiver.url}/hook",
            "events": ["job.completed", "job.failed", "pr.created", "pr.merged"],
        },
        headers=owner.headers,
    )
    assert hook.status_code == 201, hook.text
    repo_id = await registered(client, database, owner, npm_repo)
    for version in ("2.0.0", "9.9.9"):  # the second is on no registry: its install fails
        started = await client.post(
            f"{API}/jobs",
            json={"repo_id": repo_id, "dependency": "fy-left", "target_version": version},
            headers=owner.headers,
        )
        assert started.status_code == 201, started.text
    await run_jobs(database)
    pulls = await client.get(f"{API}/pull-requests?repo_id={repo_id}", headers=owner.headers)
    pull = pulls.json()["data"][0]
    merged = await client.post(f"{API}/pull-requests/{pull['id']}/merge", headers=owner.headers)
    assert merged.status_code == 202, merged.text
    await run_jobs(database)

    messages = [r.verify(hook.json()["secret"]) for r in receiver.at("/hook")]
    by_type = {message["type"]: message["data"] for message in messages}
    assert set(by_type) == {"job.completed", "job.failed", "pr.created", "pr.merged"}
    assert by_type["pr.created"]["pull_request_id"] == pull["id"]
    assert by_type["pr.merged"]["status"] == "merged"
    assert by_type["job.completed"]["to_version"] == "2.0.0"
    assert by_type["job.failed"]["failure"]["stage"] == "update"
    assert "9.9.9" in by_type["job.failed"]["failure"]["suspected_cause"]
