"""Fixtures shared by the whole suite.

Every database test runs twice: on SQLite and on PostgreSQL (when
``FORGEYARD_TEST_DATABASE_URL`` names a server). Each backend gets one migrated database for
the whole session; each test runs inside a transaction that is rolled back afterwards, and the
application's own commits become savepoints inside it.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from forgeyard.api import create_app
from forgeyard.kernel import migrations
from forgeyard.kernel.db import Database, make_sessionmaker
from forgeyard.kernel.logging import configure_logging
from forgeyard.models import metadata
from forgeyard.settings import Settings
from tests.databases import BACKENDS, PG_ADMIN_URL, PG_SKIP_REASON, REDIS_URL, scratch_database


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    """Log lines go to a sink, whatever an earlier test (a CLI run) pointed them at.

    Tests that read log lines configure their own stream after this.
    """
    configure_logging("json", "info", stream=io.StringIO())


def pytest_report_header() -> list[str]:
    lines = [f"PostgreSQL: {'included' if PG_ADMIN_URL else PG_SKIP_REASON}"]
    lines.append(f"Redis: {'included' if REDIS_URL else 'FORGEYARD_TEST_REDIS_URL is not set'}")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a PostgreSQL server, its runs are left out and one summary line says so."""
    if PG_ADMIN_URL:
        return
    postgres_runs = [item for item in items if _backend_of(item) == "postgresql"]
    if postgres_runs:
        config.hook.pytest_deselected(items=postgres_runs)
        items[:] = [item for item in items if _backend_of(item) != "postgresql"]
        config.stash[_SKIPPED_POSTGRES_RUNS] = len(postgres_runs)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.config.stash.get(_SKIPPED_POSTGRES_RUNS, 0)
    if skipped:
        terminalreporter.write_line(f"{PG_SKIP_REASON} ({skipped} tests)", yellow=True)


def _backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend") if callspec else None


_SKIPPED_POSTGRES_RUNS = pytest.StashKey[int]()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the whole session."""
    with scratch_database(backend, tmp_path_factory.mktemp("db")) as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture(scope="session")
async def session_database(database_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def database(session_database: Database) -> AsyncIterator[Database]:
    """The session's database, seen through a transaction that the test cannot commit."""
    async with session_database.engine.connect() as connection:
        outer = await connection.begin()
        yield Database(
            session_database.engine,
            make_sessionmaker(connection, join_transaction_mode="create_savepoint"),
        )
        await outer.rollback()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # No in-process workers: a test runs the jobs it means to, when it means to.
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jobs={"workers": 0},  # type: ignore[arg-type]
        _env_file=None,
    )


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=database)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: a crash must come back as the 500 a real client would see.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="session")
def committed_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second migrated database per backend, for tests whose work must really commit
    (workers read through connections of their own). Emptied after each test."""
    with scratch_database(backend, tmp_path_factory.mktemp("committed")) as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture
async def committed_database(committed_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(committed_url)
    try:
        yield database
    finally:
        async with database.transaction() as session:
            for table in reversed(metadata.sorted_tables):
                await session.execute(delete(table))
        await database.dispose()
