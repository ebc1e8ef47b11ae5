"""Live progress over Server-Sent Events, with a real worker on a committing database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from forgeyard.api import create_app
from forgeyard.jobs import JobContext, enqueue, registry, task
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.ops import service
from forgeyard.settings import JobSettings, Settings
from tests.identity.conftest import Account, complete_setup
from tests.sse import parse_events

API = "/api/v1"
gate = asyncio.Event()


@pytest.fixture
def live_task() -> Iterator[None]:
    @task("test.live")
    async def live(ctx: JobContext) -> None:
        await ctx.stage("install")
        await ctx.progress(1, 2, "resolving")
        await gate.wait()
        await ctx.stage("test")

    gate.clear()
    yield
    registry.unregister("test.live")


@pytest.fixture
async def live_app(
    tmp_path: Path, committed_url: str, committed_database: Database
) -> AsyncIterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=committed_url,
        jobs={"workers": 0},  # type: ignore[arg-type]
        _env_file=None,
    )
    app = create_app(settings, database=committed_database)
    async with app.router.lifespan_context(app):
        yield app


async def test_a_client_follows_a_job_to_its_end_and_resumes_where_it_left_off(
    live_app: FastAPI,
    committed_database: Database,
    live_task: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Updates must come from wake-ups, not from the stream looking on its own.
    monkeypatch.setattr(service, "FOLLOW_POLL_SECONDS", 60.0)
    owner: Account = await complete_setup(live_app, committed_database, password=None)
    async with committed_database.transaction() as session:
        job_id = (await enqueue(session, "test.live", organization_id=owner.organization_id)).id
    worker = Worker(committed_database, JobSettings(poll_seconds=0.05), kinds=["test.live"])
    running = asyncio.create_task(worker.run())
    transport = httpx.ASGITransport(app=live_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        url = f"{API}/jobs/{job_id}/progress"
        following = asyncio.create_task(client.get(url, headers=owner.headers, timeout=30))
        await asyncio.sleep(0.5)
        gate.set()
        response = await asyncio.wait_for(following, 30)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_events(response.text)
        versions = [int(event["id"]) for event in events]
        assert versions == sorted(set(versions)), "ids only grow"
        assert events[-1]["event"] == "end"
        final = events[-1]["data"]
        assert final["status"] == "succeeded"
        assert [(s["name"], s["status"]) for s in final["stages"]] == [
            ("install", "succeeded"),
            ("test", "succeeded"),
        ]
        assert any(
            e["data"]["stages"] and e["data"]["stages"][0]["progress"] for e in events[:-1]
        ), "the progress report was streamed before the end"

        resumed = await client.get(
            url, headers={**owner.headers, "Last-Event-ID": str(versions[-2])}, timeout=30
        )
        assert [e["event"] for e in parse_events(resumed.text)] == ["end"]
    worker.stop()
    await running
