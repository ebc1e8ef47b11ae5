"""Update jobs: starting one for a dependency (``POST /jobs``) or for every allowed update a
scan found, and their dependency-side records for ``GET /jobs``.

An update job is a ``deps.update`` job of the job engine plus an ``update_jobs`` row: the
engine runs it (``deps/updating.py``), the row says what it changes and how it ended.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.deps.ecosystems import ECOSYSTEMS
from forgeyard.jobs import enqueue
from forgeyard.kernel.errors import ConflictError, InvalidInputError
from forgeyard.models.deps import Dependency, DependencyUpdate, PullRequest, UpdateJob
from forgeyard.models.job import FINISHED, Job
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos

UPDATE_KIND = "deps.update"


async def start_update_job(
    *,
    session: AsyncSession,
    who: Principal,
    repo_id: str,
    dependency: str,
    target_version: str,
    ecosystem: str | None = None,
) -> tuple[Job, UpdateJob]:
    repository = await repos.get_repo(session=session, who=who, repo_id=repo_id)
    query = select(Dependency).where(
        Dependency.repository_id == repository.id, Dependency.name == dependency
    )
    if ecosystem is not None:
        query = query.where(Dependency.ecosystem == ecosystem)
    declared = list(await session.scalars(query))
    if not declared:
        raise InvalidInputError(
            f"{dependency} is not a dependency of {repository.name} (as of its last scan)",
            details={"field": "dependency"},
        )
    if len({d.ecosystem for d in declared}) > 1:
        raise InvalidInputError(
            f"{dependency} is declared in several ecosystems; say which in `ecosystem`",
            details={"field": "ecosystem"},
        )
    return await _start_one(session, repository, declared, target_version)


async def _start_one(
    session: AsyncSession, repository: Repository, declared: list[Dependency], target_version: str
) -> tuple[Job, UpdateJob]:
    ecosystem = ECOSYSTEMS[declared[0].ecosystem]
    try:
        ecosystem.compare(target_version, target_version)
    except ValueError:
        raise InvalidInputError(
            f"{target_version!r} is not a {ecosystem.name} version",
            details={"field": "target_version"},
        ) from None
    return await _start(session, repository, declared, target_version, group=None)


async def enqueue_allowed(*, session: AsyncSession, repository: Repository) -> list[str]:
    """An update job for each allowed update (one per group), unless one for the same change
    is already queued or running or has an open pull request."""
    rows = await session.execute(
        select(DependencyUpdate, Dependency)
        .join(Dependency, Dependency.id == DependencyUpdate.dependency_id)
        .where(
            DependencyUpdate.repository_id == repository.id,
            DependencyUpdate.blocked.is_(False),
            DependencyUpdate.candidate_version.is_not(None),
        )
        .order_by(Dependency.name)
    )
    batches: dict[str, list[tuple[DependencyUpdate, Dependency]]] = {}
    for update, dependency in rows.all():
        batches.setdefault(update.group_name or f"\0{dependency.name}", []).append(
            (update, dependency)
        )
    started = []
    for key, batch in batches.items():
        group = None if key.startswith("\0") else key
        target = batch[0][0].candidate_version or ""
        try:
            job, _ = await _start(
                session, repository, [d for _, d in batch], target, group=group, updates=batch
            )
        except ConflictError:
            continue
        started.append(job.id)
    return started


async def _start(
    session: AsyncSession,
    repository: Repository,
    declared: list[Dependency],
    target: str,
    *,
    group: str | None,
    updates: list[tuple[DependencyUpdate, Dependency]] | None = None,
) -> tuple[Job, UpdateJob]:
    wanted = {d.id: u.candidate_version for u, d in updates} if updates else {}
    changes = [
        {
            "dependency_id": d.id,
            "ecosystem": d.ecosystem,
            "name": d.name,
            "manifest_path": d.manifest_path,
            "from_version": d.current_version,
            "to_version": wanted.get(d.id) or target,
        }
        for d in declared
    ]
    label = group or declared[0].name
    await _refuse_duplicate(session, repository, label, changes, automatic=updates is not None)
    enqueued = await enqueue(
        session,
        UPDATE_KIND,
        payload={"repository_id": repository.id},
        organization_id=repository.organization_id,
        repository_id=repository.id,
        max_attempts=2,
    )
    record = UpdateJob(
        job_id=enqueued.id,
        organization_id=repository.organization_id,
        repository_id=repository.id,
        dependency=label,
        group_name=group,
        changes=changes,
        from_version=declared[0].current_version if group is None else None,
        to_version=target if group is None else f"{len(changes)} updates",
    )
    session.add(record)
    await session.flush()
    job = await session.get(Job, enqueued.id)
    assert job is not None
    return job, record


async def _refuse_duplicate(
    session: AsyncSession,
    repository: Repository,
    label: str,
    changes: list[dict[str, str | None]],
    *,
    automatic: bool,
) -> None:
    """409 when the same moves are queued, running or proposed by an open pull request; a
    scan (``automatic``) also leaves alone moves whose last job failed: retrying them is a
    person's call (``POST /jobs``)."""
    wanted = sorted((str(c["name"]), str(c["to_version"])) for c in changes)
    rows = await session.execute(
        select(UpdateJob, Job.status)
        .join(Job, Job.id == UpdateJob.job_id)
        .where(UpdateJob.repository_id == repository.id, UpdateJob.dependency == label)
    )
    for record, status in rows.all():
        same = sorted((c["name"], c["to_version"]) for c in record.changes) == wanted
        if not same:
            continue
        if status not in FINISHED:
            raise ConflictError(
                f"an update job for {label} is already {status}: {record.job_id}",
                details={"job_id": record.job_id},
            )
        if record.pull_request_id and await _open(session, record.pull_request_id):
            raise ConflictError(
                f"pull request {record.pull_request_id} already proposes this update",
                details={"pull_request_id": record.pull_request_id},
            )
        if automatic and record.outcome == "failed":
            raise ConflictError(
                f"the last update job for {label} failed: {record.job_id}",
                details={"job_id": record.job_id},
            )


async def _open(session: AsyncSession, pull_request_id: str) -> bool:
    pull = await session.get(PullRequest, pull_request_id)
    return pull is not None and pull.status == "open"


async def update_job_views(
    *, session: AsyncSession, organization_id: str, job_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """For those of ``job_ids`` that are the organization's update jobs, the fields
    ``GET /jobs`` adds: seed 000's dependency, versions and confidence, and ``update``."""
    if not job_ids:
        return {}
    rows = await session.scalars(
        select(UpdateJob).where(
            UpdateJob.organization_id == organization_id, UpdateJob.job_id.in_(job_ids)
        )
    )
    return {row.job_id: _view(row) for row in rows}


def _view(record: UpdateJob) -> dict[str, Any]:
    return {
        "dependency": record.dependency,
        "from_version": record.from_version,
        "to_version": record.to_version,
        "confidence": record.confidence,
        "completed_at": record.completed_at,
        "update": {
            "outcome": record.outcome,
            "group": record.group_name,
            "changes": record.changes,
            "branch": record.branch,
            "base_commit": record.base_commit,
            "confidence": record.confidence_factors,
            "test_summary": record.test_summary,
            "new_findings": record.new_findings,
            "failure": record.failure,
            "pull_request_id": record.pull_request_id,
        },
    }
