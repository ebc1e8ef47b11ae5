"""Real git repositories on disk, a worker that runs the jobs a test asks for, and helpers
the repository and analysis tests share."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from forgeyard.analysis import tasks as analysis_tasks
from forgeyard.deps import tasks as deps_tasks
from forgeyard.jobs.worker import Worker
from forgeyard.kernel.db import Database
from forgeyard.repos import tasks as repo_tasks
from forgeyard.settings import Settings
from tests.identity.conftest import (
    Account,
    tenants,  # noqa: F401  (Acme's people and Globex's owner)
)

API = "/api/v1"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_TERMINAL_PROMPT": "0",
}

# A small code base with one problem per detector, written so each is certain to be found.
SOURCES = {
    "app/__init__.py": "",
    "app/shell.py": (
        "import subprocess\n"
        "\n"
        "\n"
        "def run(command):\n"
        "    return subprocess.call(command, shell=True)\n"
    ),
    "app/unused.py": ("import os\n\n\ndef never_called_anywhere():\n    return 1\n"),
    "app/branches.py": "def tangled(a, b, c, d, e, f):\n"
    + "".join(f"    if a == {i}:\n        return {i}\n" for i in range(14))
    + "    return -1\n",
    "app/settings.py": 'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n',
    "README.md": "# demo\n",
}


@dataclass
class GitRepo:
    path: Path

    def git(self, *args: str) -> str:
        env = {**GIT_ENV, "PATH": "/usr/bin:/bin", "HOME": str(self.path)}
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        self.write(files)
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")

    @property
    def url(self) -> str:
        return self.path.as_uri()


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "upstream")
    repo.path.mkdir()
    repo.git("init", "--quiet", "--initial-branch", "main")
    repo.commit(SOURCES, "first")
    return repo


@pytest.fixture
def database(committed_database: Database) -> Database:
    """Really committed: workers claim jobs through connections of their own."""
    return committed_database


@pytest.fixture
def settings(tmp_path: Path, committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Local clones allowed (the upstream repositories are folders), an unlimited plan for
    the analyses the tests start, and the job handlers reading these settings."""
    chosen = Settings(
        data_dir=tmp_path / "data",
        database_url=committed_url,
        jobs={"workers": 0},  # type: ignore[arg-type]
        analysis={"allow_local_clones": True},  # type: ignore[arg-type]
        _env_file=None,
    )
    monkeypatch.setattr(analysis_tasks, "get_settings", lambda: chosen)
    monkeypatch.setattr(repo_tasks, "get_settings", lambda: chosen)
    monkeypatch.setattr(deps_tasks, "get_settings", lambda: chosen)
    return chosen


async def run_jobs(database: Database) -> int:
    """Run every due job, including the ones those jobs start."""
    worker = Worker(database)
    total = 0
    while ran := await worker.drain():
        total += ran
    return total


async def register(
    client: httpx.AsyncClient, account: Account, url: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/repos", json={"clone_url": url, **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def analyse(
    client: httpx.AsyncClient, database: Database, account: Account, repo_id: str
) -> dict[str, Any]:
    """Trigger an analysis, run it to the end, and return its final status."""
    response = await client.post(
        f"{API}/analysis/trigger", json={"repository_id": repo_id}, headers=account.headers
    )
    assert response.status_code == 202, response.text
    await run_jobs(database)
    status = await client.get(
        f"{API}/analysis/{response.json()['id']}/status", headers=account.headers
    )
    assert status.status_code == 200, status.text
    done: dict[str, Any] = status.json()
    return done
