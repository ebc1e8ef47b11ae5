"""Builds, runners and artifacts into response shapes."""

from __future__ import annotations

from datetime import datetime

from forgeyard.ci import build_schemas as schemas
from forgeyard.models.ci import Artifact, Build, BuildStep, Runner, RunnerRegistrationToken


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


def step_out(step: BuildStep) -> schemas.StepOut:
    return schemas.StepOut(
        position=step.position,
        name=step.name,
        status=step.status,
        exit_code=step.exit_code,
        reused=step.reused,
        log_lines=step.log_lines,
        log_truncated=step.log_truncated,
        started_at=step.started_at,
        finished_at=step.finished_at,
        duration_seconds=_seconds(step.started_at, step.finished_at),
    )


def build_out(build: Build, steps: list[BuildStep]) -> schemas.BuildOut:
    return schemas.BuildOut(
        id=build.id,
        number=build.number,
        project_id=build.project_id,
        repository_id=build.repository_id,
        pipeline_id=build.pipeline_id,
        ref=build.ref,
        commit=build.commit_sha,
        event=build.event,
        status=build.status,
        runner_id=build.runner_id,
        attempts=build.attempts,
        cancel_requested=build.cancel_requested,
        retry_of_id=build.retry_of_id,
        error=build.error,
        steps=[step_out(step) for step in steps],
        queued_at=build.queued_at,
        started_at=build.started_at,
        finished_at=build.finished_at,
        duration_seconds=_seconds(build.started_at, build.finished_at),
    )


def artifact_out(artifact: Artifact) -> schemas.ArtifactOut:
    return schemas.ArtifactOut(
        id=artifact.id,
        build_id=artifact.build_id,
        path=artifact.path,
        size=artifact.size,
        sha256=artifact.sha256,
        created_at=artifact.created_at,
    )


def runner_out(runner: Runner) -> schemas.RunnerOut:
    return schemas.RunnerOut(
        id=runner.id,
        name=runner.name,
        labels=list(runner.labels),
        version=runner.version,
        status=runner.status,
        last_seen_at=runner.last_seen_at,
        created_at=runner.created_at,
    )


def registration_token_out(
    row: RunnerRegistrationToken, token: str | None = None
) -> schemas.RegistrationTokenOut:
    return schemas.RegistrationTokenOut(
        id=row.id,
        description=row.description,
        labels=list(row.labels),
        expires_at=row.expires_at,
        created_at=row.created_at,
        token=token,
    )
