"""Migrations on an empty database of each backend: up, down, up again, and no drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from forgeyard.kernel import migrations
from forgeyard.kernel.db import sync_url
from forgeyard.models import metadata
from tests.databases import scratch_database


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with scratch_database(backend, tmp_path) as url:
        yield url


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrations.alembic_config("sqlite://"))


def test_history_has_a_single_head() -> None:
    assert len(_script().get_heads()) == 1


def test_upgrade_downgrade_upgrade_round_trip(empty_database_url: str) -> None:
    head = migrations.head_revision()
    assert head is not None
    assert migrations.current_revision(empty_database_url) is None
    migrations.upgrade(empty_database_url)
    assert migrations.current_revision(empty_database_url) == head
    assert "users" in _tables(empty_database_url)
    migrations.downgrade(empty_database_url, "base")
    assert migrations.current_revision(empty_database_url) is None
    assert _tables(empty_database_url) <= {"alembic_version"}  # nothing left behind
    migrations.upgrade(empty_database_url)
    assert migrations.current_revision(empty_database_url) == head


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_every_step_downgrades_cleanly(empty_database_url: str) -> None:
    """Each revision, applied then reverted then applied again, leaves no residue behind."""
    revisions = list(reversed(list(_script().walk_revisions())))
    for revision in revisions:
        migrations.upgrade(empty_database_url, revision.revision)
        migrations.downgrade(empty_database_url, revision.down_revision or "base")
        migrations.upgrade(empty_database_url, revision.revision)
        assert migrations.current_revision(empty_database_url) == revision.revision


def test_models_match_the_migrated_schema(empty_database_url: str) -> None:
    """Alembic's own comparison: a model changed without a migration fails here."""
    migrations.upgrade(empty_database_url)
    engine = create_engine(sync_url(empty_database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_build_counters_start_from_the_numbers_builds_have(empty_database_url: str) -> None:
    """0011: a repository's next build follows its highest number, not 1 again."""
    migrations.upgrade(empty_database_url, "0010")
    now = "2026-11-28 00:00:00"
    engine = create_engine(sync_url(empty_database_url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO organizations (id, name, plan, created_at, updated_at) "
                    "VALUES ('org_1', 'Org', 'free', :now, :now)"
                ),
                {"now": now},
            )
            for repository in ("repo_1", "repo_2"):
                connection.execute(
                    text(
                        "INSERT INTO repositories (id, organization_id, name, source, status, "
                        "settings, quality_gates, created_at, updated_at) VALUES (:id, 'org_1', "
                        ":id, 'url', 'active', '{}', '{}', :now, :now)"
                    ),
                    {"id": repository, "now": now},
                )
            for number in (1, 2, 7):
                connection.execute(
                    text(
                        "INSERT INTO ci_builds (id, organization_id, repository_id, number, ref, "
                        "commit_sha, event, status, labels, spec, signature, attempts, "
                        "cancel_requested, queued_at, created_at, updated_at) VALUES (:id, "
                        "'org_1', 'repo_1', :number, 'main', 'abc', 'manual', 'succeeded', "
                        "'[]', '{}', 'sig', 1, false, :now, :now, :now)"
                    ),
                    {"id": f"bld_{number}", "number": number, "now": now},
                )
        migrations.upgrade(empty_database_url)
        with engine.connect() as connection:
            counters = connection.execute(
                text("SELECT repository_id, last_number FROM ci_build_counters")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in counters] == [("repo_1", 7)]  # repo_2 starts at 1 when asked
