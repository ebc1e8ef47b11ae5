"""Upload sessions, the legacy flow of seed 004: an archive of a source tree in, analysed.

The archive is hostile until :mod:`forgeyard.analysis.archives` has extracted it; what it
held becomes one commit of a repository of its own (source ``archive``), so an uploaded tree
is analysed, cached and reported exactly like a repository that was cloned or pushed.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.analysis import archives, service
from forgeyard.auth.principals import Principal
from forgeyard.kernel import git
from forgeyard.kernel.db import get_owned
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.ids import new_id
from forgeyard.models.analysis import Analysis, UploadSession
from forgeyard.models.repo import RepoSource, RepoStatus
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

UPLOADED = "uploaded"
SESSION = "session"  # the trigger of a session's analysis
BRANCH = "main"


def limits(settings: Settings) -> archives.ArchiveLimits:
    chosen = settings.analysis
    return archives.ArchiveLimits(
        max_members=chosen.max_archive_members,
        max_total_bytes=chosen.max_archive_expanded_bytes,
        max_member_bytes=chosen.max_archive_expanded_bytes,
        max_ratio=chosen.max_archive_ratio,
    )


async def create_session(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    filename: str,
    body: AsyncIterator[bytes],
) -> UploadSession:
    """Receive the archive, extract it safely and commit its tree into a new mirror, all
    before the first row is written (the database is not held while git works); then the
    repository and the session. If those cannot be written, the mirror goes again."""
    upload_id, repo_id = new_id("ses"), new_id("repo")
    mirror = repos.mirror_path_of(settings, who.organization_id, repo_id)
    work = settings.data_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="upload-", dir=work))
    try:
        archive_format, size, paths, commit = await _import(
            settings, body, filename, scratch, mirror
        )
        repository = await repos.create_repo(
            session=session,
            organization_id=who.organization_id,
            name=f"upload {upload_id}",
            source=RepoSource.ARCHIVE,
            created_by_id=who.actor_id or None,
            repo_id=repo_id,
        )
        repository.status = RepoStatus.ACTIVE
        repository.default_branch = BRANCH
        repository.head_commit = commit
        record = UploadSession(
            id=upload_id,
            organization_id=who.organization_id,
            filename=filename,
            archive_format=archive_format,
            size_bytes=size,
            files=len(paths),
            repository_id=repository.id,
            created_by_id=who.actor_id or None,
        )
        session.add(record)
        await session.flush()
    except BaseException:
        repos.remove_mirror(mirror, settings)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return record


async def _import(
    settings: Settings, body: AsyncIterator[bytes], filename: str, scratch: Path, mirror: Path
) -> tuple[str, int, list[str], str]:
    """The archive saved, checked, extracted and committed: (format, size, paths, commit)."""
    archive = scratch / "archive"
    size = await _save(body, archive)
    if size == 0:
        raise InvalidInputError("the request body is empty: send the archive as the body")
    with archive.open("rb") as handle:
        archive_format = archives.detect_format(handle.read(512), filename)
    tree = scratch / "tree"
    paths = await asyncio.to_thread(archives.extract, archive, tree, limits(settings))
    if not paths:
        raise InvalidInputError("the archive holds no files", code="invalid_archive")
    try:
        commit = await git.commit_directory(
            mirror,
            tree,
            branch=BRANCH,
            message=f"Uploaded {filename}",
            time_limit=settings.analysis.git_time_limit_seconds,
        )
    except git.GitError as exc:
        raise InvalidInputError(f"the archive's files could not be stored: {exc}") from None
    return archive_format, size, paths, commit


async def _save(body: AsyncIterator[bytes], target: Path) -> int:
    size = 0
    with target.open("wb") as handle:
        async for chunk in body:
            size += len(chunk)
            handle.write(chunk)
    return size


def clean_filename(name: str | None) -> str:
    base = PurePosixPath((name or "upload").replace("\\", "/")).name
    return base[:200] or "upload"


async def get_session(
    *, session: AsyncSession, who: Principal, session_id: str
) -> tuple[UploadSession, Analysis | None]:
    record = await get_owned(
        session,
        UploadSession,
        session_id,
        organization_id=who.organization_id,
        kind="session",
        prefix="ses",
    )
    analysis = await session.get(Analysis, record.analysis_id) if record.analysis_id else None
    return record, analysis


async def analyze(
    *, session: AsyncSession, who: Principal, settings: Settings, session_id: str
) -> tuple[UploadSession, Analysis]:
    record, _ = await get_session(session=session, who=who, session_id=session_id)
    if record.repository_id is None:
        raise InvalidInputError("the session's repository was deleted", details={})
    analysis = await service.trigger_by_person(
        session=session,
        who=who,
        settings=settings,
        repo_id=record.repository_id,
        ref=None,
        trigger=SESSION,
    )
    record.analysis_id = analysis.id
    await session.flush()
    return record, analysis
