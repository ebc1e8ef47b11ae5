"""Plan limits: X-RateLimit-* on every authenticated response, 429 past the limit, shared
across replicas through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from forgeyard.api import create_app
from forgeyard.auth.dependencies import CurrentPrincipal
from forgeyard.kernel.db import Database
from forgeyard.settings import Settings
from tests.databases import REDIS_URL
from tests.identity.conftest import Tenants

ME = "/api/v1/auth/me"


async def test_every_authenticated_response_counts_down(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    first = await client.get(ME, headers=tenants.member.headers)
    second = await client.get(ME, headers=tenants.viewer.headers)
    assert first.headers["x-ratelimit-limit"] == "60"  # the free plan
    # The limit is the organization's: two people of Acme share it.
    remaining = int(first.headers["x-ratelimit-remaining"])
    assert int(second.headers["x-ratelimit-remaining"]) == remaining - 1
    assert int(first.headers["x-ratelimit-reset"]) > 0
    missing = await client.patch(
        "/api/v1/users/usr_01M8FAV9AP3CQ5YQKKHNQV56V9/role",
        json={"role": "viewer"},
        headers=tenants.owner.headers,
    )
    assert missing.status_code == 404
    assert "x-ratelimit-remaining" in missing.headers  # error responses carry them too


async def test_past_the_limit_answers_429_with_retry_after(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    for _ in range(60):
        assert (await client.get(ME, headers=tenants.member.headers)).status_code == 200
    refused = await client.get(ME, headers=tenants.member.headers)
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["retryable"] is True
    assert 0 < body["details"]["retry_after"] <= 60
    assert refused.headers["retry-after"] == str(body["details"]["retry_after"])
    assert refused.headers["x-ratelimit-remaining"] == "0"
    # Another organization is not affected.
    assert (await client.get(ME, headers=tenants.other_owner.headers)).status_code == 200


async def test_concurrent_requests_beyond_the_plan_are_refused(
    app: FastAPI, client: httpx.AsyncClient, tenants: Tenants
) -> None:
    app.state.auth.settings.auth.plans["free"].concurrent_requests = 1
    entered, release = asyncio.Event(), asyncio.Event()

    @app.get("/_test/slow")
    async def slow(principal: CurrentPrincipal) -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"org": principal.organization_id}

    held = asyncio.create_task(client.get("/_test/slow", headers=tenants.member.headers))
    # The first request holds its slot (and has finished with the shared test connection).
    await asyncio.wait_for(entered.wait(), 10)
    refused = await client.get(ME, headers=tenants.viewer.headers)
    release.set()
    assert refused.status_code == 429
    assert refused.json()["details"]["concurrent_requests"] == 1
    assert (await held).status_code == 200
    assert (await client.get(ME, headers=tenants.viewer.headers)).status_code == 200


@pytest.fixture
async def replica(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A second API process's worth of state: its own app, limiter and memory."""
    app = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            yield client


@pytest.mark.skipif(not REDIS_URL, reason="FORGEYARD_TEST_REDIS_URL is not set")
async def test_replicas_share_counters_through_redis(
    settings: Settings, database: Database, tenants: Tenants, replica: httpx.AsyncClient
) -> None:
    settings.redis_url = REDIS_URL
    first = create_app(settings, database=database)
    second = create_app(settings, database=database)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://r")
            for a in (first, second)
        ]
        remaining = []
        for i in range(6):
            response = await clients[i % 2].get(ME, headers=tenants.member.headers)
            remaining.append(int(response.headers["x-ratelimit-remaining"]))
        for c in clients:
            await c.aclose()
    # Each replica saw the other's requests: one countdown, not two.
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[0] - remaining[-1] == 5


async def test_without_redis_each_replica_counts_alone(
    client: httpx.AsyncClient, replica: httpx.AsyncClient, tenants: Tenants
) -> None:
    a = await client.get(ME, headers=tenants.member.headers)
    b = await replica.get(ME, headers=tenants.member.headers)
    assert a.headers["x-ratelimit-remaining"] == b.headers["x-ratelimit-remaining"]
