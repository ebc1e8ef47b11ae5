"""The engine's tests need real commits: workers read through their own connections.

They share one migrated database per backend (apart from the rolled-back one the API tests
use) and empty its tables after each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import delete

from forgeyard.jobs import registry
from forgeyard.kernel import migrations
from forgeyard.kernel.db import Database
from forgeyard.models import metadata
from tests.databases import scratch_database


@pytest.fixture(scope="session")
def committed_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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


@pytest.fixture
def temporary_tasks() -> Iterator[list[str]]:
    """Kinds a test registers; forgotten afterwards so tests do not see each other's."""
    kinds: list[str] = []
    yield kinds
    for kind in kinds:
        registry.unregister(kind)
        registry.unsubscribe(kind)
