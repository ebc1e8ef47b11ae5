"""One update job from start to end: checkout, update, install, test, analyze, open the pull
request. No pull request unless install and tests pass; a failure ends the job with a report
(the stage, the command, the tail of its output, the suspected cause).

git, installs and tests run with no transaction open; each outcome is written in a short
transaction of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.analysis import service as analysis
from forgeyard.deps import (
    build,
    evidence,
    forges,
    private_registries,
    pull_texts,
    pulls,
    usage,
    worktrees,
)
from forgeyard.deps.ecosystems import ECOSYSTEMS, Dependency, ManifestError, UnsupportedRequirement
from forgeyard.deps.ecosystems.base import read_manifest
from forgeyard.deps.providers import ProviderError, PullRequestDraft
from forgeyard.jobs import JobContext, RetryLater, emit
from forgeyard.kernel import git
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.deps import UpdateJob
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings


class UpdateFailed(Exception):  # noqa: N818 - a job outcome, named as the API reports it
    """The job cannot go on; ``report`` says where and why, for the person reading it."""

    def __init__(self, stage: str, cause: str, **report: Any) -> None:
        super().__init__(cause)
        self.report = {"stage": stage, "suspected_cause": cause, **report}


@dataclass
class Outcome:
    stage: str = "checkout"  # the stage running, named in a report of an unforeseen error
    base: str = ""
    head: str = ""
    changed_paths: list[str] = field(default_factory=list)
    diff: list[worktrees.FileChange] = field(default_factory=list)
    tests: build.StageResult | None = None
    new_findings: list[dict[str, str]] = field(default_factory=list)

    async def enter(self, ctx: JobContext, stage: str) -> None:
        self.stage = stage
        await ctx.stage(stage)


# What git, a manifest, a forge or the operator's settings may refuse along the way: the job
# ends with a report naming the stage. Anything else is a bug, retried and then dead.
FORESEEN = (git.GitError, ManifestError, InvalidInputError, OSError)


async def run(ctx: JobContext, settings: Settings) -> None:
    async with ctx.transaction() as session:
        record = await session.get(UpdateJob, ctx.id)
        repository = None
        if record is not None:
            repository = await session.get(Repository, record.repository_id)
        if record is None or repository is None or record.outcome is not None:
            return  # deleted meanwhile, or a retry of a job that already ended
        configs = await private_registries.configs_for(
            session=session, repository=repository, settings=settings
        )
    access = build.RegistryAccess(
        pypi_index_url=configs["pypi"].pip_index_url(),
        npm_registry_url=configs["npm"].url,
        npm_token=configs["npm"].secret,
    )
    outcome = Outcome()
    try:
        await _work(ctx, settings, record, repository, access, outcome)
    except ProviderError as exc:
        if not exc.retryable:
            await _fail(ctx, record, UpdateFailed("open_pull_request", exc.message))
        raise RetryLater(exc.message) from None
    except UpdateFailed as failure:
        await _fail(ctx, record, failure)
    except FORESEEN as exc:
        await _fail(ctx, record, UpdateFailed(outcome.stage, _describe(exc)))


async def _fail(ctx: JobContext, record: UpdateJob, failure: UpdateFailed) -> None:
    async with ctx.transaction() as session:
        await _finish_failed(session, record.job_id, failure.report)
    raise failure


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message[:2000]


async def _work(
    ctx: JobContext,
    settings: Settings,
    record: UpdateJob,
    repository: Repository,
    access: build.RegistryAccess,
    outcome: Outcome,
) -> None:
    await outcome.enter(ctx, "checkout")
    mirror = repos.mirror_path(settings, repository)
    fetched = await repos.fetch_mirror(
        repository=repository, settings=settings, box=instance_secret_box(settings)
    )
    if not fetched.ok:
        raise UpdateFailed("checkout", f"the repository could not be fetched: {fetched.error}")
    target = repos.target_branch(repository, fetched)
    try:
        outcome.base = await git.resolve(mirror, f"refs/heads/{target}")
    except git.GitError:
        raise UpdateFailed("checkout", f"the target branch {target} does not exist") from None
    async with (
        worktrees.worktree(
            mirror, outcome.base, time_limit=settings.analysis.git_time_limit_seconds
        ) as tree,
        _work_dir() as work_dir,
    ):
        await _change_and_check(ctx, settings, record, repository, access, outcome, tree, work_dir)
    await outcome.enter(ctx, "open_pull_request")
    await _open_pull_request(ctx, settings, record, repository, target, outcome)


async def _change_and_check(
    ctx: JobContext,
    settings: Settings,
    record: UpdateJob,
    repository: Repository,
    access: build.RegistryAccess,
    outcome: Outcome,
    tree: Path,
    work_dir: Path,
) -> None:
    """Update, commit, then install and test a copy of the commit (the repository's code
    never runs inside the work tree, whose .git leads to the mirror), then analyse it."""
    await outcome.enter(ctx, "update")
    ecosystems, paths = await _update(tree, record)
    _raise_on_failure(
        await build.refresh_lock(
            tree,
            ecosystems,
            registries=access,
            work_dir=work_dir,
            time_limit=settings.deps.install_time_limit_seconds,
        )
    )
    outcome.head = await worktrees.commit_paths(tree, paths, pull_texts.title(record))
    outcome.diff = await worktrees.changes(tree, outcome.base, outcome.head)
    outcome.changed_paths = [change.path for change in outcome.diff]
    copy = await worktrees.export(tree, work_dir / "source")
    await _install_and_test(ctx, settings, repository, copy, ecosystems, access, outcome, work_dir)
    await outcome.enter(ctx, "analyze")
    outcome.new_findings = await analysis.new_findings(
        tree,
        outcome.base,
        outcome.head,
        outcome.changed_paths,
        enabled=repos.settings_of(repository).detectors,
        time_limit=settings.analysis.detector_time_limit_seconds,
    )


async def _open_pull_request(
    ctx: JobContext,
    settings: Settings,
    record: UpdateJob,
    repository: Repository,
    target: str,
    outcome: Outcome,
) -> None:
    branch = pull_texts.branch_name(record)
    async with ctx.transaction() as session:
        assessed = await evidence.assess(session, record, outcome.tests, len(outcome.new_findings))
    try:
        await repos.push_to_origin(
            repository=repository,
            settings=settings,
            box=instance_secret_box(settings),
            refspecs=[f"+{outcome.head}:refs/heads/{branch}"],
        )
    except git.GitError as exc:
        raise UpdateFailed(
            "open_pull_request", f"origin refused the branch {branch}: {exc}"
        ) from None
    draft = PullRequestDraft(
        repository=forges.forge_repository(repository),
        base=target,
        head=branch,
        title=pull_texts.title(record),
        body=pull_texts.body(record, assessed),
    )
    provider = forges.provider_for(repository, settings, base=target, head=branch)
    try:
        opened = await provider.open(draft)
    finally:
        await provider.aclose()
    details = {
        "job_id": record.job_id,
        "head_commit": outcome.head,
        "diff_summary": pull_texts.diff_summary(outcome.diff),
        "test_summary": pull_texts.test_summary(outcome.tests),
        "confidence": assessed["score"],
        "confidence_factors": assessed,
    }
    # The pull request and the job's end in one transaction: a retry finds the job ended
    # and opens nothing twice.
    async with ctx.transaction() as session:
        pull = await pulls.record_opened(
            session=session,
            repository=repository,
            provider=provider.name,
            draft=draft,
            opened=opened,
            details=details,
        )
        await _finish_completed(session, record.job_id, pull.id, outcome, branch, assessed)


@contextlib.asynccontextmanager
async def _work_dir() -> AsyncIterator[Path]:
    """Where installs keep their environment and caches, outside the work tree."""
    path = Path(tempfile.mkdtemp(prefix="forgeyard-build-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _update(tree: Path, record: UpdateJob) -> tuple[set[str], list[str]]:
    """Rewrite each declaration; returns the ecosystems touched and the files to commit
    (the manifests and their lock files: nothing an install leaves in the tree)."""
    touched: set[str] = set()
    paths: set[str] = set()
    for change in record.changes:
        ecosystem = ECOSYSTEMS[change["ecosystem"]]
        manifest = next(
            (m for m in ecosystem.find_manifests(tree) if m.path == change["manifest_path"]), None
        )
        if manifest is None:
            raise UpdateFailed("update", f"{change['manifest_path']} is gone from the branch")
        declared = _declared(ecosystem.parse(tree, manifest), change["name"])
        if declared is None:
            raise UpdateFailed(
                "update", f"{change['name']} is no longer declared in {manifest.path}"
            )
        text = read_manifest(tree, manifest.path)
        try:
            rewritten = ecosystem.rewrite(text, manifest.path, declared, change["to_version"])
        except (UnsupportedRequirement, ManifestError) as exc:
            raise UpdateFailed("update", str(exc)) from None
        (tree / manifest.path).write_text(rewritten, encoding="utf-8")
        ecosystem.update_lock(tree, manifest, declared, change["to_version"])
        touched.add(ecosystem.name)
        paths.update(p for p in (manifest.path, manifest.lock_path) if p)
    if not touched or not await _dirty(tree):
        raise UpdateFailed("update", "the manifests already allow this version: nothing to change")
    return touched, sorted(paths)


def _declared(dependencies: list[Dependency], name: str) -> Dependency | None:
    return next((d for d in dependencies if d.name == name), None)


async def _dirty(tree: Path) -> bool:
    return bool((await git.run_git("status", "--porcelain", cwd=tree)).strip())


async def _install_and_test(
    ctx: JobContext,
    settings: Settings,
    repository: Repository,
    tree: Path,
    ecosystems: set[str],
    access: build.RegistryAccess,
    outcome: Outcome,
    work_dir: Path,
) -> None:
    await outcome.enter(ctx, "install")
    installed = await build.install(
        tree,
        ecosystems,
        registries=access,
        work_dir=work_dir,
        time_limit=settings.deps.install_time_limit_seconds,
    )
    _raise_on_failure(installed)
    await outcome.enter(ctx, "test")
    outcome.tests = await build.run_tests(
        tree,
        ecosystems,
        command=repos.settings_of(repository).test_command,
        work_dir=work_dir,
        time_limit=settings.deps.test_time_limit_seconds,
    )
    _raise_on_failure(outcome.tests)


def _raise_on_failure(result: build.StageResult) -> None:
    if result.passed or result.skipped:
        return
    failure = result.failure
    if failure is None:
        raise UpdateFailed(result.stage, result.reason or f"the {result.stage} stage failed")
    raise UpdateFailed(
        failure.stage,
        failure.suspected_cause,
        command=failure.command,
        output_tail=failure.output_tail,
        failing_tests=list(failure.failing_tests),
    )


async def _finish_completed(
    session: AsyncSession,
    job_id: str,
    pull_request_id: str,
    outcome: Outcome,
    branch: str,
    assessed: dict[str, Any],
) -> None:
    record = await session.get(UpdateJob, job_id)
    if record is None:
        return
    record.branch = branch
    record.base_commit = outcome.base
    record.confidence = assessed["score"]
    record.confidence_factors = assessed
    record.outcome = "completed"
    record.completed_at = utcnow()
    record.pull_request_id = pull_request_id
    record.test_summary = pull_texts.test_summary(outcome.tests)
    record.new_findings = len(outcome.new_findings)
    await usage.count(session, record.organization_id, "jobs_completed")
    await emit(session, "job.completed", _event(record), organization_id=record.organization_id)


async def _finish_failed(session: AsyncSession, job_id: str, report: dict[str, Any]) -> None:
    record = await session.get(UpdateJob, job_id)
    if record is None:
        return
    record.outcome = "failed"
    record.completed_at = utcnow()
    record.failure = report
    await usage.count(session, record.organization_id, "jobs_failed")
    await emit(session, "job.failed", _event(record), organization_id=record.organization_id)


def _event(record: UpdateJob) -> dict[str, Any]:
    return {
        "job_id": record.job_id,
        "repository_id": record.repository_id,
        "dependency": record.dependency,
        "from_version": record.from_version,
        "to_version": record.to_version,
        "confidence": record.confidence,
        "pull_request_id": record.pull_request_id,
        "failure": record.failure,
    }
