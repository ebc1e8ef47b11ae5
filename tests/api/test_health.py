from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from forgeyard.api import create_app
from forgeyard.kernel.db import Database
from forgeyard.settings import Settings
from tests.databases import REDIS_URL


async def test_health_says_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_says_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


@pytest.mark.parametrize("path", ["/ready", "/readyz"])
async def test_ready_reports_each_part(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "connected",
        "worker_pool": "stopped",
        "redis": "not_configured",
    }


async def _get(settings: Settings, database: Database, path: str) -> httpx.Response:
    app = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)


@pytest.fixture
async def unreachable_database(backend: str) -> AsyncIterator[Database]:
    url = {
        "sqlite": "sqlite:////nonexistent-forgeyard-dir/forgeyard.db",
        # Port 1 on loopback refuses at once: nothing listens there.
        "postgresql": "postgresql://forgeyard@127.0.0.1:1/forgeyard",
    }[backend]
    database = Database.from_url(url)
    yield database
    await database.dispose()


@pytest.mark.parametrize("path", ["/ready", "/readyz"])
async def test_ready_answers_503_naming_the_database_when_it_is_unreachable(
    settings: Settings, unreachable_database: Database, path: str
) -> None:
    response = await _get(settings, unreachable_database, path)
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["retryable"] is True
    assert body["error"] == "not ready: database unreachable"
    assert body["details"] == {
        "status": "not_ready",
        "database": "unreachable",
        "redis": "not_configured",
        "worker_pool": "stopped",
    }
    assert body["request_id"] == response.headers["x-request-id"]


async def test_ready_answers_503_naming_redis_when_it_is_unreachable(
    settings: Settings, database: Database
) -> None:
    settings.redis_url = "redis://127.0.0.1:1/0"
    response = await _get(settings, database, "/ready")
    assert response.status_code == 503
    assert response.json()["details"]["redis"] == "unreachable"
    assert response.json()["details"]["database"] == "connected"


@pytest.mark.skipif(not REDIS_URL, reason="FORGEYARD_TEST_REDIS_URL is not set")
async def test_ready_reports_a_configured_redis(settings: Settings, database: Database) -> None:
    settings.redis_url = REDIS_URL
    response = await _get(settings, database, "/readyz")
    assert response.status_code == 200
    assert response.json()["redis"] == "connected"


async def test_docs_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    spec = await client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["info"]["title"] == "Forgeyard"
    assert {"/health", "/healthz", "/ready", "/readyz", "/metrics"} <= set(spec.json()["paths"])
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        assert response.status_code == 200
        assert "/openapi.json" in response.text


@pytest.mark.parametrize("path", ["/health", "/healthz", "/ready", "/readyz"])
async def test_probes_answer_head_as_load_balancers_send_it(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.head(path)
    assert response.status_code == 200
    assert response.content == b""


async def test_ready_answers_503_while_the_schema_is_behind(
    settings: Settings, tmp_path: Path
) -> None:
    database = Database.from_url(f"sqlite:///{tmp_path / 'empty.db'}")
    settings.database_url = f"sqlite:///{tmp_path / 'empty.db'}"
    try:
        response = await _get(settings, database, "/readyz")
    finally:
        await database.dispose()
    assert response.status_code == 503
    assert response.json()["details"]["schema"] == "behind"
    assert response.json()["error"] == "not ready: schema behind"
