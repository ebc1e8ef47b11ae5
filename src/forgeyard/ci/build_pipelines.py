"""Which commit and which pipelines a build runs: a ref or an event's commit resolved in the
repository's mirror, and the project's pipelines (stored, or read from the repository's files
at that commit; with none registered, the repository's default file)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.auth.principals import Principal
from forgeyard.ci.pipelines import DEFAULT_FILE, Pipeline, load_pipeline
from forgeyard.kernel import git
from forgeyard.kernel.errors import InvalidInputError, NotFoundError
from forgeyard.kernel.git_objects import ObjectReader
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.ci import PipelineDefinition
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings


@dataclass(frozen=True)
class Chosen:
    definition: PipelineDefinition | None  # None: the repository's default file, unregistered
    pipeline: Pipeline


async def repository_in_project(
    session: AsyncSession, who: Principal, repository_id: str, project_id: str
) -> Repository:
    """The repository, when it is one of the caller's project's; else 404 when there is no
    such project, 400 naming ``repository_id`` when there is. One query when all is well."""
    try:
        repository = await repos.get_repo(session=session, who=who, repo_id=repository_id)
    except NotFoundError:
        repository = None
    if repository is not None and repository.project_id == project_id:
        return repository  # the project is the organization's: the repository is
    await repos.get_project(session=session, who=who, project_id=project_id)
    if repository is None:
        raise InvalidInputError(
            f"repository {repository_id} not found", details={"field": "repository_id"}
        )
    raise InvalidInputError(
        f"repository {repository_id} is not in project {project_id}",
        details={"field": "repository_id"},
    )


def objects_of(settings: Settings, repository: Repository) -> ObjectReader:
    """What a build's creation reads the repository's mirror with: one git for every lookup."""
    return ObjectReader(repos.mirror_path(settings, repository))


async def resolve_ref(objects: ObjectReader, repository: Repository, ref: str) -> str:
    try:
        git.check_ref_name(ref)
        return await objects.commit(ref)
    except (ValueError, git.GitError) as exc:
        raise InvalidInputError(
            f"ref {ref!r} is not in repository {repository.name} (fetched "
            f"{repository.last_fetched_at or 'never'})",
            details={"field": "ref"},
        ) from exc


async def commit_of_event(settings: Settings, repository: Repository, commit: str) -> str:
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


async def choose_for_manual(
    session: AsyncSession,
    objects: ObjectReader,
    repository: Repository,
    project_id: str,
    commit: str,
    pipeline_id: str | None,
) -> Chosen:
    found = await candidates(session, objects, repository, commit)
    if pipeline_id is not None:
        for chosen in found:
            if chosen.definition is not None and chosen.definition.id == pipeline_id:
                return chosen
        raise InvalidInputError(
            f"pipeline {pipeline_id} is not one of project {project_id}'s pipelines for "
            f"{repository.name}, or its file is missing at {commit[:12]}",
            details={"field": "pipeline_id"},
        )
    if len(found) == 1:
        return found[0]
    if not found:
        raise InvalidInputError(
            f"no pipeline: the project has none for {repository.name} and the commit has no "
            f"{DEFAULT_FILE}",
            details={"field": "pipeline_id"},
        )
    raise InvalidInputError(
        f"the project has {len(found)} pipelines for {repository.name}: name one",
        details={"field": "pipeline_id"},
    )


async def candidates(
    session: AsyncSession, objects: ObjectReader, repository: Repository, commit: str
) -> list[Chosen]:
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
        text = await _file_at(objects, commit, DEFAULT_FILE)
        return [] if text is None else [Chosen(None, load_pipeline(text))]
    chosen = []
    for definition in definitions:
        if definition.content is not None:
            chosen.append(Chosen(definition, load_pipeline(definition.content, source="stored")))
            continue
        path = definition.path or DEFAULT_FILE
        text = await _file_at(objects, commit, path)
        if text is not None:
            chosen.append(Chosen(definition, load_pipeline(text, source=path)))
    return chosen


async def _file_at(objects: ObjectReader, commit: str, path: str) -> str | None:
    try:
        raw = await objects.blob(commit, path)
    except git.GitError:
        return None
    return None if raw is None else raw.decode("utf-8", errors="replace")
