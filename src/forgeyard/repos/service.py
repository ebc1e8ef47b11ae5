"""Repositories: registration, settings, fetches recorded, and each repository's timeline.

Functions take keyword arguments, scope every query to the caller's organization, flush and
never commit. Other domains call these (the analysis domain fetches through
:func:`fetch_mirror` and reads files through :func:`mirror_path`, both from
``repos/mirrors.py`` and part of this surface); they learn of pushes from ``repo.pushed``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth import audit
from forgeyard.auth.principals import Principal
from forgeyard.jobs import emit, enqueue
from forgeyard.kernel.crypto import SecretBox
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import ConflictError, InvalidInputError
from forgeyard.kernel.http import OutboundPolicy
from forgeyard.kernel.ids import is_valid_id, new_id
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.analysis import Analysis
from forgeyard.models.repo import Project, RepoEvent, Repository, RepoSource, RepoStatus
from forgeyard.repos import sources
from forgeyard.repos.mirrors import (
    FetchResult,
    fetch_mirror,
    mirror_path,
    mirror_path_of,
    push_to_origin,
    remove_mirror,
)
from forgeyard.repos.schemas import RepoSettings
from forgeyard.settings import Settings

FETCH_KIND = "repos.fetch"
REMOVE_MIRROR_KIND = "repos.remove_mirror"
SCHEDULE_EVERY = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
# The mirrors' part of this surface, kept in repos/mirrors.py (git only, no database).
forge_api_url = sources.forge_api_url
__all__ = [
    "FetchResult",
    "fetch_mirror",
    "forge_api_url",
    "mirror_path",
    "mirror_path_of",
    "push_to_origin",
    "remove_mirror",
]


def target_branch(repository: Repository, fetched: FetchResult) -> str:
    """The branch scans read and updates target: the setting, else origin's default."""
    return settings_of(repository).target_branch or fetched.default_branch or "main"


def settings_of(repository: Repository) -> RepoSettings:
    return RepoSettings.model_validate(repository.settings or {})


async def get_repo(*, session: AsyncSession, who: Principal, repo_id: str) -> Repository:
    return await get_repo_in(session=session, organization_id=who.organization_id, repo_id=repo_id)


async def get_repo_in(*, session: AsyncSession, organization_id: str, repo_id: str) -> Repository:
    return await get_owned(
        session,
        Repository,
        repo_id,
        organization_id=organization_id,
        kind="repository",
        prefix="repo",
    )


async def list_repos(
    *,
    session: AsyncSession,
    who: Principal,
    page: PageParams,
    project_id: str | None = None,
    status: str | None = None,
) -> tuple[list[Repository], int]:
    statement = (
        select(Repository)
        .where(Repository.organization_id == who.organization_id)
        .order_by(Repository.id)
    )
    if project_id is not None:
        statement = statement.where(Repository.project_id == project_id)
    if status is not None:
        statement = statement.where(Repository.status == status)
    return await paginate(session, statement, page)


async def get_project(*, session: AsyncSession, who: Principal, project_id: str) -> Project:
    """The caller's organization's project, else 404."""
    return await get_owned(
        session,
        Project,
        project_id,
        organization_id=who.organization_id,
        kind="project",
        prefix="prj",
    )


async def check_project(*, session: AsyncSession, organization_id: str, project_id: str) -> None:
    found = is_valid_id("prj", project_id) and await session.scalar(
        select(Project.id).where(
            Project.id == project_id, Project.organization_id == organization_id
        )
    )
    if not found:
        raise InvalidInputError(f"project {project_id} not found", details={"field": "project_id"})


async def check_name_free(*, session: AsyncSession, organization_id: str, name: str) -> None:
    taken = await session.scalar(
        select(Repository.id).where(
            Repository.organization_id == organization_id, Repository.name == name
        )
    )
    if taken:
        raise ConflictError(
            f"a repository named {name!r} exists already", details={"field": "name"}
        )


@dataclass(frozen=True)
class NewRepo:
    clone_url: str
    name: str | None = None
    project_id: str | None = None
    username: str | None = None
    token: str | None = None
    settings: RepoSettings | None = None


async def register_repo(
    *,
    session: AsyncSession,
    who: Principal,
    box: SecretBox,
    settings: Settings,
    policy: OutboundPolicy,
    new: NewRepo,
    ip: str | None = None,
) -> Repository:
    """Register a repository by clone URL and queue its first fetch."""
    source = await sources.parse_clone_url(
        new.clone_url,
        policy=policy,
        allow_local=settings.analysis.allow_local_clones,
        allow_ssh=settings.analysis.allow_ssh_clones,
    )
    if new.token and source.kind != "https":
        raise InvalidInputError(
            "a token is sent only to https:// clone URLs", details={"field": "token"}
        )
    repository = await create_repo(
        session=session,
        organization_id=who.organization_id,
        name=new.name or source.default_name,
        source=RepoSource.URL,
        project_id=new.project_id,
        created_by_id=who.actor_id or None,
        repo_settings=new.settings,
    )
    repository.clone_url = source.url
    if new.token:
        repository.credentials_encrypted = box.encrypt(f"{new.username or ''}\n{new.token}")
    await session.flush()
    await enqueue(
        session,
        FETCH_KIND,
        payload={"repository_id": repository.id},
        organization_id=who.organization_id,
    )
    await audit.record(
        session,
        action="repository.registered",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=repository.id,
        ip_address=ip,
        details={"clone_url": source.url},
    )
    return repository


async def create_repo(
    *,
    session: AsyncSession,
    organization_id: str,
    name: str,
    source: RepoSource,
    project_id: str | None = None,
    created_by_id: str | None = None,
    repo_settings: RepoSettings | None = None,
    repo_id: str | None = None,
) -> Repository:
    """A repository row (no mirror yet) with its first timeline entry; ``repo_id`` when the
    caller made its mirror first."""
    await check_name_free(session=session, organization_id=organization_id, name=name)
    if project_id is not None:
        await check_project(session=session, organization_id=organization_id, project_id=project_id)
    chosen = repo_settings or RepoSettings()
    repository = Repository(
        id=repo_id or new_id("repo"),
        organization_id=organization_id,
        name=name,
        source=source,
        project_id=project_id,
        status=RepoStatus.REGISTERED,
        settings=chosen.model_dump(),
        quality_gates={},
        next_scheduled_at=_next_run(chosen, utcnow()),
        created_by_id=created_by_id,
    )
    session.add(repository)
    await session.flush()
    await record_event(
        session=session, repository=repository, kind="registered", message=f"{name} registered"
    )
    await emit(
        session,
        "repo.registered",
        {"repository_id": repository.id, "name": name, "source": source},
        organization_id=organization_id,
    )
    return repository


def _next_run(chosen: RepoSettings, now: datetime) -> datetime | None:
    every = SCHEDULE_EVERY.get(chosen.schedule)
    return now + every if every else None


async def update_settings(
    *,
    session: AsyncSession,
    who: Principal,
    repo_id: str,
    new: RepoSettings,
) -> Repository:
    repository = await get_repo(session=session, who=who, repo_id=repo_id)
    if new.pull_requests.provider != "local":
        sources.forge_api_url(
            repository.clone_url, new.pull_requests.provider, new.pull_requests.api_url
        )
    before = settings_of(repository)
    repository.settings = new.model_dump()
    if new.schedule != before.schedule:
        repository.next_scheduled_at = _next_run(new, utcnow())
    await record_event(
        session=session,
        repository=repository,
        kind="settings_changed",
        message="settings changed",
        data={"settings": repository.settings},
    )
    await session.flush()
    return repository


async def set_quality_gates(
    *, session: AsyncSession, who: Principal, repo_id: str, gates: dict[str, Any]
) -> Repository:
    repository = await get_repo(session=session, who=who, repo_id=repo_id)
    repository.quality_gates = gates
    await record_event(
        session=session,
        repository=repository,
        kind="quality_gates_changed",
        message="quality gates changed",
        data={"quality_gates": gates},
    )
    await session.flush()
    return repository


async def delete_repo(
    *, session: AsyncSession, who: Principal, settings: Settings, repo_id: str, ip: str | None
) -> None:
    """Delete the repository and everything about it; its mirror goes once this commits."""
    repository = await get_repo(session=session, who=who, repo_id=repo_id)
    await enqueue(
        session,
        REMOVE_MIRROR_KIND,
        payload={"path": str(mirror_path(settings, repository))},
        organization_id=who.organization_id,
    )
    await audit.record(
        session,
        action="repository.deleted",
        organization_id=who.organization_id,
        actor_id=who.actor_id,
        target_id=repository.id,
        ip_address=ip,
        details={"name": repository.name},
    )
    await session.delete(repository)
    await session.flush()


async def note_dependency_scan(
    *,
    session: AsyncSession,
    repository: Repository,
    dependency_count: int,
    outdated_count: int,
    message: str,
    data: dict[str, Any],
) -> None:
    """What a dependency scan found, on the repository and in its timeline."""
    repository.dependency_count = dependency_count
    repository.outdated_count = outdated_count
    await record_event(
        session=session,
        repository=repository,
        kind="dependencies_scanned",
        message=message,
        data=data,
    )


# Parts of ``GET /repos/{id}`` other capabilities fill (the dependency list): registered by
# the application at start-up, so this domain needs no import of theirs.
DetailSection = Callable[[AsyncSession, Repository], Awaitable[list[dict[str, Any]]]]
_detail_sections: dict[str, DetailSection] = {}


def register_detail_section(name: str, section: DetailSection) -> None:
    _detail_sections[name] = section


async def detail_sections(
    *, session: AsyncSession, repository: Repository
) -> dict[str, list[dict[str, Any]]]:
    return {name: await fill(session, repository) for name, fill in _detail_sections.items()}


async def record_event(
    *,
    session: AsyncSession,
    repository: Repository,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        RepoEvent(
            id=new_id("rev"),
            organization_id=repository.organization_id,
            repository_id=repository.id,
            kind=kind,
            message=message,
            data=data or {},
            created_at=utcnow(),
        )
    )
    await session.flush()


async def list_events(
    *, session: AsyncSession, who: Principal, repo_id: str, page: PageParams
) -> tuple[list[RepoEvent], int]:
    await get_repo(session=session, who=who, repo_id=repo_id)
    statement = (
        select(RepoEvent)
        .where(
            RepoEvent.repository_id == repo_id,
            RepoEvent.organization_id == who.organization_id,
        )
        .order_by(RepoEvent.id.desc())
    )
    return await paginate(session, statement, page)


async def last_scan(*, session: AsyncSession, repository: Repository) -> Analysis | None:
    if repository.last_analysis_id is None:
        return None
    return await session.get(Analysis, repository.last_analysis_id)


# ---------------------------------------------------------------------------------------------
# Fetching (repos/mirrors.py) runs git with no transaction open; the outcome is recorded here.


async def record_fetch(
    *, session: AsyncSession, organization_id: str, repo_id: str, result: FetchResult
) -> Repository | None:
    repository = await session.scalar(
        select(Repository).where(
            Repository.id == repo_id, Repository.organization_id == organization_id
        )
    )
    if repository is None:
        return None  # deleted meanwhile
    repository.last_fetched_at = utcnow()
    if result.ok:
        repository.status = RepoStatus.ACTIVE
        repository.fetch_error = None
        repository.default_branch = result.default_branch
        repository.head_commit = result.head_commit
        await record_event(
            session=session,
            repository=repository,
            kind="fetched",
            message=f"fetched {result.default_branch or 'HEAD'} at {result.head_commit}",
            data={"commit": result.head_commit, "branch": result.default_branch},
        )
    else:
        repository.status = RepoStatus.ERROR
        repository.fetch_error = result.error
        await record_event(
            session=session,
            repository=repository,
            kind="fetch_failed",
            message="fetch failed",
            data={"error": result.error},
        )
    await session.flush()
    return repository


async def note_analysis(
    *,
    session: AsyncSession,
    repository: Repository,
    analysis_id: str,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> None:
    """The analysis domain records its milestones on the repository's timeline."""
    if kind == "analysed":
        repository.last_analysis_id = analysis_id
        repository.last_scan_at = utcnow()
    await record_event(
        session=session,
        repository=repository,
        kind=kind,
        message=message,
        data={"analysis_id": analysis_id, **(data or {})},
    )


async def due_for_schedule(*, session: AsyncSession, now: datetime, limit: int) -> list[Repository]:
    """Repositories whose schedule says to analyse them now, longest overdue first."""
    return list(
        await session.scalars(
            select(Repository)
            .where(Repository.next_scheduled_at <= now)
            .order_by(Repository.next_scheduled_at)
            .limit(limit)
        )
    )


async def schedule_next(*, session: AsyncSession, repository: Repository, now: datetime) -> None:
    """Move a repository's next scheduled analysis on, once this one has started."""
    repository.next_scheduled_at = _next_run(settings_of(repository), now)
    await session.flush()


async def count_in_project(*, session: AsyncSession, project_ids: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(Repository.project_id, func.count())
        .where(Repository.project_id.in_(project_ids))
        .group_by(Repository.project_id)
    )
    return {project_id: count for project_id, count in rows if project_id}
