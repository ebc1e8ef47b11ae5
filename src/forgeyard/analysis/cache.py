"""The per-file report cache: one detector's report on one file content, reused by every
analysis that meets the same content again (the same blob id and detector version)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.analysis.detectors.base import Detector, FileRef, FileReport
from forgeyard.kernel.db import utcnow
from forgeyard.models.analysis import FileResult

Reports = dict[str, dict[str, FileReport]]  # detector name -> path -> report
BATCH = 500


async def load(
    *,
    session: AsyncSession,
    organization_id: str,
    files: Sequence[FileRef],
    detectors: Sequence[Detector],
) -> Reports:
    """The cached reports of ``files``, per detector and path."""
    reports: Reports = {detector.name: {} for detector in detectors}
    for detector in detectors:
        wanted = [f for f in files if detector.applies_to(f.path)]
        paths_by_blob: dict[str, list[str]] = {}
        for file in wanted:
            paths_by_blob.setdefault(file.blob, []).append(file.path)
        blobs = list(paths_by_blob)
        for start in range(0, len(blobs), BATCH):
            rows = await session.execute(
                select(FileResult.blob, FileResult.report).where(
                    FileResult.organization_id == organization_id,
                    FileResult.detector == detector.name,
                    FileResult.detector_version == detector.version,
                    FileResult.blob.in_(blobs[start : start + BATCH]),
                )
            )
            for blob, report in rows:
                parsed = FileReport.from_dict(report)
                for path in paths_by_blob[blob]:
                    reports[detector.name][path] = parsed
    return reports


def missing(
    files: Sequence[FileRef], detectors: Sequence[Detector], cached: Reports
) -> list[FileRef]:
    """The files some detector that applies to them has no cached report for."""
    return [
        file
        for file in files
        if any(
            detector.applies_to(file.path) and file.path not in cached.get(detector.name, {})
            for detector in detectors
        )
    ]


async def store(
    *,
    session: AsyncSession,
    organization_id: str,
    files: Sequence[FileRef],
    detectors: Sequence[Detector],
    reports: Reports,
) -> None:
    """Keep this run's reports, one row per (detector, version, blob); a row another
    analysis wrote meanwhile wins quietly."""
    now = utcnow()
    blob_of = {file.path: file.blob for file in files}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for detector in detectors:
        for path, report in reports.get(detector.name, {}).items():
            blob = blob_of.get(path)
            if blob is None:
                continue
            rows[(detector.name, blob)] = {
                "organization_id": organization_id,
                "detector": detector.name,
                "detector_version": detector.version,
                "blob": blob,
                "report": report.to_dict(),
                "created_at": now,
            }
    values = list(rows.values())
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for start in range(0, len(values), BATCH):
        statement = dialect.insert(FileResult).on_conflict_do_nothing(
            index_elements=["organization_id", "detector", "detector_version", "blob"]
        )
        await session.execute(statement, values[start : start + BATCH])
