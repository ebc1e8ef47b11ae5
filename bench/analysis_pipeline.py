"""The whole analysis as a user gets it: a repository registered, fetched into its mirror,
analysed by the job worker (a stage per detector, reports cached per blob, findings written
in batches, score and gates), then analysed again after one file changed.

Runs on SQLite in a scratch data dir, as ``forgeyard serve`` does on a laptop.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from forgeyard.analysis import service as analysis_service
from forgeyard.api.job_handlers import load_tasks
from forgeyard.auth.principals import Principal
from forgeyard.identity import service as identity
from forgeyard.jobs.worker import Worker
from forgeyard.kernel import migrations
from forgeyard.kernel.db import Database
from forgeyard.kernel.http import OutboundPolicy
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.analysis import Analysis
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings, get_settings

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


@dataclass(frozen=True)
class Timings:
    full_s: float
    again_s: float
    full: Analysis
    again: Analysis


def git(tree: Path, *args: str) -> None:
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", *args], cwd=tree, env=env, check=True, capture_output=True)


def commit_tree(tree: Path, message: str) -> None:
    if not (tree / ".git").exists():
        git(tree, "init", "--quiet", "--initial-branch", "main")
    git(tree, "add", "--all", "--force", ".")
    git(tree, "commit", "--quiet", "--allow-empty", "-m", message)


def touch_one_file(tree: Path) -> str:
    """Append a line to one Python file (the first one found) and commit it."""
    target = next(path for path in sorted(tree.rglob("*.py")) if "/." not in str(path))
    with target.open("a") as handle:
        handle.write("\n# touched by the benchmark\n")
    commit_tree(tree, "touch one file")
    return target.relative_to(tree).as_posix()


def configure(workdir: Path) -> Settings:
    """Settings for the job handlers, which read them from the environment."""
    os.environ["FORGEYARD_DATA_DIR"] = str(workdir / "data")
    os.environ["FORGEYARD_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.db'}"
    os.environ["FORGEYARD_ANALYSIS__ALLOW_LOCAL_CLONES"] = "true"
    os.environ["FORGEYARD_JOBS__WORKERS"] = "0"
    get_settings.cache_clear()
    return get_settings()


async def _analyse(database: Database, repository_id: str) -> tuple[float, Analysis]:
    async with database.transaction() as session:
        repository = await session.get(Repository, repository_id)
        assert repository is not None
        started = await analysis_service.start(
            session=session,
            repository=repository,
            trigger="manual",
            limits=analysis_service.plan_limits(get_settings(), "enterprise"),
        )
    began = time.perf_counter()
    await Worker(database).drain()
    seconds = time.perf_counter() - began
    async with database.transaction() as session:
        done = await session.scalar(select(Analysis).where(Analysis.id == started.id))
    assert done is not None
    if done.status != "completed":
        raise RuntimeError(f"the analysis ended {done.status}: {done.error}")
    return seconds, done


async def _pipeline(settings: Settings, tree: Path) -> Timings:
    assert settings.database_url is not None
    migrations.upgrade(settings.database_url)
    load_tasks()
    database = Database.from_url(settings.database_url)
    try:
        async with database.transaction() as session:
            organization = await identity.create_organization(session=session, name="Bench")
            who = Principal(
                kind="user", organization_id=organization.id, plan="enterprise", role="owner"
            )
            repository = await repos.register_repo(
                session=session,
                who=who,
                box=instance_secret_box(settings),
                settings=settings,
                policy=OutboundPolicy(),
                new=repos.NewRepo(clone_url=tree.as_uri(), name="django"),
            )
        await Worker(database).drain()  # the first fetch: the mirror exists before timing
        full_s, full = await _analyse(database, repository.id)
        touch_one_file(tree)
        again_s, again = await _analyse(database, repository.id)
    finally:
        await database.dispose()
    return Timings(full_s, again_s, full, again)


def run_pipeline(workdir: Path, tree: Path) -> Timings:
    """Commit ``tree`` as a repository and time a full analysis and a re-analysis of it."""
    settings = configure(workdir)
    commit_tree(tree, "import")
    return asyncio.run(_pipeline(settings, tree))
