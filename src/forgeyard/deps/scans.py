"""A scan's database side: the policy and per-dependency settings it reads, and recording
what it found (dependencies upserted with their settings kept, updates replaced)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from forgeyard.deps.detection import DepSettings, Group, RepoPolicy, Update
from forgeyard.deps.ecosystems import Dependency
from forgeyard.deps.scanning import ScanResult
from forgeyard.deps.vulnerabilities import Advisory
from forgeyard.models.deps import Dependency as DependencyRow
from forgeyard.models.deps import DependencyUpdate
from forgeyard.models.repo import Repository
from forgeyard.repos import service as repos

Key = tuple[str, str, str]  # (ecosystem, name, manifest path)


def key_of(dependency: Dependency) -> Key:
    return (dependency.ecosystem, dependency.name, dependency.manifest)


def policy_of(repository: Repository) -> RepoPolicy:
    chosen = repos.settings_of(repository)
    return RepoPolicy(
        exclude_packages=tuple(chosen.exclude_packages),
        min_release_age_days=chosen.min_release_age,
        groups=tuple(
            Group(name=g.name, patterns=tuple(g.patterns), update_types=tuple(g.update_types))
            for g in chosen.groups
        ),
    )


def settings_of(row: DependencyRow) -> DepSettings:
    return DepSettings(
        skip=row.skip,
        pin=row.pin,
        pin_reason=row.pin_reason,
        pin_expires_at=row.pin_expires_at,
        ignore_major=row.ignore_major,
    )


async def rows_of(session: AsyncSession, repository_id: str) -> dict[Key, DependencyRow]:
    rows = await session.scalars(
        select(DependencyRow).where(DependencyRow.repository_id == repository_id)
    )
    return {(r.ecosystem, r.name, r.manifest_path): r for r in rows}


async def record(
    session: AsyncSession, repository: Repository, result: ScanResult, now: datetime
) -> None:
    """Write what a scan found: one row per declaration (a user's settings survive a
    rescan; a declaration gone from the manifests goes, settings and all), one update per
    dependency that has one, and the registry's error where it could not answer."""
    existing = await rows_of(session, repository.id)
    seen: dict[Key, DependencyRow] = {}
    for dependency in result.dependencies:
        key = key_of(dependency)
        if key in seen:
            continue  # declared twice in one manifest (markers): the first declaration wins
        row = existing.pop(key, None) or DependencyRow(
            organization_id=repository.organization_id,
            repository_id=repository.id,
            ecosystem=dependency.ecosystem,
            name=dependency.name,
            manifest_path=dependency.manifest,
        )
        row.scope = dependency.group[:100]
        row.specifier = dependency.specifier[:500]
        row.current_version = dependency.resolved
        row.line = dependency.line
        session.add(row)
        seen[key] = row
    # A manifest that could not be read this time keeps what the last scan found in it,
    # settings and updates included: one bad commit must not wipe a user's pins.
    unread = {key: row for key, row in existing.items() if key[2] in result.manifest_errors}
    for key, gone in existing.items():
        if key not in unread:
            await session.delete(gone)
    replaced = delete(DependencyUpdate).where(DependencyUpdate.repository_id == repository.id)
    kept = [row.id for row in unread.values()]
    if kept:
        replaced = replaced.where(DependencyUpdate.dependency_id.not_in(kept))
    await session.execute(replaced)
    await session.flush()
    for update in result.updates:
        declared = seen.get(key_of(update.dependency))
        if declared is not None:
            declared.current_version = update.current
            session.add(_update_row(repository, declared, update, now))
    for dependency in result.dependencies:
        error = result.registry_errors.get((dependency.ecosystem, dependency.name))
        failed = seen.get(key_of(dependency))
        if error and failed is not None and dependency.reference is None:
            session.add(
                DependencyUpdate(
                    organization_id=repository.organization_id,
                    repository_id=repository.id,
                    dependency_id=failed.id,
                    current_version=dependency.resolved,
                    registry_error=error,
                    detected_at=now,
                )
            )
    await session.flush()
    await _note(session, repository, result)


async def _note(session: AsyncSession, repository: Repository, result: ScanResult) -> None:
    allowed = [u for u in result.updates if not u.blocked]
    message = (
        f"{len(result.dependencies)} dependencies, {len(allowed)} updates allowed, "
        f"{len(result.updates) - len(allowed)} blocked"
    )
    if result.registry_errors:
        message += f", {len(result.registry_errors)} registry errors"
    if result.manifest_errors:
        message += f"; could not read {', '.join(sorted(result.manifest_errors))}"
    await repos.note_dependency_scan(
        session=session,
        repository=repository,
        dependency_count=len(result.dependencies),
        outdated_count=len({(u.dependency.ecosystem, u.dependency.name) for u in allowed}),
        message=message,
        data={
            "manifest_errors": result.manifest_errors,
            "registry_errors": {
                f"{e}:{n}": error for (e, n), error in result.registry_errors.items()
            },
        },
    )


def _update_row(
    repository: Repository, row: DependencyRow, update: Update, now: datetime
) -> DependencyUpdate:
    return DependencyUpdate(
        organization_id=repository.organization_id,
        repository_id=repository.id,
        dependency_id=row.id,
        current_version=update.current,
        candidate_version=update.candidate,
        category=update.category,
        semver_change=update.semver_change,
        severity=update.severity,
        advisories=[_advisory(a) for a in update.advisories],
        released_at=update.released_at,
        deprecated=update.deprecated,
        current_yanked=update.current_yanked,
        blocked=update.blocked,
        blocked_reasons=list(update.blocked_reasons),
        group_name=update.group,
        held_back=update.held_back,
        notes=list(update.notes),
        detected_at=now,
    )


def _advisory(advisory: Advisory) -> dict[str, object]:
    return {
        "id": advisory.id,
        "aliases": list(advisory.aliases),
        "summary": advisory.summary,
        "severity": advisory.severity,
        "fixed_in": list(advisory.fixed_in),
    }
