"""One checked-out tree to its dependencies and the updates they could take.

No database: the caller brings the tree, a registry per ecosystem, a vulnerability source,
each dependency's settings and the repository's policy. Every registry is asked for all its
names at once; a registry that fails one name leaves that name's error beside the others'
results (``ScanResult.registry_errors``), and a manifest that cannot be read is reported
without stopping the scan. Advisories come from the caller's source first (an OSV export),
then from what the registries list against each current release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from forgeyard.deps.detection import DepSettings, RepoPolicy, Update, detect
from forgeyard.deps.ecosystems import ECOSYSTEMS, Dependency, ManifestError, find_all
from forgeyard.deps.registries import PackageInfo, Registry, RegistryError, lookup_many
from forgeyard.deps.vulnerabilities import (
    Advisory,
    CombinedSource,
    RegistryAdvisories,
    VulnerabilitySource,
)

PackageKey = tuple[str, str]  # (ecosystem, name)


@dataclass
class ScanResult:
    dependencies: list[Dependency] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    registry_errors: dict[PackageKey, str] = field(default_factory=dict)
    manifest_errors: dict[str, str] = field(default_factory=dict)  # manifest path -> message
    requests_made: int = 0


def read_dependencies(root: Path) -> tuple[list[Dependency], dict[str, str]]:
    """Every dependency every manifest under ``root`` declares, and the manifests that could
    not be read with why."""
    dependencies: list[Dependency] = []
    errors: dict[str, str] = {}
    for manifest in find_all(root):
        try:
            dependencies.extend(ECOSYSTEMS[manifest.ecosystem].parse(root, manifest))
        except ManifestError as exc:
            errors[manifest.path] = str(exc)
    return dependencies, errors


async def scan_tree(
    root: Path,
    *,
    registries: Mapping[str, Registry],
    advisories: VulnerabilitySource,
    settings_of: Callable[[Dependency], DepSettings],
    policy: RepoPolicy,
    now: datetime,
    concurrency: int = 16,
) -> ScanResult:
    dependencies, manifest_errors = await asyncio.to_thread(read_dependencies, root)
    result = ScanResult(dependencies=dependencies, manifest_errors=manifest_errors)
    infos = await _look_up(dependencies, registries, concurrency)
    served = await _served_advisories(dependencies, registries, concurrency)
    known = await _advisories(dependencies, CombinedSource([advisories, served]))
    for dependency in dependencies:
        key = (dependency.ecosystem, dependency.name)
        info = infos.get(key)
        if info is None:
            if dependency.reference is None and dependency.ecosystem not in registries:
                result.registry_errors[key] = f"no {dependency.ecosystem} registry is configured"
            continue
        if isinstance(info, RegistryError):
            result.registry_errors[key] = str(info)
            continue
        update = detect(
            dependency,
            info,
            ecosystem=ECOSYSTEMS[dependency.ecosystem],
            advisories=known.get(key, []),
            settings=settings_of(dependency),
            policy=policy,
            now=now,
        )
        if update is not None:
            result.updates.append(update)
    result.requests_made = sum(registry.requests_made for registry in registries.values())
    return result


async def _look_up(
    dependencies: list[Dependency], registries: Mapping[str, Registry], concurrency: int
) -> dict[PackageKey, PackageInfo | RegistryError]:
    names: dict[str, list[str]] = {}
    for dependency in dependencies:
        if dependency.reference is None and dependency.ecosystem in registries:
            names.setdefault(dependency.ecosystem, []).append(dependency.name)
    ecosystems = list(names)
    answers = await asyncio.gather(
        *(lookup_many(registries[e], names[e], concurrency=concurrency) for e in ecosystems)
    )
    return {
        (ecosystem, name): info
        for ecosystem, found in zip(ecosystems, answers, strict=True)
        for name, info in found.items()
    }


async def _served_advisories(
    dependencies: list[Dependency], registries: Mapping[str, Registry], concurrency: int
) -> VulnerabilitySource:
    """What the registries list against each dependency's current release (PyPI does, per
    release); a registry that cannot say is taken to know of none."""
    wanted = {
        (d.ecosystem, d.name): d.resolved
        for d in dependencies
        if d.resolved and d.reference is None and d.ecosystem in registries
    }
    limit = asyncio.Semaphore(concurrency)

    async def one(ecosystem: str, name: str, version: str) -> list[dict[str, Any]]:
        async with limit:
            try:
                return await registries[ecosystem].vulnerabilities(name, version)
            except RegistryError:
                return []

    keys = list(wanted)
    found = await asyncio.gather(*(one(e, n, wanted[(e, n)] or "") for e, n in keys))
    by_ecosystem: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (ecosystem, name), entries in zip(keys, found, strict=True):
        if entries:
            by_ecosystem.setdefault(ecosystem, {})[name] = entries
    return CombinedSource(
        [
            RegistryAdvisories(ecosystem, by_package)
            for ecosystem, by_package in by_ecosystem.items()
        ]
    )


async def _advisories(
    dependencies: list[Dependency], source: VulnerabilitySource
) -> dict[PackageKey, list[Advisory]]:
    keys = list(dict.fromkeys((d.ecosystem, d.name) for d in dependencies))
    found = await asyncio.gather(*(source.advisories(e, n) for e, n in keys))
    return dict(zip(keys, found, strict=True))
