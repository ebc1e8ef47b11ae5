"""Rows into response shapes; credentials and token hashes never leave through here."""

from __future__ import annotations

from typing import Any

from forgeyard.models.analysis import Analysis
from forgeyard.models.repo import GitUpload, RepoEvent, Repository
from forgeyard.repos import schemas
from forgeyard.repos.service import settings_of


def repo_out(repository: Repository) -> schemas.RepoOut:
    return schemas.RepoOut(
        id=repository.id,
        name=repository.name,
        project_id=repository.project_id,
        source=repository.source,
        clone_url=repository.clone_url,
        has_credentials=repository.credentials_encrypted is not None,
        status=repository.status,
        fetch_error=repository.fetch_error,
        default_branch=repository.default_branch,
        head_commit=repository.head_commit,
        last_fetched_at=repository.last_fetched_at,
        last_scan_at=repository.last_scan_at,
        dependency_count=repository.dependency_count,
        outdated_count=repository.outdated_count,
        settings=settings_of(repository),
        quality_gates=dict(repository.quality_gates or {}),
        created_at=repository.created_at,
        updated_at=repository.updated_at,
    )


def repo_detail(
    repository: Repository, scan: Analysis | None, dependencies: list[dict[str, Any]]
) -> schemas.RepoDetail:
    last = None
    if scan is not None:
        last = schemas.LastScan(
            analysis_id=scan.id,
            status=scan.status,
            commit_sha=scan.commit_sha,
            health_score=scan.health_score,
            grade=scan.grade,
            open_findings=dict(scan.open_by_severity or {}),
            gate_passed=scan.gate_passed,
            finished_at=scan.finished_at,
        )
    return schemas.RepoDetail(
        **repo_out(repository).model_dump(), last_scan=last, dependencies=dependencies
    )


def event_out(event: RepoEvent) -> schemas.RepoEventOut:
    return schemas.RepoEventOut(
        id=event.id,
        kind=event.kind,
        message=event.message,
        data=dict(event.data or {}),
        created_at=event.created_at,
    )


def upload_out(upload: GitUpload, push_url: str) -> schemas.GitUploadOut:
    return schemas.GitUploadOut(
        id=upload.id,
        repository_id=upload.repository_id,
        repository_name=upload.repository_name,
        push_url=push_url,
        username="forgeyard",
        expires_at=upload.expires_at,
        pushes=upload.pushes,
        last_push_at=upload.last_push_at,
        created_at=upload.created_at,
    )
