"""Scheduled analyses: a repository's daily or weekly schedule starts analyses on its own."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from forgeyard.analysis.tasks import SCHEDULE_KIND
from forgeyard.jobs import enqueue
from forgeyard.kernel.db import Database, utcnow
from forgeyard.models.repo import Repository
from tests.identity.conftest import Tenants
from tests.repos.conftest import API, GitRepo, register, run_jobs


async def _next_run(database: Database, repo_id: str):
    async with database.transaction() as session:
        return await session.scalar(
            select(Repository.next_scheduled_at).where(Repository.id == repo_id)
        )


async def test_a_due_schedule_starts_an_analysis_and_moves_on(
    client: httpx.AsyncClient, database: Database, tenants: Tenants, git_repo: GitRepo
) -> None:
    daily = await register(client, tenants.owner, git_repo.url, name="daily")
    never = await register(client, tenants.owner, git_repo.url, name="never")
    response = await client.put(
        f"{API}/repos/{daily['id']}/settings",
        json={"schedule": "daily"},
        headers=tenants.owner.headers,
    )
    assert response.status_code == 200
    planned = await _next_run(database, daily["id"])
    assert planned is not None
    assert timedelta(hours=23) < planned - utcnow() <= timedelta(days=1)
    assert await _next_run(database, never["id"]) is None

    # A day later, the scheduler's periodic job finds it due.
    async with database.transaction() as session:
        await session.execute(
            update(Repository)
            .where(Repository.id == daily["id"])
            .values(next_scheduled_at=utcnow() - timedelta(minutes=1))
        )
        await enqueue(session, SCHEDULE_KIND)
    await run_jobs(database)

    scans = (
        await client.get(f"{API}/repos/{daily['id']}/scans", headers=tenants.owner.headers)
    ).json()
    assert [(s["trigger"], s["status"]) for s in scans["data"]] == [("schedule", "completed")]
    untouched = await client.get(f"{API}/repos/{never['id']}/scans", headers=tenants.owner.headers)
    assert untouched.json()["total"] == 0
    moved = await _next_run(database, daily["id"])
    assert moved is not None
    assert moved - utcnow() > timedelta(hours=23)
    # Scheduled analyses do not spend the plan's hourly allowance of a person's triggers.
    usage = (await client.get(f"{API}/analysis/concurrency", headers=tenants.owner.headers)).json()
    assert usage["started_last_hour"] == 0
