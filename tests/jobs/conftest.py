"""Fixtures of the engine's tests; ``committed_database`` comes from the suite's conftest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from forgeyard.jobs import registry


@pytest.fixture
def temporary_tasks() -> Iterator[list[str]]:
    """Kinds a test registers; forgotten afterwards so tests do not see each other's."""
    kinds: list[str] = []
    yield kinds
    for kind in kinds:
        registry.unregister(kind)
        registry.unsubscribe(kind)
