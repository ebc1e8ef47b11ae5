"""Rows into response shapes."""

from __future__ import annotations

from forgeyard.analysis import schemas
from forgeyard.analysis.sessions import UPLOADED
from forgeyard.models.analysis import Analysis, Finding, UploadSession


def analysis_out(analysis: Analysis) -> schemas.AnalysisOut:
    return schemas.AnalysisOut(
        id=analysis.id,
        repository_id=analysis.repository_id,
        job_id=analysis.job_id,
        trigger=analysis.trigger,
        status=analysis.status,
        ref=analysis.ref,
        commit_sha=analysis.commit_sha,
        error=analysis.error,
        created_at=analysis.created_at,
        started_at=analysis.started_at,
        finished_at=analysis.finished_at,
        files_total=analysis.files_total,
        files_analysed=analysis.files_analysed,
        lines=analysis.lines,
        detectors=dict(analysis.detectors or {}),
        health_score=analysis.health_score,
        grade=analysis.grade,
        score_components=dict(analysis.score_components or {}),
        open_findings=dict(analysis.open_by_severity or {}),
        new_findings=dict(analysis.new_by_severity or {}),
        fixed_findings=analysis.fixed_count,
        gate_passed=analysis.gate_passed,
        gate_reasons=list(analysis.gate_reasons or []),
    )


def finding_out(finding: Finding) -> schemas.FindingOut:
    return schemas.FindingOut(
        id=finding.id,
        repository_id=finding.repository_id,
        fingerprint=finding.fingerprint,
        detector=finding.detector,
        rule_id=finding.rule_id,
        severity=finding.severity,
        status=finding.status,
        path=finding.path,
        line_start=finding.line_start,
        line_end=finding.line_end,
        message=finding.message,
        snippet=finding.snippet,
        symbol=finding.symbol,
        fixable=finding.fixable,
        first_analysis_id=finding.first_analysis_id,
        fixed_analysis_id=finding.fixed_analysis_id,
        ignored_reason=finding.ignored_reason,
        ignored_at=finding.ignored_at,
        created_at=finding.created_at,
        updated_at=finding.updated_at,
    )


def session_out(record: UploadSession, analysis: Analysis | None) -> schemas.SessionOut:
    return schemas.SessionOut(
        id=record.id,
        status=analysis.status if analysis else UPLOADED,
        filename=record.filename,
        archive_format=record.archive_format,
        size_bytes=record.size_bytes,
        files=record.files,
        repository_id=record.repository_id,
        analysis=analysis_out(analysis) if analysis else None,
        created_at=record.created_at,
    )
