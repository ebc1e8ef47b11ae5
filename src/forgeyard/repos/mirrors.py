"""Bare mirrors under the data dir: where they live, fetching them, removing them.

git runs here with no transaction open; callers record the outcome afterwards. A fetch of a
URL source re-checks its host first and pins git to the addresses checked (repos/sources.py).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from forgeyard.kernel import git
from forgeyard.kernel.crypto import SecretBox
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.http import OutboundPolicy
from forgeyard.models.repo import Repository, RepoSource
from forgeyard.repos import sources
from forgeyard.settings import Settings


def mirror_path(settings: Settings, repository: Repository) -> Path:
    """The bare mirror of ``repository`` under the data dir, one folder per organization."""
    return mirror_path_of(settings, repository.organization_id, repository.id)


def mirror_path_of(settings: Settings, organization_id: str, repo_id: str) -> Path:
    return settings.data_dir / "mirrors" / organization_id / f"{repo_id}.git"


@dataclass(frozen=True)
class FetchResult:
    ok: bool
    default_branch: str | None = None
    head_commit: str | None = None
    error: str | None = None


async def fetch_mirror(
    *, repository: Repository, settings: Settings, box: SecretBox
) -> FetchResult:
    """Bring the mirror up to date (a no-op for pushed and uploaded repositories)."""
    path = mirror_path(settings, repository)
    try:
        if repository.source == RepoSource.URL and repository.clone_url:
            await git.mirror(
                repository.clone_url,
                path,
                time_limit=settings.analysis.git_time_limit_seconds,
                env=await _fetch_env(repository, settings, box),
            )
        branch = await git.default_branch(path)
        head = await git.resolve(path, branch or "HEAD")
    except InvalidInputError as exc:  # the host is no longer one we may reach
        return FetchResult(ok=False, error=exc.message)
    except git.GitError as exc:
        return FetchResult(ok=False, error=str(exc))
    return FetchResult(ok=True, default_branch=branch, head_commit=head)


async def push_to_origin(
    *,
    repository: Repository,
    settings: Settings,
    box: SecretBox,
    refspecs: list[str],
    expected: dict[str, str] | None = None,
) -> None:
    """Push ``refspecs`` ("<commit>:refs/heads/<branch>", "+" to force) from the mirror to the
    repository's origin, then point the mirror's refs the same way. ``expected`` maps a ref to
    the commit it must still point at: a ref that moved meanwhile is left alone and the push
    refused (a pushed or uploaded repository's mirror is its origin). Raises
    :class:`~forgeyard.kernel.git.GitError` when origin refuses (a branch that moved, no
    write access)."""
    path = mirror_path(settings, repository)
    expected = expected or {}
    if repository.source == RepoSource.URL and repository.clone_url:
        await git.run_git(
            "push",
            "--",
            repository.clone_url,
            *refspecs,
            cwd=path,
            time_limit=settings.analysis.git_time_limit_seconds,
            env=await _fetch_env(repository, settings, box),
        )
    for refspec in refspecs:
        source, _, destination = refspec.lstrip("+").partition(":")
        old = [expected[destination]] if destination in expected else []
        await git.run_git("update-ref", destination, source, *old, cwd=path)


async def _fetch_env(repository: Repository, settings: Settings, box: SecretBox) -> dict[str, str]:
    url = repository.clone_url or ""
    addresses: list[str] = []
    if sources.kind_of(url) in ("https", "http"):
        addresses = await sources.check_host(url, OutboundPolicy.from_settings(settings.outbound))
    username = token = None
    if repository.credentials_encrypted:
        username, _, token = box.decrypt(repository.credentials_encrypted).partition("\n")
    return sources.fetch_env(
        url, addresses=addresses, username=username or None, token=token or None
    )


def remove_mirror(path: Path, settings: Settings) -> None:
    """Delete a mirror folder, and only ever one inside the data dir's mirrors."""
    root = (settings.data_dir / "mirrors").resolve()
    target = path.resolve()
    if target.is_relative_to(root) and target != root:
        shutil.rmtree(target, ignore_errors=True)
        target.with_name(target.name + ".lock").unlink(missing_ok=True)
