"""A build's source for its runner: the commit's tree as a tar stream, from the mirror."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.kernel import git
from forgeyard.kernel.errors import ConflictError
from forgeyard.models.ci import Build
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

CHUNK = 64 * 1024


async def archive(
    *, session: AsyncSession, settings: Settings, build: Build
) -> AsyncIterator[bytes]:
    """The tar of ``build``'s commit; 409 when the mirror no longer has it (a force push
    that was fetched since, or a removed repository)."""
    repository = await repos.get_repo_in(
        session=session, organization_id=build.organization_id, repo_id=build.repository_id
    )
    mirror = repos.mirror_path(settings, repository)
    try:
        await git.resolve(mirror, build.commit_sha)
    except git.GitError as exc:
        raise ConflictError(
            f"commit {build.commit_sha} is no longer in repository {repository.name}",
            details={"build_id": build.id},
        ) from exc
    return _git_archive(mirror, build.commit_sha, settings.analysis.git_time_limit_seconds)


async def _git_archive(
    mirror: os.PathLike[str], commit: str, time_limit: float
) -> AsyncIterator[bytes]:
    process = await asyncio.create_subprocess_exec(
        "git",
        "archive",
        "--format=tar",
        commit,
        cwd=mirror,
        env=git.git_environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(time_limit):
            while chunk := await process.stdout.read(CHUNK):
                yield chunk
            await process.wait()
    finally:
        if process.returncode is None:  # the runner went away, or git ran too long
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
