"""Builds on real git repositories and a committed database, with a short runner lease."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeyard.analysis import tasks as analysis_tasks
from forgeyard.ci import tasks as ci_tasks
from forgeyard.deps import tasks as deps_tasks
from forgeyard.repos import tasks as repo_tasks
from forgeyard.settings import Settings
from tests.ci.builds.flows import PIPELINE
from tests.repos.conftest import GitRepo, database, tenants  # noqa: F401

LEASE_SECONDS = 3


@pytest.fixture
def settings(tmp_path: Path, committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return build_settings(tmp_path, committed_url, monkeypatch)


def build_settings(tmp_path: Path, committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Local clones allowed, a short lease, and the job handlers reading these settings."""
    chosen = Settings(
        data_dir=tmp_path / "data",
        database_url=committed_url,
        jobs={"workers": 0},  # type: ignore[arg-type]
        analysis={"allow_local_clones": True},  # type: ignore[arg-type]
        ci={"lease_seconds": LEASE_SECONDS, "max_attempts": 2},  # type: ignore[arg-type]
        _env_file=None,
    )
    for tasks in (analysis_tasks, repo_tasks, deps_tasks, ci_tasks):
        monkeypatch.setattr(tasks, "get_settings", lambda: chosen)
    return chosen


@pytest.fixture
def ci_repo(tmp_path: Path) -> GitRepo:
    """A repository whose .forgeyard.yml echoes, sleeps, fails and writes an artifact."""
    repo = GitRepo(tmp_path / "upstream")
    repo.path.mkdir()
    repo.git("init", "--quiet", "--initial-branch", "main")
    repo.commit({".forgeyard.yml": PIPELINE, "README.md": "demo\n"}, "first")
    return repo
