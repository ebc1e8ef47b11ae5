"""The dependency API on the repository tests' set-up (real git repositories, committed
databases, Acme's people), with the instance's registries pointed at the session's local
pypiserver and verdaccio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeyard.analysis import tasks as analysis_tasks
from forgeyard.deps import tasks as deps_tasks
from forgeyard.repos import tasks as repo_tasks
from forgeyard.settings import Settings
from tests.registries.harness import Verdaccio
from tests.repos.conftest import GitRepo, database, tenants  # noqa: F401

REQUIREMENTS = "# pinned on purpose\nfy-alpha==1.0.0  # the one we update\nfy-beta==0.1.0\n"
PACKAGE_JSON = {
    "name": "demo",
    "version": "1.0.0",
    "dependencies": {"fy-left": "1.0.0", "@fy/right": "0.1.0"},
}


@pytest.fixture
def settings(
    tmp_path: Path,
    committed_url: str,
    monkeypatch: pytest.MonkeyPatch,
    pypi_index: str,
    npm_registry: Verdaccio,
) -> Settings:
    chosen = Settings(
        data_dir=tmp_path / "data",
        database_url=committed_url,
        jobs={"workers": 0},  # type: ignore[arg-type]
        analysis={"allow_local_clones": True},  # type: ignore[arg-type]
        outbound={"allowed_hosts": ["127.0.0.1"]},  # type: ignore[arg-type]
        deps={  # type: ignore[arg-type]
            "pypi_index_url": pypi_index,
            "npm_registry_url": npm_registry.url,
        },
        _env_file=None,
    )
    for tasks in (analysis_tasks, repo_tasks, deps_tasks):
        monkeypatch.setattr(tasks, "get_settings", lambda: chosen)
    return chosen


@pytest.fixture
def deps_repo(tmp_path: Path) -> GitRepo:
    """A repository pinned to old releases of the fixture packages, on both ecosystems."""
    repo = GitRepo(tmp_path / "upstream")
    repo.path.mkdir()
    repo.git("init", "--quiet", "--initial-branch", "main")
    repo.commit(
        {
            "requirements.txt": REQUIREMENTS,
            "package.json": json.dumps(PACKAGE_JSON, indent=2) + "\n",
        },
        "first",
    )
    return repo
