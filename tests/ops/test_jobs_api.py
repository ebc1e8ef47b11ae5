"""Following and cancelling jobs through the API, and the ops endpoints (seeds 000, 001, 004)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from forgeyard.jobs import enqueue
from forgeyard.kernel.db import Database, utcnow
from forgeyard.models.job import Job, JobStage, WorkerRecord
from tests.identity.conftest import Tenants

API = "/api/v1"


async def acme_job(database: Database, tenants: Tenants, *, status: str = "queued") -> str:
    async with database.transaction() as session:
        job_id = (
            await enqueue(session, "deps.update", organization_id=tenants.owner.organization_id)
        ).id
        job = await session.get(Job, job_id)
        assert job is not None
        if status != "queued":
            job.status, job.attempts, job.started_at = status, 1, utcnow()
            session.add(
                JobStage(
                    job_id=job_id,
                    position=1,
                    name="install",
                    status="succeeded",
                    attempt=1,
                    started_at=utcnow() - timedelta(seconds=2),
                    finished_at=utcnow(),
                    progress_current=3,
                    progress_total=3,
                )
            )
        if status == "succeeded":
            job.finished_at = utcnow()
    return job_id


async def test_a_job_shows_its_stage_by_stage_breakdown(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    job_id = await acme_job(database, tenants, status="succeeded")
    response = await client.get(f"{API}/jobs/{job_id}", headers=tenants.viewer.headers)
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["status"], job["kind"], job["attempts"]) == ("succeeded", "deps.update", 1)
    (stage,) = job["stages"]
    assert stage["name"] == "install"
    assert stage["status"] == "succeeded"
    assert 1900 <= stage["duration_ms"] <= 2500
    assert stage["progress"] == {"current": 3, "total": 3, "message": None}


async def test_jobs_are_listed_newest_first_and_filtered(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    first = await acme_job(database, tenants)
    second = await acme_job(database, tenants, status="succeeded")
    everything = await client.get(f"{API}/jobs", headers=tenants.member.headers)
    assert [job["id"] for job in everything.json()["data"]] == [second, first]
    assert everything.json()["total"] == 2
    queued = await client.get(f"{API}/jobs?status=queued", headers=tenants.member.headers)
    assert [job["id"] for job in queued.json()["data"]] == [first]
    other = await client.get(f"{API}/jobs?kind=ops.cleanup", headers=tenants.member.headers)
    assert other.json()["data"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=sleeping", "status"), ("limit=0", "limit"), ("kind=" + "k" * 65, "kind")],
)
async def test_bad_list_filters_are_refused_by_name(
    client: httpx.AsyncClient, tenants: Tenants, query: str, field: str
) -> None:
    response = await client.get(f"{API}/jobs?{query}", headers=tenants.owner.headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert field in response.text


async def test_another_organizations_job_is_not_found(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    job_id = await acme_job(database, tenants)
    globex = tenants.other_owner.headers
    for method, path in [("GET", ""), ("GET", "/progress"), ("POST", "/cancel")]:
        response = await client.request(method, f"{API}/jobs/{job_id}{path}", headers=globex)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["code"] == "not_found"
    still = await client.get(f"{API}/jobs/{job_id}", headers=tenants.owner.headers)
    assert still.json()["status"] == "queued"


async def test_cancelling_a_queued_job_ends_it_and_a_finished_one_conflicts(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    queued = await acme_job(database, tenants)
    response = await client.post(f"{API}/jobs/{queued}/cancel", headers=tenants.member.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    again = await client.post(f"{API}/jobs/{queued}/cancel", headers=tenants.member.headers)
    assert again.status_code == 409
    assert again.json()["details"] == {"status": "cancelled"}


async def test_a_running_job_is_asked_to_stop(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    running = await acme_job(database, tenants, status="running")
    response = await client.post(f"{API}/jobs/{running}/cancel", headers=tenants.admin.headers)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("running", True)


async def test_limits_show_the_plan_and_current_use(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    await acme_job(database, tenants)
    response = await client.get(f"{API}/ops/limits", headers=tenants.viewer.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["plan"] == "free"
    assert body["limits"]["api_calls_per_minute"] == 60
    assert body["usage"]["jobs_queued"] == 1
    assert body["usage"]["api_calls_this_minute"] >= 1  # this very request counts
    assert body["usage"]["concurrent_requests"] == 1


async def test_workers_and_queue_depth_by_kind(
    client: httpx.AsyncClient, database: Database, tenants: Tenants
) -> None:
    await acme_job(database, tenants)
    await acme_job(database, tenants, status="running")
    async with database.transaction() as session:
        session.add(
            WorkerRecord(
                id="wrk_live",
                hostname="builder-1",
                pid=42,
                concurrency=8,
                running=1,
                kinds=["deps.update"],
            )
        )
        session.add(
            WorkerRecord(
                id="wrk_gone",
                hostname="builder-2",
                pid=43,
                concurrency=8,
                last_heartbeat_at=utcnow() - timedelta(minutes=3),
            )
        )
    response = await client.get(f"{API}/ops/workers", headers=tenants.admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [w["hostname"] for w in body["workers"]] == ["builder-1"]
    (queue,) = body["queues"]
    assert (queue["kind"], queue["queued"], queue["running"]) == ("deps.update", 1, 1)
    assert queue["oldest_queued_age_seconds"] >= 0
    globex = await client.get(f"{API}/ops/workers", headers=tenants.other_owner.headers)
    assert globex.json()["queues"] == []


async def test_cleanup_is_enqueued_once_at_a_time(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    first = await client.post(f"{API}/ops/cleanup", headers=tenants.owner.headers)
    assert first.status_code == 202, first.text
    assert (first.json()["kind"], first.json()["status"]) == ("ops.cleanup", "queued")
    second = await client.post(f"{API}/ops/cleanup", headers=tenants.admin.headers)
    assert second.json()["id"] == first.json()["id"]
    refused = await client.post(f"{API}/ops/cleanup", headers=tenants.member.headers)
    assert refused.status_code == 403
