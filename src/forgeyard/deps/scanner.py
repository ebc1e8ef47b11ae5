"""The ``deps.scan`` job: fetch the repository, read its manifests on the target branch, ask
the registries and the vulnerability sources, record dependencies and updates, and start
update jobs for the allowed ones when the repository asks for that (``auto_update``)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import httpx

from forgeyard.deps import private_registries, scans, service, worktrees
from forgeyard.deps.detection import DepSettings
from forgeyard.deps.ecosystems import Dependency
from forgeyard.deps.private_registries import RegistryConfig
from forgeyard.deps.registries import NpmRegistry, PyPIRegistry, Registry
from forgeyard.deps.scanning import scan_tree
from forgeyard.deps.vulnerabilities import CombinedSource, OsvDatabase, VulnerabilitySource
from forgeyard.jobs import JobContext, PermanentError
from forgeyard.kernel import git
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.http import OutboundPolicy, outbound_client
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.kernel.logging import get_logger
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

log = get_logger(__name__)


async def run(ctx: JobContext, settings: Settings) -> None:
    async with ctx.transaction() as session:
        repository = await session.get(Repository, ctx.payload["repository_id"])
        if repository is None:
            return
        known = await scans.rows_of(session, repository.id)
        configs = await private_registries.configs_for(
            session=session, repository=repository, settings=settings
        )
    await ctx.stage("fetch")
    fetched = await repos.fetch_mirror(
        repository=repository, settings=settings, box=instance_secret_box(settings)
    )
    if not fetched.ok:
        raise PermanentError(f"the repository could not be fetched: {fetched.error}")
    target = repos.target_branch(repository, fetched)
    mirror = repos.mirror_path(settings, repository)
    try:
        commit = await git.resolve(mirror, f"refs/heads/{target}")
    except git.GitError:
        raise PermanentError(f"the branch {target} does not exist") from None
    await ctx.stage("scan")
    now = utcnow()

    def settings_of(dependency: Dependency) -> DepSettings:
        row = known.get(scans.key_of(dependency))
        return scans.settings_of(row) if row is not None else DepSettings()

    time_limit = settings.analysis.git_time_limit_seconds
    async with (
        outbound_client(OutboundPolicy.from_settings(settings.outbound)) as client,
        worktrees.worktree(mirror, commit, time_limit=time_limit) as tree,
    ):
        result = await scan_tree(
            tree,
            registries=registries_for(configs, client),
            advisories=advisory_source(settings),
            settings_of=settings_of,
            policy=scans.policy_of(repository),
            now=now,
            concurrency=settings.deps.lookup_concurrency,
        )
    await ctx.progress(
        message=f"{len(result.dependencies)} dependencies, {len(result.updates)} updates, "
        f"{len(result.registry_errors)} registry errors"
    )
    async with ctx.transaction() as session:
        repository = await session.get(Repository, repository.id)
        if repository is None:
            return
        await scans.record(session, repository, result, now)
        if repos.settings_of(repository).auto_update:
            await service.enqueue_allowed(session=session, repository=repository)


def registries_for(
    configs: dict[str, RegistryConfig], client: httpx.AsyncClient
) -> dict[str, Registry]:
    """The repository's registries, sharing the scan's outbound client; an ecosystem with
    none configured is left out (its dependencies get a registry_error saying so)."""
    pypi, npm = configs["pypi"], configs["npm"]
    registries: dict[str, Registry] = {}
    if pypi.url:
        registries["pypi"] = PyPIRegistry(
            pypi.url,
            username=pypi.username or ("__token__" if pypi.secret else None),
            password=pypi.secret,
            client=client,
        )
    if npm.url:
        registries["npm"] = NpmRegistry(npm.url, token=npm.secret, client=client)
    return registries


def advisory_source(settings: Settings) -> VulnerabilitySource:
    path = settings.deps.osv_database
    if not path:
        return CombinedSource([])
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        log.warning("osv_database_missing", path=path)
        return CombinedSource([])
    return _load_osv(path, stamp)


@functools.lru_cache(maxsize=4)
def _load_osv(path: str, stamp: int) -> OsvDatabase:
    # Keyed by modification time: a refreshed export is read again, an unchanged one never.
    return OsvDatabase.load(Path(path))
