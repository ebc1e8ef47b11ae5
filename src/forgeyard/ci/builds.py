"""Builds: started by hand, by a forge event or as a retry; listed, cancelled.

A build is created whole in one transaction: its commit resolved in the repository's mirror,
its pipeline resolved and signed, its steps laid out, and runners woken. Its status then moves
only along ``BUILD_TRANSITIONS`` (:func:`move`). Runners' side of a build is in ``runs.py``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.ci import build_pipelines, specs
from forgeyard.ci.inbound import ForgeEvent
from forgeyard.ci.pipelines import PipelineInvalid, TriggerEvent, resolve
from forgeyard.deps import service as deps
from forgeyard.jobs import emit
from forgeyard.jobs.notify import notify_on_commit
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import ConflictError, InvalidInputError
from forgeyard.kernel.ids import new_id
from forgeyard.kernel.logging import get_logger
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.ci import (
    BUILD_TRANSITIONS,
    FINAL_BUILD_STATUSES,
    Build,
    BuildCounter,
    BuildStatus,
    BuildStep,
)
from forgeyard.models.repo import Repository
from forgeyard.protocol.resolved import ResolvedPipeline
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

NEW_BUILDS = "ci:builds"  # the wake-up topic of runners waiting for work
log = get_logger(__name__)


def build_topic(build_id: str) -> str:
    """The wake-up topic of one build: new log lines, a status change, a cancellation."""
    return f"build:{build_id}"


async def get_build(*, session: AsyncSession, who: Principal, build_id: str) -> Build:
    return await get_owned(
        session, Build, build_id, organization_id=who.organization_id, kind="build", prefix="bld"
    )


async def steps_of(*, session: AsyncSession, build_ids: list[str]) -> dict[str, list[BuildStep]]:
    rows = await session.scalars(
        select(BuildStep).where(BuildStep.build_id.in_(build_ids)).order_by(BuildStep.position)
    )
    found: dict[str, list[BuildStep]] = {build_id: [] for build_id in build_ids}
    for step in rows:
        found[step.build_id].append(step)
    return found


async def list_builds(
    *, session: AsyncSession, who: Principal, filters: dict[str, Any], page: PageParams
) -> tuple[list[Build], int]:
    statement = select(Build).where(Build.organization_id == who.organization_id)
    for field in ("project_id", "repository_id", "status", "ref"):
        if filters.get(field) is not None:
            statement = statement.where(getattr(Build, field) == filters[field])
    return await paginate(session, statement.order_by(Build.queued_at.desc(), Build.id), page)


async def create_build(
    *,
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    project_id: str,
    repository_id: str,
    ref: str,
    pipeline_id: str | None,
) -> Build:
    """A manual build of ``ref``; 400 naming the field when the repository, the ref or the
    pipeline cannot be used."""
    repository = await build_pipelines.repository_in_project(
        session, who, repository_id, project_id
    )
    async with build_pipelines.objects_of(settings, repository) as objects:
        commit = await build_pipelines.resolve_ref(objects, repository, ref)
        chosen = await build_pipelines.choose_for_manual(
            session, objects, repository, project_id, commit, pipeline_id
        )
    branch = ref.removeprefix("refs/heads/")
    event = TriggerEvent(kind="manual", branch=None if branch.startswith("refs/") else branch)
    return await _new_build(
        session,
        settings,
        repository=repository,
        project_id=project_id,
        chosen=chosen,
        ref=ref,
        commit=commit,
        resolved=resolve(chosen.pipeline, event),
        created_by_id=who.user_id,
    )


async def start_for_event(
    *,
    session: AsyncSession,
    organization_id: str,
    repository_id: str,
    event: ForgeEvent,
    settings: Settings,
) -> list[Build]:
    """One build per pipeline of the repository that a forge's push or pull request event
    triggers. The mirror is fetched first when it does not have the event's commit yet. A
    pull request Forgeyard opened is linked, so its build's result reaches its confidence."""
    repository = await repos.get_repo_in(
        session=session, organization_id=organization_id, repo_id=repository_id
    )
    if event.deleted or event.commit is None:
        return []
    ours = None
    if event.pull_request is not None:
        ours = await deps.find_pull_request(
            session=session, repository_id=repository.id, number=event.pull_request
        )
    return await _start_triggered(
        session,
        settings,
        repository=repository,
        commit=await build_pipelines.commit_of_event(settings, repository, event.commit),
        trigger=TriggerEvent(
            kind=event.kind, branch=event.branch, target_branch=event.target_branch
        ),
        ref=event.ref or f"refs/heads/{event.branch}",
        pull_request_id=ours,
    )


async def start_for_pull_request(
    *, session: AsyncSession, settings: Settings, organization_id: str, pull: dict[str, Any]
) -> list[Build]:
    """Builds of a pull request Forgeyard opened (a ``pr.created`` event's data), on the
    commit it pushed: the pipelines its target branch's pull requests trigger."""
    if not pull.get("head_commit") or not pull.get("repository_id"):
        return []  # nothing pushed to build
    repository = await repos.get_repo_in(
        session=session, organization_id=organization_id, repo_id=pull["repository_id"]
    )
    return await _start_triggered(
        session,
        settings,
        repository=repository,
        commit=await build_pipelines.commit_of_event(settings, repository, pull["head_commit"]),
        trigger=TriggerEvent(
            kind="pull_request", branch=pull["head_branch"], target_branch=pull["base_branch"]
        ),
        ref=f"refs/heads/{pull['head_branch']}",
        pull_request_id=pull["pull_request_id"],
    )


async def _start_triggered(
    session: AsyncSession,
    settings: Settings,
    *,
    repository: Repository,
    commit: str,
    trigger: TriggerEvent,
    ref: str,
    pull_request_id: str | None,
) -> list[Build]:
    try:
        async with build_pipelines.objects_of(settings, repository) as objects:
            found = await build_pipelines.candidates(session, objects, repository, commit)
    except PipelineInvalid as invalid:  # nothing to build; a manual build shows the issues
        log.warning(
            "pipeline_invalid", repository_id=repository.id, commit=commit, error=str(invalid)
        )
        return []
    started = []
    for chosen in found:
        if chosen.pipeline.triggered_by(trigger):
            started.append(
                await _new_build(
                    session,
                    settings,
                    repository=repository,
                    project_id=repository.project_id,
                    chosen=chosen,
                    ref=ref,
                    commit=commit,
                    resolved=resolve(chosen.pipeline, trigger),
                    created_by_id=None,
                    pull_request_id=pull_request_id,
                )
            )
    return started


async def retry_build(
    *, session: AsyncSession, who: Principal, settings: Settings, build_id: str, failed_only: bool
) -> Build:
    """A new build of the same commit and the same resolved pipeline. ``failed_only`` runs
    again only the steps that did not succeed; the others are kept as they ended."""
    original = await get_build(session=session, who=who, build_id=build_id)
    if original.status not in FINAL_BUILD_STATUSES:
        raise ConflictError(
            f"build {build_id} is {original.status}; only a finished build can be retried",
            details={"build_id": build_id, "status": original.status},
        )
    if failed_only and original.status == BuildStatus.SUCCEEDED:
        raise InvalidInputError(
            f"build {build_id} succeeded: it has no failed steps to run again",
            details={"field": "failed_only"},
        )
    repository = await repos.get_repo_in(
        session=session, organization_id=who.organization_id, repo_id=original.repository_id
    )
    earlier = (await steps_of(session=session, build_ids=[original.id]))[original.id]
    kept = {s.position for s in earlier if s.status == "succeeded"} if failed_only else set()
    pipeline = specs.pipeline_of(original.spec)
    build = await _insert(
        session,
        settings,
        repository=repository,
        fields={
            "project_id": original.project_id,
            "pipeline_id": original.pipeline_id,
            "ref": original.ref,
            "commit_sha": original.commit_sha,
            "event": original.event,
            "labels": list(original.labels),
            "retry_of_id": original.id,
            "pull_request_id": original.pull_request_id,
            "created_by_id": who.user_id,
        },
        pipeline=pipeline,
        reused={s.position: s for s in earlier if s.position in kept},
    )
    await session.flush()
    return build


async def cancel_build(*, session: AsyncSession, who: Principal, build_id: str) -> Build:
    """A queued build ends here; a running one is asked to stop and its runner ends it."""
    build = await get_build(session=session, who=who, build_id=build_id)
    if build.status == BuildStatus.QUEUED:
        await move(session, build, BuildStatus.CANCELLED, error="cancelled before it started")
        await close_steps(session, build.id, "cancelled")
        await finished(session, build)
    elif build.status == BuildStatus.RUNNING:
        build.cancel_requested = True
        await session.flush()
        await notify_on_commit(session, [build_topic(build.id)])
    else:
        raise ConflictError(
            f"build {build_id} has already ended ({build.status})",
            details={"build_id": build_id, "status": build.status},
        )
    return build


async def move(
    session: AsyncSession, build: Build, to: BuildStatus, *, error: str | None = None, **values: Any
) -> None:
    """Move ``build`` to ``to`` along BUILD_TRANSITIONS, guarded by the status it has in the
    database: of two parties racing to end a build, one gets 409."""
    allowed_from = [s for s, onward in BUILD_TRANSITIONS.items() if to in onward]
    if to in FINAL_BUILD_STATUSES:
        values.setdefault("finished_at", utcnow())
    moved = await session.scalar(
        update(Build)
        .where(Build.id == build.id, Build.status.in_(allowed_from))
        .values(status=to, error=error, updated_at=utcnow(), **values)
        .returning(Build)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if moved is None:
        await session.refresh(build, ["status"])
        raise ConflictError(
            f"build {build.id} is {build.status}; it cannot become {to}",
            details={"build_id": build.id, "status": build.status},
        )
    await notify_on_commit(session, [build_topic(build.id)])


async def finished(session: AsyncSession, build: Build) -> None:
    """Tell subscribers (webhooks, pull requests' confidence) how ``build`` ended."""
    await emit(
        session,
        "build.finished",
        {
            "build_id": build.id,
            "number": build.number,
            "repository_id": build.repository_id,
            "project_id": build.project_id,
            "status": build.status,
            "commit": build.commit_sha,
            "ref": build.ref,
            "pull_request_id": build.pull_request_id,
            "error": build.error,
        },
        organization_id=build.organization_id,
    )


async def close_steps(session: AsyncSession, build_id: str, status: str) -> None:
    """End the steps that never ended (the build was cancelled, or ended without them)."""
    await session.execute(
        update(BuildStep)
        .where(BuildStep.build_id == build_id, BuildStep.status.in_(("pending", "running")))
        .values(status=status, finished_at=utcnow())
    )


async def _new_build(
    session: AsyncSession,
    settings: Settings,
    *,
    repository: Repository,
    project_id: str | None,
    chosen: build_pipelines.Chosen,
    ref: str,
    commit: str,
    resolved: ResolvedPipeline,
    created_by_id: str | None,
    pull_request_id: str | None = None,
) -> Build:
    build = await _insert(
        session,
        settings,
        repository=repository,
        fields={
            "project_id": project_id,
            "pipeline_id": chosen.definition.id if chosen.definition else None,
            "ref": ref,
            "commit_sha": commit,
            "event": resolved.event.kind,
            "created_by_id": created_by_id,
            "pull_request_id": pull_request_id,
        },
        pipeline=resolved,
        reused={},
    )
    return build


async def _insert(
    session: AsyncSession,
    settings: Settings,
    *,
    repository: Repository,
    fields: dict[str, Any],
    pipeline: ResolvedPipeline,
    reused: dict[int, BuildStep],
) -> Build:
    """The build with the repository's next number, its steps, its signed spec; runners are
    woken once the transaction commits."""
    build_id = new_id("bld")  # now, not at the insert: the spec it is signed into names it
    spec, signature = specs.signed_spec(
        settings,
        build_id=build_id,
        commit=fields["commit_sha"],
        repository=repository.name,
        pipeline=pipeline,
        run=[i for i in range(len(pipeline.steps)) if i not in reused],
    )
    build = Build(
        id=build_id,
        organization_id=repository.organization_id,
        repository_id=repository.id,
        number=await _next_number(session, repository.id),
        spec=spec,
        signature=signature,
        **fields,
    )
    session.add(build)
    for position, step in enumerate(pipeline.steps):
        kept = reused.get(position)
        session.add(
            BuildStep(
                build_id=build.id,
                position=position,
                name=step.name,
                status=kept.status if kept else "pending",
                exit_code=kept.exit_code if kept else None,
                reused=kept is not None,
                started_at=kept.started_at if kept else None,
                finished_at=kept.finished_at if kept else None,
            )
        )
    await session.flush()
    await notify_on_commit(session, [NEW_BUILDS])
    return build


async def _next_number(session: AsyncSession, repository_id: str) -> int:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(BuildCounter)
        .values(repository_id=repository_id, last_number=1)
        .on_conflict_do_update(
            index_elements=["repository_id"], set_={"last_number": BuildCounter.last_number + 1}
        )
        .returning(BuildCounter.last_number)
    )
    return int((await session.execute(statement)).scalar_one())
