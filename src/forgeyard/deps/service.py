"""Dependencies and their updates: scans, reading what they found, per-dependency settings.

Functions take keyword arguments, scope every query to the caller's organization, flush and
never commit. A scan runs as a ``deps.scan`` job (``deps/tasks.py``); update jobs and pull
requests are in ``deps/update_jobs.py`` and ``deps/pulls.py``, re-exported here so that
other domains and the routers reach them through this one surface.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.deps import presenters
from forgeyard.deps.ecosystems import ECOSYSTEMS
from forgeyard.deps.private_registries import (
    add_registry,
    configs_for,
    delete_registry,
    list_registries,
)
from forgeyard.deps.pull_builds import find_pull_request, record_build_result
from forgeyard.deps.pulls import (
    ACT_KIND,
    get_pull_request,
    list_pull_requests,
    request_close,
    request_merge,
)
from forgeyard.deps.update_jobs import (
    UPDATE_KIND,
    enqueue_allowed,
    start_update_job,
    update_job_views,
)
from forgeyard.jobs import enqueue
from forgeyard.kernel.db import get_owned
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.pagination import PageParams
from forgeyard.models.deps import Dependency, DependencyUpdate
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos

SCAN_KIND = "deps.scan"
__all__ = [
    "ACT_KIND",
    "SCAN_KIND",
    "UPDATE_KIND",
    "add_registry",
    "configs_for",
    "delete_registry",
    "enqueue_allowed",
    "find_pull_request",
    "get_pull_request",
    "list_pull_requests",
    "list_registries",
    "record_build_result",
    "request_close",
    "request_merge",
    "start_update_job",
    "update_job_views",
]


async def enqueue_scan(*, session: AsyncSession, repository: Repository) -> str:
    job = await enqueue(
        session,
        SCAN_KIND,
        payload={"repository_id": repository.id},
        organization_id=repository.organization_id,
        repository_id=repository.id,
        max_attempts=3,
    )
    return job.id


async def start_scan(*, session: AsyncSession, who: Principal, repo_id: str) -> str:
    repository = await repos.get_repo(session=session, who=who, repo_id=repo_id)
    return await enqueue_scan(session=session, repository=repository)


UpdateRow = tuple[DependencyUpdate, Dependency]


def _updates(organization_id: str) -> Select[DependencyUpdate, Dependency]:
    return (
        select(DependencyUpdate, Dependency)
        .join(Dependency, Dependency.id == DependencyUpdate.dependency_id)
        .where(DependencyUpdate.organization_id == organization_id)
    )


async def list_updates(
    *,
    session: AsyncSession,
    who: Principal,
    page: PageParams,
    repo_id: str | None = None,
    category: str | None = None,
    ecosystem: str | None = None,
    blocked: bool | None = None,
) -> tuple[list[UpdateRow], int]:
    statement = _updates(who.organization_id)
    if repo_id is not None:
        statement = statement.where(DependencyUpdate.repository_id == repo_id)
    if category is not None:
        statement = statement.where(DependencyUpdate.category == category)
    if ecosystem is not None:
        statement = statement.where(Dependency.ecosystem == ecosystem)
    if blocked is not None:
        statement = statement.where(DependencyUpdate.blocked.is_(blocked))
    statement = statement.order_by(DependencyUpdate.repository_id, Dependency.name)
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    total = int(await session.scalar(counted) or 0)
    rows = await session.execute(statement.limit(page.limit).offset(page.offset))
    return [(update, dependency) for update, dependency in rows.all()], total


async def get_update(*, session: AsyncSession, who: Principal, update_id: str) -> UpdateRow:
    update = await get_owned(
        session,
        DependencyUpdate,
        update_id,
        organization_id=who.organization_id,
        kind="update",
        prefix="upd",
    )
    dependency = await session.get(Dependency, update.dependency_id)
    assert dependency is not None  # the update is deleted with its dependency
    return update, dependency


async def get_dependency(*, session: AsyncSession, who: Principal, dep_id: str) -> Dependency:
    return await get_owned(
        session,
        Dependency,
        dep_id,
        organization_id=who.organization_id,
        kind="dependency",
        prefix="dep",
    )


async def set_dependency_settings(
    *, session: AsyncSession, who: Principal, dep_id: str, changes: dict[str, Any]
) -> Dependency:
    """Apply a partial change of ``skip``, ``pin`` (with ``pin_reason``, ``pin_expires_at``)
    and ``ignore_major``; the next scan honours it. Clearing the pin clears its reason and
    expiry too."""
    dependency = await get_dependency(session=session, who=who, dep_id=dep_id)
    for field in ("skip", "ignore_major"):
        if field in changes:
            setattr(dependency, field, changes[field])
    if "pin" in changes:
        if changes["pin"] is None:
            dependency.pin = dependency.pin_reason = dependency.pin_expires_at = None
        else:
            _check_pin(dependency, changes["pin"])
            dependency.pin = changes["pin"]
            dependency.pin_reason = changes.get("pin_reason")
            dependency.pin_expires_at = changes.get("pin_expires_at")
    elif "pin_reason" in changes or "pin_expires_at" in changes:
        if dependency.pin is None:
            raise InvalidInputError(
                "pin_reason and pin_expires_at need a pin", details={"field": "pin"}
            )
        dependency.pin_reason = changes.get("pin_reason", dependency.pin_reason)
        dependency.pin_expires_at = changes.get("pin_expires_at", dependency.pin_expires_at)
    await session.flush()
    return dependency


def _check_pin(dependency: Dependency, pin: str) -> None:
    ecosystem = ECOSYSTEMS[dependency.ecosystem]
    try:
        ecosystem.satisfies(pin, "0.0.0") if _is_range(pin) else ecosystem.compare(pin, pin)
    except ValueError as exc:
        raise InvalidInputError(
            f"pin {pin!r} is neither a version nor a range {dependency.ecosystem} reads: {exc}",
            details={"field": "pin"},
        ) from None


def _is_range(pin: str) -> bool:
    return any(symbol in pin for symbol in "<>=~^*, |")


async def dependency_summaries(
    session: AsyncSession, repository: Repository
) -> list[dict[str, Any]]:
    """Every dependency of ``repository`` with its update, for ``GET /repos/{id}``."""
    rows = await session.execute(
        select(Dependency, DependencyUpdate)
        .outerjoin(DependencyUpdate, DependencyUpdate.dependency_id == Dependency.id)
        .where(Dependency.repository_id == repository.id)
        .order_by(Dependency.ecosystem, Dependency.name, Dependency.manifest_path)
    )
    return [
        presenters.dependency_out(dependency, update).model_dump(mode="json")
        for dependency, update in rows.all()
    ]
