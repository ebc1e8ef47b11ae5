"""From one dependency and what its registry knows to the update to propose, or none.

Pure: no database, no network. The caller brings the dependency (from an ecosystem's
``parse``), the registry's :class:`PackageInfo`, the package's advisories, the dependency's
settings and the repository's policy, and :func:`detect` says which version to move to, what
kind of change it is, and everything that blocks it. A blocked update is still returned, with
its reasons, so users see why nothing was proposed. ``docs/dependencies.md`` ("Update
detection") states the rules.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import nodesemver
from packaging.version import Version

from forgeyard.deps.ecosystems.base import Dependency, Ecosystem
from forgeyard.deps.registries.base import PackageInfo, Release
from forgeyard.deps.vulnerabilities import Advisory, affects, severity_rank

SemverChange = Literal["major", "minor", "patch"]
Category = Literal["major", "minor", "patch", "prerelease", "security"]
CurrentSource = Literal["lock", "lowest-allowed"]
MAJOR_REASON = "a major update and ignore_major is set"
UNKNOWN_AGE_REASON = (
    "release age unknown: the registry serves no release dates; min_release_age cannot be checked"
)


@dataclass(frozen=True)
class DepSettings:
    """What a user set on one dependency."""

    skip: bool = False
    pin: str | None = None  # a version or range in the ecosystem's syntax
    pin_reason: str | None = None
    pin_expires_at: datetime | None = None  # the pin lifts itself after this instant
    ignore_major: bool = False


@dataclass(frozen=True)
class Group:
    """Updates proposed together. A group matches an update when its name matches one of
    ``patterns`` (fnmatch; empty: any name) and its category or semver change is one of
    ``update_types`` (empty: any)."""

    name: str
    patterns: tuple[str, ...] = ()
    update_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepoPolicy:
    exclude_packages: tuple[str, ...] = ()  # fnmatch globs on the dependency's name
    min_release_age_days: int = 0
    groups: tuple[Group, ...] = ()


@dataclass(frozen=True)
class Update:
    dependency: Dependency
    current: str
    current_source: CurrentSource  # "lock": resolved; "lowest-allowed": no lock, lowest match
    candidate: str
    category: Category
    semver_change: SemverChange
    advisories: tuple[Advisory, ...]  # affecting current, not candidate
    severity: str | None  # the highest of advisories'
    released_at: datetime | None
    age_days: float | None  # None when the registry serves no date (pypiserver)
    deprecated: str | None  # the candidate's deprecation message (npm); never yanked
    current_yanked: bool
    blocked: bool
    blocked_reasons: tuple[str, ...]
    group: str | None
    held_back: str | None = None  # a major version not proposed because of ignore_major
    notes: tuple[str, ...] = ()


def detect(
    dependency: Dependency,
    info: PackageInfo,
    *,
    ecosystem: Ecosystem,
    advisories: Sequence[Advisory],
    settings: DepSettings,
    policy: RepoPolicy,
    now: datetime,
) -> Update | None:
    """The update to propose for ``dependency``, or None when no newer release exists (or
    the dependency is a URL, path or dist-tag reference, or its current version cannot be
    established). Raises :class:`ValueError` for a naive ``now`` or an unreadable resolved
    version."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if dependency.reference is not None:
        return None
    releases = [r for r in info.releases if _readable(ecosystem, r.version)]
    found = _current(dependency, releases, ecosystem)
    if found is None:
        return None
    current, source = found
    current_release = _release(ecosystem, current)
    current_pre = ecosystem.is_prerelease(current)

    def eligible(release: Release) -> bool:
        if release.yanked or ecosystem.compare(release.version, current) <= 0:
            return False
        if not ecosystem.is_prerelease(release.version):
            return True
        # A prerelease only for a current prerelease, and only of the same release.
        return current_pre and _release(ecosystem, release.version) == current_release

    newer = sorted(
        (r for r in releases if eligible(r)),
        key=lambda r: _key(ecosystem)(r.version),
        reverse=True,
    )
    if not newer:
        return None
    chosen, held_back, notes = newer[0], None, []
    reasons: list[str] = []
    if settings.ignore_major and semver_change(ecosystem, current, chosen.version) == "major":
        same_major = [r for r in newer if semver_change(ecosystem, current, r.version) != "major"]
        if same_major:
            held_back, chosen = chosen.version, same_major[0]
            notes.append(f"{held_back} held back: {MAJOR_REASON}")
        else:
            reasons.append(MAJOR_REASON)
    candidate = chosen.version
    change = semver_change(ecosystem, current, candidate)
    fixed = tuple(
        a
        for a in advisories
        if affects(a, ecosystem, current, name=dependency.name)
        and not affects(a, ecosystem, candidate, name=dependency.name)
    )
    category: Category
    if fixed:
        category = "security"
    elif ecosystem.is_prerelease(candidate):
        category = "prerelease"
    else:
        category = change
    age = (now - chosen.published_at).total_seconds() / 86400 if chosen.published_at else None
    reasons = [
        *_policy_reasons(dependency.name, candidate, ecosystem, settings, policy, now),
        *reasons,
    ]
    if policy.min_release_age_days > 0 and category != "security":
        if age is None:
            reasons.append(UNKNOWN_AGE_REASON)
        elif age < policy.min_release_age_days:
            reasons.append(
                f"released {_days(int(age))} ago; the repository waits "
                f"{_days(policy.min_release_age_days)} (min_release_age)"
            )
    current_info = next((r for r in releases if r.version == current), None)
    return Update(
        dependency=dependency,
        current=current,
        current_source=source,
        candidate=candidate,
        category=category,
        semver_change=change,
        advisories=fixed,
        severity=max((a.severity for a in fixed), key=severity_rank, default=None),
        released_at=chosen.published_at,
        age_days=age,
        deprecated=chosen.deprecated,
        current_yanked=current_info is not None and current_info.yanked,
        blocked=bool(reasons),
        blocked_reasons=tuple(reasons),
        group=_group(dependency.name, category, change, policy.groups),
        held_back=held_back,
        notes=tuple(notes),
    )


def group_updates(updates: Iterable[Update]) -> dict[str | None, list[Update]]:
    """Updates by group name (None: proposed alone), in the order given."""
    grouped: dict[str | None, list[Update]] = {}
    for update in updates:
        grouped.setdefault(update.group, []).append(update)
    return grouped


def _policy_reasons(
    name: str,
    candidate: str,
    ecosystem: Ecosystem,
    settings: DepSettings,
    policy: RepoPolicy,
    now: datetime,
) -> list[str]:
    reasons: list[str] = []
    excluded_by = next((p for p in policy.exclude_packages if _matches(name, p)), None)
    if excluded_by is not None:
        reasons.append(f"excluded by exclude_packages pattern {excluded_by!r}")
    if settings.skip:
        reasons.append("skipped by the dependency's settings")
    pin, expires = settings.pin, settings.pin_expires_at
    if pin is not None and (expires is None or expires > now):
        until = f" until {expires.date().isoformat()}" if expires is not None else ""
        why = f": {settings.pin_reason}" if settings.pin_reason else ""
        try:
            allowed = ecosystem.satisfies(pin, candidate)
        except ValueError:
            reasons.append(f"pinned to {pin!r}{until}, which is not a valid version range{why}")
        else:
            if not allowed:
                reasons.append(f"pinned to {pin}{until}{why}")
    return reasons


def _current(
    dependency: Dependency, releases: list[Release], ecosystem: Ecosystem
) -> tuple[str, CurrentSource] | None:
    if dependency.resolved is not None:
        ecosystem.compare(dependency.resolved, dependency.resolved)  # ValueError if unreadable
        return dependency.resolved, "lock"
    allowed = []
    for release in releases:
        if release.yanked:
            continue
        try:
            ok = not dependency.specifier or ecosystem.satisfies(
                dependency.specifier, release.version
            )
        except ValueError:
            return None
        if ok:
            allowed.append(release.version)
    # The lowest stable version allowed; a prerelease only when nothing stable is.
    stable = [v for v in allowed if not ecosystem.is_prerelease(v)]
    pool = stable or allowed
    if not pool:
        return None
    return min(pool, key=_key(ecosystem)), "lowest-allowed"


def _readable(ecosystem: Ecosystem, version: str) -> bool:
    try:
        ecosystem.is_prerelease(version)
        ecosystem.compare(version, version)
    except ValueError:
        return False
    return True


def _release(ecosystem: Ecosystem, version: str) -> tuple[int, int, int]:
    """major, minor, patch with the ecosystem's own parser (missing parts are 0)."""
    parts: tuple[int, ...]
    if ecosystem.name == "pypi":
        parts = Version(version).release
    elif ecosystem.name == "npm":
        parsed = nodesemver.make_semver(version, False)
        parts = (int(parsed.major), int(parsed.minor), int(parsed.patch))
    else:
        parts = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
    padded = (*parts, 0, 0, 0)
    return padded[0], padded[1], padded[2]


def semver_change(ecosystem: Ecosystem, current: str, candidate: str) -> SemverChange:
    """Which component moved; a move within one release (2.0rc1 → 2.0, 1.0 → 1.0.post1) and a
    fourth component count as a patch."""
    old, new = _release(ecosystem, current), _release(ecosystem, candidate)
    if old[0] != new[0]:
        return "major"
    return "minor" if old[1] != new[1] else "patch"


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def _group(name: str, category: str, change: str, groups: Sequence[Group]) -> str | None:
    for group in groups:
        if group.patterns and not any(_matches(name, p) for p in group.patterns):
            continue
        if group.update_types and not {category, change} & set(group.update_types):
            continue
        return group.name
    return None


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def _key(ecosystem: Ecosystem) -> Callable[[str], Any]:
    """A sort key ordering versions with the ecosystem's compare."""
    return functools.cmp_to_key(ecosystem.compare)
