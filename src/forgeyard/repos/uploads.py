"""Git uploads: temporary remotes a person pushes a repository to (seed 004).

An upload hands out a push URL and a token (shown once, stored as a keyed hash) that expire
together and reach one repository. The push itself is git's smart HTTP protocol, served by
``git http-backend`` on the repository's mirror; once it has landed, the ``repo.pushed``
event tells the analysis domain to analyse what arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.jobs import emit
from forgeyard.kernel import git
from forgeyard.kernel.crypto import TokenHasher, new_token
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import InvalidInputError, UnauthorizedError
from forgeyard.kernel.ids import is_valid_id, new_id
from forgeyard.models.repo import GitUpload, Repository, RepoSource, RepoStatus
from forgeyard.repos import schemas, service
from forgeyard.settings import Settings

PUSH_USERNAME = "forgeyard"


async def create_upload(
    *,
    session: AsyncSession,
    who: Principal,
    hasher: TokenHasher,
    settings: Settings,
    body: schemas.GitUploadIn,
) -> tuple[GitUpload, str]:
    """A new push remote and its token (the only time the token is handed out)."""
    if (body.repository_id is None) == (body.name is None):
        raise InvalidInputError(
            "give either repository_id (push into it) or name (a new repository)",
            details={"field": "repository_id"},
        )
    name = body.name or ""
    if body.repository_id is not None:
        repository = await service.get_repo(session=session, who=who, repo_id=body.repository_id)
        if repository.source == RepoSource.URL:
            raise InvalidInputError(
                "this repository is fetched from its clone URL; pushes go to repositories "
                "made by git uploads",
                details={"field": "repository_id"},
            )
        name = repository.name
    else:
        await service.check_name_free(
            session=session, organization_id=who.organization_id, name=name
        )
        if body.project_id is not None:
            await service.check_project(
                session=session, organization_id=who.organization_id, project_id=body.project_id
            )
    token = new_token()
    upload = GitUpload(
        id=new_id("gup"),
        organization_id=who.organization_id,
        repository_id=body.repository_id,
        repository_name=name,
        project_id=body.project_id,
        token_hash=hasher.hash(token),
        expires_at=utcnow() + timedelta(minutes=settings.analysis.git_upload_minutes),
        pushes=0,
        created_by_id=who.actor_id or None,
    )
    session.add(upload)
    await session.flush()
    return upload, token


async def get_upload(*, session: AsyncSession, who: Principal, upload_id: str) -> GitUpload:
    return await get_owned(
        session,
        GitUpload,
        upload_id,
        organization_id=who.organization_id,
        kind="git upload",
        prefix="gup",
    )


def push_url(settings: Settings, upload: GitUpload) -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1/git-uploads/{upload.id}/repo.git"


def authenticated_url(settings: Settings, upload: GitUpload, token: str) -> str:
    scheme, _, rest = push_url(settings, upload).partition("://")
    return f"{scheme}://{PUSH_USERNAME}:{token}@{rest}"


async def authenticate_push(
    *,
    session: AsyncSession,
    hasher: TokenHasher,
    upload_id: str,
    token: str | None,
    for_update: bool = False,
) -> GitUpload:
    """The upload a push may go to, or 401: unknown, wrong token and expired look the same
    to a client that could be guessing. ``for_update`` locks the row, so two first pushes
    at once make one repository."""
    statement = select(GitUpload).where(GitUpload.id == upload_id)
    if for_update:
        statement = statement.with_for_update()
    upload = await session.scalar(statement) if is_valid_id("gup", upload_id) else None
    if (
        upload is None
        or token is None
        or not hasher.matches(token, upload.token_hash)
        or upload.expires_at <= utcnow()
    ):
        raise UnauthorizedError(
            "the push URL's token is wrong or has expired",
            code="invalid_token",
            headers={"WWW-Authenticate": 'Basic realm="forgeyard git upload"'},
        )
    return upload


async def repository_for_push(*, session: AsyncSession, upload: GitUpload) -> Repository:
    """The repository the upload fills; its row is made on the first push (the caller makes
    the empty mirror once this transaction has committed)."""
    if upload.repository_id is not None:
        return await service.get_repo_in(
            session=session, organization_id=upload.organization_id, repo_id=upload.repository_id
        )
    repository = await service.create_repo(
        session=session,
        organization_id=upload.organization_id,
        name=upload.repository_name,
        source=RepoSource.PUSH,
        project_id=upload.project_id,
        created_by_id=upload.created_by_id,
    )
    upload.repository_id = repository.id
    await session.flush()
    return repository


@dataclass(frozen=True)
class PushState:
    branch: str
    head: str


async def read_push(mirror: Path) -> PushState:
    """The branch a pushed repository is analysed on, and its head; HEAD is pointed at an
    existing branch (main, else master, else the first) if it names none."""
    branches = await git.branches(mirror)
    branch = await git.default_branch(mirror)
    if branch not in branches and branches:
        branch = "main" if "main" in branches else "master" if "master" in branches else branches[0]
        await git.set_default_branch(mirror, branch)
    branch = branch or "main"
    return PushState(branch=branch, head=await git.resolve(mirror, branch))


async def record_push(*, session: AsyncSession, upload_id: str, state: PushState) -> None:
    """After a push: the repository's branch and head, its timeline, and ``repo.pushed``."""
    upload = await session.get(GitUpload, upload_id)
    if upload is None or upload.repository_id is None:
        return
    repository = await service.get_repo_in(
        session=session, organization_id=upload.organization_id, repo_id=upload.repository_id
    )
    now = utcnow()
    upload.pushes += 1
    upload.last_push_at = now
    repository.status = RepoStatus.ACTIVE
    repository.default_branch = state.branch
    repository.head_commit = state.head
    repository.last_fetched_at = now
    await service.record_event(
        session=session,
        repository=repository,
        kind="pushed",
        message=f"pushed {state.branch} at {state.head}",
        data={"commit": state.head, "branch": state.branch, "upload_id": upload.id},
    )
    await emit(
        session,
        "repo.pushed",
        {"repository_id": repository.id, "commit": state.head, "branch": state.branch},
        organization_id=repository.organization_id,
    )
    await session.flush()
