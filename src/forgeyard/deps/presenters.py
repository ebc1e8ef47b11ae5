"""Rows into response shapes."""

from __future__ import annotations

from forgeyard.deps import schemas
from forgeyard.kernel.db import utcnow
from forgeyard.models.deps import (
    Dependency,
    DependencyUpdate,
    PackageRegistry,
    PullRequest,
    UpdateJob,
)
from forgeyard.models.job import Job


def update_out(update: DependencyUpdate, dependency: Dependency) -> schemas.UpdateOut:
    age = None
    if update.released_at is not None:
        age = round((utcnow() - update.released_at).total_seconds() / 86400, 2)
    return schemas.UpdateOut(
        id=update.id,
        repository_id=update.repository_id,
        dependency_id=dependency.id,
        dependency=dependency.name,
        ecosystem=dependency.ecosystem,
        manifest_path=dependency.manifest_path,
        current_version=update.current_version,
        candidate_version=update.candidate_version,
        category=update.category,
        semver_change=update.semver_change,
        severity=update.severity,
        advisories=update.advisories,
        released_at=update.released_at,
        age_days=age,
        deprecated=update.deprecated,
        current_yanked=update.current_yanked,
        blocked=update.blocked,
        blocked_reasons=update.blocked_reasons,
        group=update.group_name,
        held_back=update.held_back,
        notes=update.notes,
        registry_error=update.registry_error,
        detected_at=update.detected_at,
    )


def dependency_out(
    dependency: Dependency, update: DependencyUpdate | None
) -> schemas.DependencyOut:
    return schemas.DependencyOut(
        id=dependency.id,
        repository_id=dependency.repository_id,
        ecosystem=dependency.ecosystem,
        name=dependency.name,
        manifest_path=dependency.manifest_path,
        scope=dependency.scope,
        specifier=dependency.specifier,
        current_version=dependency.current_version,
        skip=dependency.skip,
        pin=dependency.pin,
        pin_reason=dependency.pin_reason,
        pin_expires_at=dependency.pin_expires_at,
        ignore_major=dependency.ignore_major,
        update_id=update.id if update is not None else None,
        latest_allowed=update.candidate_version if update is not None else None,
    )


def job_created(job: Job, record: UpdateJob) -> schemas.UpdateJobCreated:
    return schemas.UpdateJobCreated(
        id=job.id,
        status=job.status,
        repo_id=record.repository_id,
        dependency=record.dependency,
        from_version=record.from_version,
        target_version=record.to_version,
        created_at=job.created_at,
    )


def pull_request_out(pull: PullRequest) -> schemas.PullRequestOut:
    return schemas.PullRequestOut(
        id=pull.id,
        repository_id=pull.repository_id,
        job_id=pull.job_id,
        provider=pull.provider,
        number=pull.number,
        url=pull.url,
        title=pull.title,
        body=pull.body,
        status=pull.status,
        base_branch=pull.base_branch,
        head_branch=pull.head_branch,
        head_commit=pull.head_commit,
        confidence=pull.confidence,
        confidence_factors=pull.confidence_factors,
        diff_summary=pull.diff_summary,
        test_summary=pull.test_summary,
        merge_commit=pull.merge_commit,
        error=pull.error,
        created_at=pull.created_at,
        merged_at=pull.merged_at,
        closed_at=pull.closed_at,
    )


def registry_out(registry: PackageRegistry) -> schemas.RegistryOut:
    return schemas.RegistryOut(
        id=registry.id,
        ecosystem=registry.ecosystem,
        url=registry.url,
        username=registry.username,
        has_secret=registry.secret_encrypted is not None,
        repo_id=registry.repository_id,
        created_at=registry.created_at,
    )
