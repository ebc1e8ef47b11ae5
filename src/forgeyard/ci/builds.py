"""Builds: started by hand, by a forge event or as a retry; listed, cancelled.

A build is created whole in one transaction: its commit resolved in the repository's mirror,
its pipeline resolved and signed, its steps laid out, and runners woken. Its status then moves
only along ``BUILD_TRANSITIONS`` (:func:`move`). Runners' side of a build is in ``runs.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.ci import specs
from forgeyard.ci.inbound import ForgeEvent
from forgeyard.ci.pipelines import DEFAULT_FILE, Pipeline, TriggerEvent, load_pipeline, resolve
from forgeyard.jobs import emit
from forgeyard.jobs.notify import notify_on_commit
from forgeyard.kernel import git
from forgeyard.kernel.db import get_owned, utcnow
from forgeyard.kernel.errors import ConflictError, InvalidInputError, NotFoundError
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.kernel.pagination import PageParams, paginate
from forgeyard.models.ci import (
    BUILD_TRANSITIONS,
    FINAL_BUILD_STATUSES,
    Build,
    BuildStatus,
    BuildStep,
    PipelineDefinition,
)
from forgeyard.models.repo import Repository
from forgeyard.protocol.resolved import ResolvedPipeline
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

NEW_BUILDS = "ci:builds"  # the wake-up topic of runners waiting for work
NUMBER_RETRIES = 5


def build_topic(build_id: str) -> str:
    """The wake-up topic of one build: new log lines, a status change, a cancellation."""
    return f"build:{build_id}"


@dataclass(frozen=True)
class _Chosen:
    definition: PipelineDefinition | None  # None: the repository's default file, unregistered
    pipeline: Pipeline


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
    project = await repos.get_project(session=session, who=who, project_id=project_id)
    repository = await _repository_in_project(session, who, repository_id, project.id)
    commit = await _resolve_ref(settings, repository, ref)
    chosen = await _choose_for_manual(
        session, settings, repository, project.id, commit, pipeline_id
    )
    branch = ref.removeprefix("refs/heads/")
    event = TriggerEvent(kind="manual", branch=None if branch.startswith("refs/") else branch)
    return await _new_build(
        session,
        settings,
        repository=repository,
        project_id=project.id,
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
    """One build per pipeline of the repository that ``event`` triggers. The mirror is
    fetched first when it does not have the event's commit yet."""
    repository = await repos.get_repo_in(
        session=session, organization_id=organization_id, repo_id=repository_id
    )
    if event.deleted or event.commit is None:
        return []
    commit = await _commit_of_event(settings, repository, event.commit)
    trigger = TriggerEvent(kind=event.kind, branch=event.branch, target_branch=event.target_branch)
    builds = []
    for chosen in await _candidates(session, settings, repository, commit):
        if chosen.pipeline.triggered_by(trigger):
            builds.append(
                await _new_build(
                    session,
                    settings,
                    repository=repository,
                    project_id=repository.project_id,
                    chosen=chosen,
                    ref=event.ref or f"refs/heads/{event.branch}",
                    commit=commit,
                    resolved=resolve(chosen.pipeline, trigger),
                    created_by_id=None,
                    pull_request=event.pull_request,
                )
            )
    return builds


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
    moved = await session.execute(
        update(Build)
        .where(Build.id == build.id, Build.status.in_(allowed_from))
        .values(status=to, error=error, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(build, ["status"])
        raise ConflictError(
            f"build {build.id} is {build.status}; it cannot become {to}",
            details={"build_id": build.id, "status": build.status},
        )
    await session.refresh(build)
    await notify_on_commit(session, [build_topic(build.id)])


async def finished(session: AsyncSession, build: Build) -> None:
    """Tell subscribers (webhooks, pull requests' confidence) how ``build`` ended."""
    await emit(
        session,
        "build.finished",
        {
            "build_id": build.id,
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
    chosen: _Chosen,
    ref: str,
    commit: str,
    resolved: ResolvedPipeline,
    created_by_id: str | None,
    pull_request: int | None = None,
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
            "pull_request_id": None if pull_request is None else str(pull_request),
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
    for _attempt in range(NUMBER_RETRIES):
        try:
            async with session.begin_nested():
                build = await _insert_numbered(
                    session, settings, repository, fields, pipeline, reused
                )
            break
        except IntegrityError:  # another build took the number in between: take the next
            continue
    else:
        raise ConflictError("too many builds started at once; try again", code="busy")
    await notify_on_commit(session, [NEW_BUILDS])
    return build


async def _insert_numbered(
    session: AsyncSession,
    settings: Settings,
    repository: Repository,
    fields: dict[str, Any],
    pipeline: ResolvedPipeline,
    reused: dict[int, BuildStep],
) -> Build:
    last = await session.scalar(
        select(func.max(Build.number)).where(Build.repository_id == repository.id)
    )
    build = Build(
        organization_id=repository.organization_id,
        repository_id=repository.id,
        number=(last or 0) + 1,
        spec="",
        signature="",
        **fields,
    )
    session.add(build)
    await session.flush()
    run = [i for i in range(len(pipeline.steps)) if i not in reused]
    build.spec, build.signature = specs.signed_spec(
        settings,
        build_id=build.id,
        commit=build.commit_sha,
        repository=repository.name,
        pipeline=pipeline,
        run=run,
    )
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
    return build


async def _repository_in_project(
    session: AsyncSession, who: Principal, repository_id: str, project_id: str
) -> Repository:
    try:
        repository = await repos.get_repo(session=session, who=who, repo_id=repository_id)
    except NotFoundError as exc:
        raise InvalidInputError(
            f"repository {repository_id} not found", details={"field": "repository_id"}
        ) from exc
    if repository.project_id != project_id:
        raise InvalidInputError(
            f"repository {repository_id} is not in project {project_id}",
            details={"field": "repository_id"},
        )
    return repository


async def _resolve_ref(settings: Settings, repository: Repository, ref: str) -> str:
    try:
        git.check_ref_name(ref)
        return await git.resolve(repos.mirror_path(settings, repository), ref)
    except (ValueError, git.GitError) as exc:
        raise InvalidInputError(
            f"ref {ref!r} is not in repository {repository.name} (fetched "
            f"{repository.last_fetched_at or 'never'})",
            details={"field": "ref"},
        ) from exc


async def _commit_of_event(settings: Settings, repository: Repository, commit: str) -> str:
    mirror = repos.mirror_path(settings, repository)
    try:
        return await git.resolve(mirror, commit)
    except git.GitError:
        await repos.fetch_mirror(
            repository=repository, settings=settings, box=instance_secret_box(settings)
        )
    try:
        return await git.resolve(mirror, commit)
    except git.GitError as exc:
        raise InvalidInputError(
            f"commit {commit} is not in repository {repository.name}, even after a fetch",
            details={"field": "commit"},
        ) from exc


async def _choose_for_manual(
    session: AsyncSession,
    settings: Settings,
    repository: Repository,
    project_id: str,
    commit: str,
    pipeline_id: str | None,
) -> _Chosen:
    candidates = await _candidates(session, settings, repository, commit)
    if pipeline_id is not None:
        for chosen in candidates:
            if chosen.definition is not None and chosen.definition.id == pipeline_id:
                return chosen
        raise InvalidInputError(
            f"pipeline {pipeline_id} is not one of project {project_id}'s pipelines for "
            f"{repository.name}, or its file is missing at {commit[:12]}",
            details={"field": "pipeline_id"},
        )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InvalidInputError(
            f"no pipeline: the project has none for {repository.name} and the commit has no "
            f"{DEFAULT_FILE}",
            details={"field": "pipeline_id"},
        )
    raise InvalidInputError(
        f"the project has {len(candidates)} pipelines for {repository.name}: name one",
        details={"field": "pipeline_id"},
    )


async def _candidates(
    session: AsyncSession, settings: Settings, repository: Repository, commit: str
) -> list[_Chosen]:
    """The pipelines that may build ``repository``: its project's stored ones and those read
    from its files; with none registered, its default file when the commit has one."""
    definitions = list(
        await session.scalars(
            select(PipelineDefinition)
            .where(
                PipelineDefinition.organization_id == repository.organization_id,
                PipelineDefinition.project_id == repository.project_id,
                (PipelineDefinition.repository_id.is_(None))
                | (PipelineDefinition.repository_id == repository.id),
            )
            .order_by(PipelineDefinition.name)
        )
    )
    if not definitions:
        text = await _file_at(settings, repository, commit, DEFAULT_FILE)
        return [] if text is None else [_Chosen(None, load_pipeline(text))]
    chosen = []
    for definition in definitions:
        if definition.content is not None:
            chosen.append(_Chosen(definition, load_pipeline(definition.content, source="stored")))
            continue
        path = definition.path or DEFAULT_FILE
        text = await _file_at(settings, repository, commit, path)
        if text is not None:
            chosen.append(_Chosen(definition, load_pipeline(text, source=path)))
    return chosen


async def _file_at(
    settings: Settings, repository: Repository, commit: str, path: str
) -> str | None:
    try:
        raw = await git.run_git(
            "cat-file", "blob", f"{commit}:{path}", cwd=repos.mirror_path(settings, repository)
        )
    except git.GitError:
        return None
    return raw.decode("utf-8", errors="replace")
