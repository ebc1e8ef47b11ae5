"""One analysis from start to end: fetch, checkout, one stage per detector, scoring.

No transaction is open while git or a detector runs; each stage's outcome is written in a
short transaction of its own. Files are analysed only when no report exists for their
content (git blob id) and the detector's version, so re-analysing a commit that changed one
file runs the detectors on that one file; every other report comes from the cache.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.analysis import cache, findings, gates, scoring, service
from forgeyard.analysis.detectors import DETECTORS
from forgeyard.analysis.detectors.base import Detector, FileRef, FileReport
from forgeyard.analysis.engine import run_detectors
from forgeyard.analysis.fingerprints import assign_fingerprints
from forgeyard.jobs import JobContext, emit
from forgeyard.kernel import git
from forgeyard.kernel.db import utcnow
from forgeyard.kernel.keys import instance_secret_box
from forgeyard.models.analysis import Analysis, AnalysisStatus
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos
from forgeyard.settings import Settings

Reports = dict[str, dict[str, FileReport]]  # detector name -> path -> report


class AnalysisError(Exception):
    """The analysis cannot finish; the message says why, for the person reading it."""


@dataclass(frozen=True)
class Checkout:
    commit: str
    files: list[FileRef]
    detectors: list[Detector]
    excluded: list[str]  # the repository's exclude_paths patterns


async def run(ctx: JobContext, settings: Settings) -> None:
    analysis_id = ctx.payload["analysis_id"]
    async with ctx.transaction() as session:
        analysis, repository = await _begin(session, analysis_id)
    if analysis is None or repository is None:
        return  # ended or deleted meanwhile
    await ctx.stage("fetch")
    await _fetch(ctx, repository, settings)
    ctx.checkpoint()
    await ctx.stage("checkout")
    checkout = await _checkout(repository, analysis, settings)
    async with ctx.transaction() as session:
        cached = await cache.load(
            session=session,
            organization_id=repository.organization_id,
            files=checkout.files,
            detectors=checkout.detectors,
        )
    missing = cache.missing(checkout.files, checkout.detectors, cached)
    await ctx.progress(message=f"{len(missing)} of {len(checkout.files)} files to analyse")
    fresh = await _analyse(ctx, repository, settings, checkout, missing)
    await ctx.stage("scoring")
    async with ctx.transaction() as session:
        await cache.store(
            session=session,
            organization_id=repository.organization_id,
            files=missing,
            detectors=checkout.detectors,
            reports=fresh,
        )
    reports = _merge(checkout, cached, fresh)
    # The project-wide detectors' conclusions are CPU work over every file: off the event
    # loop (heartbeats go on) and before any transaction opens.
    seen = await asyncio.to_thread(_seen, checkout, reports)
    async with ctx.transaction() as session:
        await _finish(session, analysis_id, checkout, reports, seen, len(missing))


async def _begin(
    session: AsyncSession, analysis_id: str
) -> tuple[Analysis | None, Repository | None]:
    analysis = await session.get(Analysis, analysis_id)
    if analysis is None or analysis.status not in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING):
        return None, None
    repository = await session.get(Repository, analysis.repository_id)
    service.move(analysis, AnalysisStatus.RUNNING)
    analysis.started_at = utcnow()
    await session.flush()
    return analysis, repository


async def _fetch(ctx: JobContext, repository: Repository, settings: Settings) -> None:
    result = await repos.fetch_mirror(
        repository=repository, settings=settings, box=instance_secret_box(settings)
    )
    async with ctx.transaction() as session:
        recorded = await repos.record_fetch(
            session=session,
            organization_id=repository.organization_id,
            repo_id=repository.id,
            result=result,
        )
    if recorded is None:  # deleted while git ran: the fetch may have remade its mirror
        repos.remove_mirror(repos.mirror_path(settings, repository), settings)
        raise AnalysisError("the repository was deleted")
    if not result.ok:
        raise AnalysisError(f"the repository could not be fetched: {result.error}")


async def _checkout(repository: Repository, analysis: Analysis, settings: Settings) -> Checkout:
    mirror = repos.mirror_path(settings, repository)
    chosen = repos.settings_of(repository)
    ref = analysis.ref or chosen.target_branch or "HEAD"
    try:
        commit = await git.resolve(mirror, ref)
        entries = await git.list_files(mirror, commit)
    except git.GitError as exc:
        raise AnalysisError(f"{ref} cannot be checked out: {exc}") from None
    excluded = chosen.exclude_paths
    files = [
        FileRef(entry.path, entry.blob, entry.size)
        for entry in entries
        if _readable_name(entry.path) and not findings.is_excluded(entry.path, excluded)
    ]
    detectors = [
        detector() for name, detector in DETECTORS.items() if chosen.detectors.get(name, True)
    ]
    return Checkout(commit, files, detectors, list(excluded))


def _readable_name(path: str) -> bool:
    """A path that is valid UTF-8: git allows any bytes, but they cannot be shown, stored
    or sent to a detector as text, so such files are left out of the analysis."""
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return True


async def _analyse(
    ctx: JobContext,
    repository: Repository,
    settings: Settings,
    checkout: Checkout,
    missing: list[FileRef],
) -> Reports:
    """Run the detectors on the files no report exists for, written to a scratch folder."""
    if not missing:
        for detector in checkout.detectors:
            await ctx.stage(detector.name)
        return {}
    scratch_root = settings.data_dir / "work"
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="analysis-", dir=scratch_root))
    try:
        await git.write_blobs(
            repos.mirror_path(settings, repository),
            [git.TreeEntry(f.path, f.blob, "100644", f.size) for f in missing],
            scratch,
            time_limit=settings.analysis.git_time_limit_seconds,
        )
        return await run_detectors(
            root=scratch,
            files=missing,
            detectors=checkout.detectors,
            processes=settings.analysis.processes,
            time_limit=settings.analysis.detector_time_limit_seconds,
            on_detector=ctx.stage,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _merge(checkout: Checkout, cached: Reports, fresh: Reports) -> Reports:
    """Every file's report per detector, from the cache or this run, keyed by path."""
    merged: Reports = {}
    for detector in checkout.detectors:
        name = detector.name
        merged[name] = {**cached.get(name, {}), **fresh.get(name, {})}
    return merged


def _seen(checkout: Checkout, reports: Reports) -> list[findings.Seen]:
    seen = []
    for detector in checkout.detectors:
        by_path = reports.get(detector.name, {})
        per_file = {path: list(report.findings) for path, report in by_path.items()}
        for project_finding in detector.combine(by_path):
            per_file.setdefault(project_finding.path, []).append(project_finding.finding)
        for path, raw in per_file.items():
            for finding, print_ in assign_fingerprints(path, raw, detector=detector.name):
                seen.append(
                    findings.Seen(
                        fingerprint=print_,
                        detector=detector.name,
                        rule_id=finding.rule_id,
                        severity=finding.severity,
                        path=path,
                        line_start=finding.line_start,
                        line_end=finding.line_end,
                        message=finding.message,
                        snippet=finding.snippet,
                        symbol=finding.symbol,
                        fixable=finding.fixable,
                    )
                )
    return seen


async def _finish(
    session: AsyncSession,
    analysis_id: str,
    checkout: Checkout,
    reports: Reports,
    seen: list[findings.Seen],
    analysed: int,
) -> None:
    analysis = await session.get(Analysis, analysis_id)
    repository = await session.get(Repository, analysis.repository_id) if analysis else None
    if analysis is None or repository is None or analysis.status != AnalysisStatus.RUNNING:
        return  # deleted, cancelled or closed meanwhile: nothing of this run is recorded
    outcome = await findings.reconcile(
        session=session,
        organization_id=analysis.organization_id,
        repository_id=analysis.repository_id,
        analysis_id=analysis.id,
        seen=seen,
        scope=findings.Scope(
            detectors=frozenset(d.name for d in checkout.detectors),
            excluded_paths=tuple(checkout.excluded),
        ),
    )
    inputs = scoring.inputs_from_reports(outcome.open_by_severity, reports)
    score = scoring.compute_score(inputs)
    verdict = gates.evaluate(
        gates.QualityGates.model_validate(repository.quality_gates or {}),
        score=score.value,
        new_by_severity=outcome.new_by_severity,
        open_by_severity=outcome.open_by_severity,
    )
    _record(analysis, checkout, inputs, score, outcome, verdict, analysed)
    await _announce(session, analysis, repository, verdict)


def _record(
    analysis: Analysis,
    checkout: Checkout,
    inputs: scoring.ScoreInputs,
    score: scoring.Score,
    outcome: findings.Outcome,
    verdict: gates.GateResult,
    analysed: int,
) -> None:
    service.move(analysis, AnalysisStatus.COMPLETED)
    analysis.commit_sha = checkout.commit
    analysis.files_total = len(checkout.files)
    analysis.files_analysed = analysed
    analysis.lines = inputs.lines_of_code
    analysis.detectors = {d.name: d.version for d in checkout.detectors}
    analysis.health_score = score.value
    analysis.grade = score.grade
    analysis.score_components = {**asdict(score), "inputs": asdict(inputs)}
    analysis.open_by_severity = outcome.open_by_severity
    analysis.new_by_severity = outcome.new_by_severity
    analysis.fixed_count = outcome.fixed
    analysis.gate_passed = verdict.passed
    analysis.gate_reasons = list(verdict.reasons)


async def _announce(
    session: AsyncSession, analysis: Analysis, repository: Repository, verdict: gates.GateResult
) -> None:
    summary = {
        "analysis_id": analysis.id,
        "repository_id": repository.id,
        "commit": analysis.commit_sha,
        "health_score": analysis.health_score,
        "grade": analysis.grade,
        "open_findings": analysis.open_by_severity,
        "new_findings": analysis.new_by_severity,
        "gate_passed": verdict.passed,
    }
    await repos.note_analysis(
        session=session,
        repository=repository,
        analysis_id=analysis.id,
        kind="analysed",
        message=f"analysed {analysis.commit_sha}: score {analysis.health_score} ({analysis.grade})",
        data=summary,
    )
    await emit(session, "analysis.completed", summary, organization_id=analysis.organization_id)
    if not verdict.passed:
        await repos.note_analysis(
            session=session,
            repository=repository,
            analysis_id=analysis.id,
            kind="gate_failed",
            message="; ".join(verdict.reasons),
            data={"reasons": list(verdict.reasons)},
        )
        await emit(
            session,
            "analysis.gate_failed",
            {**summary, "reasons": list(verdict.reasons)},
            organization_id=analysis.organization_id,
        )
    await session.flush()
