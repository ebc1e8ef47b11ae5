"""Forgeyard's own CI builds the pull requests Forgeyard opens, and the build's result
reaches the pull request: its test summary, and its confidence worked out again."""

from __future__ import annotations

import httpx

from forgeyard.deps import pulls
from forgeyard.jobs import emit
from forgeyard.kernel.db import Database, utcnow
from forgeyard.models.deps import PullRequest, UpdateJob
from forgeyard.models.job import Job, JobStatus
from tests.ci.builds.flows import API, claim, project_with_repo, register_runner, report
from tests.identity.conftest import Tenants
from tests.repos.conftest import GitRepo, run_jobs


async def _opened_pull_request(
    database: Database, tenants: Tenants, repo_id: str, head: str
) -> str:
    """A pull request as an update job leaves it: tested, scored, pushed at ``head``."""
    organization_id = tenants.owner.organization_id
    async with database.transaction() as session:
        job = Job(
            kind="deps.update",
            organization_id=organization_id,
            repository_id=repo_id,
            status=JobStatus.SUCCEEDED,
            finished_at=utcnow(),
        )
        session.add(job)
        await session.flush()
        pull = PullRequest(
            organization_id=organization_id,
            repository_id=repo_id,
            job_id=job.id,
            provider="local",
            title="Update fy-alpha to 1.0.1",
            base_branch="main",
            head_branch="main",
            head_commit=head,
            test_summary={"ran": True, "passed": True, "summary": "3 passed", "reason": None},
            confidence=0.9,
        )
        session.add(pull)
        await session.flush()
        session.add(
            UpdateJob(
                job_id=job.id,
                organization_id=organization_id,
                repository_id=repo_id,
                dependency="fy-alpha",
                changes=[
                    {
                        "dependency_id": "dep_01M8GCQYS8QJ01J04FSP2TSJFJ",
                        "ecosystem": "pypi",
                        "name": "fy-alpha",
                        "from_version": "1.0.0",
                        "to_version": "1.0.1",
                    }
                ],
                from_version="1.0.0",
                to_version="1.0.1",
                test_summary=pull.test_summary,
                new_findings=0,
                pull_request_id=pull.id,
            )
        )
        await emit(session, "pr.created", pulls.event_of(pull), organization_id=organization_id)
        return pull.id


async def test_a_failing_build_of_our_pull_request_drops_its_confidence_to_zero(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    runner = await register_runner(client, tenants.admin)
    pull_id = await _opened_pull_request(
        database, tenants, project.repo_id, ci_repo.git("rev-parse", "HEAD")
    )

    await run_jobs(database)  # pr.created reaches CI, which starts the build
    claimed = await claim(client, runner)
    assert claimed is not None
    build = (
        await client.get(f"{API}/builds/{claimed['build_id']}", headers=tenants.viewer.headers)
    ).json()
    assert build["event"] == "pull_request"
    await report(
        client, runner, build["id"], "/finish", {"status": "failed", "error": "step 2 failed"}
    )
    await run_jobs(database)  # build.finished reaches the pull request

    pull = (
        await client.get(f"{API}/pull-requests/{pull_id}", headers=tenants.viewer.headers)
    ).json()
    assert pull["test_summary"]["ci"] == {
        "build_id": build["id"],
        "status": "failed",
        "commit": build["commit"],
    }
    assert pull["confidence"] == 0.0
    tests = next(f for f in pull["confidence_factors"]["factors"] if f["name"] == "tests")
    assert "CI build #1 failed" in tests["detail"]


async def test_a_passing_build_counts_as_the_tests_passing(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, ci_repo: GitRepo
) -> None:
    project = await project_with_repo(client, database, tenants.owner, ci_repo)
    runner = await register_runner(client, tenants.admin)
    pull_id = await _opened_pull_request(
        database, tenants, project.repo_id, ci_repo.git("rev-parse", "HEAD")
    )
    await run_jobs(database)
    claimed = await claim(client, runner)
    assert claimed is not None

    await report(client, runner, claimed["build_id"], "/finish", {"status": "succeeded"})
    await run_jobs(database)

    pull = (
        await client.get(f"{API}/pull-requests/{pull_id}", headers=tenants.viewer.headers)
    ).json()
    assert pull["test_summary"]["ci"]["status"] == "succeeded"
    tests = next(f for f in pull["confidence_factors"]["factors"] if f["name"] == "tests")
    assert tests["score"] == 1.0
    assert "3 passed; CI build #1 succeeded" in tests["detail"]
    assert pull["confidence"] > 0
