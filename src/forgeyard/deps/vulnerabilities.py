"""Security advisories for packages, in the OSV format, behind one interface.

    VulnerabilitySource        advisories(ecosystem, name) -> every advisory for the package
     ├── OsvDatabase           an OSV export on disk: a directory of *.json, or an all.zip
     ├── RegistryAdvisories    advisories a registry served (PyPI's per-release list), as data
     └── CombinedSource        several sources, deduplicated by id and aliases

Whether an advisory affects a version is :func:`affects`: OSV ``affected[].ranges`` (types
``ECOSYSTEM`` and ``SEMVER``, events ``introduced``/``fixed``/``last_affected``) and
``affected[].versions``, evaluated with the ecosystem's own ``compare``. Severity comes from
``database_specific.severity`` only (GHSA's CRITICAL/HIGH/MODERATE/LOW); no CVSS library is
installed, so CVSS vectors are not scored and such an advisory's severity is None.
"""

from __future__ import annotations

import functools
import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from forgeyard.deps.ecosystems.base import Ecosystem

OSV_ECOSYSTEMS = {"PyPI": "pypi", "npm": "npm"}  # OSV's names -> ours
SEVERITIES = ("low", "medium", "high", "critical")  # lowest first
_SEVERITY_WORDS = {
    "critical": "critical",
    "high": "high",
    "moderate": "medium",
    "medium": "medium",
    "low": "low",
}
_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})


class AdvisoryError(ValueError):
    """An advisory file (or a zip member) that cannot be read; the message names it."""

    def __init__(self, origin: str, message: str) -> None:
        self.origin = origin
        self.message = message
        super().__init__(f"{origin}: {message}")


@dataclass(frozen=True)
class AffectedRange:
    type: str  # "ECOSYSTEM" or "SEMVER"
    events: tuple[tuple[str, str], ...]  # ("introduced", "0"), ("fixed", "1.2.3")…


@dataclass(frozen=True)
class Affected:
    ecosystem: str  # ours: "pypi", "npm"
    name: str  # normalised with normalise_name()
    ranges: tuple[AffectedRange, ...] = ()
    versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str | None  # "critical", "high", "medium", "low"; None when unknown
    affected: tuple[Affected, ...]
    fixed_in: tuple[str, ...]

    @property
    def names(self) -> frozenset[str]:
        """The id and every alias: two advisories sharing one describe the same flaw."""
        return frozenset((self.id, *self.aliases))


def normalise_name(ecosystem: str, name: str) -> str:
    """PEP 503 normalisation for Python; npm names are compared as written."""
    return canonicalize_name(name) if ecosystem == "pypi" else name


def severity_rank(severity: str | None) -> int:
    """0 for unknown, then 1 (low) to 4 (critical)."""
    return SEVERITIES.index(severity) + 1 if severity in SEVERITIES else 0


def parse_advisory(data: Any, origin: str, *, ecosystem: str | None = None) -> Advisory | None:
    """One OSV object as an :class:`Advisory`; None when it is withdrawn.

    ``ecosystem`` (ours) is used for ``affected`` entries that name none, and for PyPI's JSON
    API shape, which has ``fixed_in`` but no ``affected``. Raises :class:`AdvisoryError`."""
    if not isinstance(data, Mapping):
        raise AdvisoryError(origin, "an OSV advisory must be a JSON object")
    if data.get("withdrawn"):
        return None
    advisory_id = data.get("id")
    if not isinstance(advisory_id, str) or not advisory_id:
        raise AdvisoryError(origin, "the advisory has no 'id'")
    try:
        affected = tuple(_affected(entry, ecosystem) for entry in data.get("affected") or ())
        fixed = [str(v) for v in data.get("fixed_in") or ()]
        fixed += [v for a in affected for r in a.ranges for kind, v in r.events if kind == "fixed"]
        aliases = tuple(str(alias) for alias in data.get("aliases") or ())
        specific = data.get("database_specific") or {}
        word = specific.get("severity") if isinstance(specific, Mapping) else None
    except (TypeError, AttributeError, ValueError) as exc:
        raise AdvisoryError(origin, f"advisory {advisory_id} is not valid OSV ({exc})") from exc
    return Advisory(
        id=advisory_id,
        aliases=aliases,
        summary=str(data.get("summary") or data.get("details") or "").strip(),
        severity=_SEVERITY_WORDS.get(word.lower()) if isinstance(word, str) else None,
        affected=affected,
        fixed_in=tuple(dict.fromkeys(fixed)),
    )


def _affected(entry: Mapping[str, Any], default_ecosystem: str | None) -> Affected:
    package = entry.get("package") or {}
    osv_ecosystem = str(package.get("ecosystem") or "")
    ecosystem = OSV_ECOSYSTEMS.get(osv_ecosystem, osv_ecosystem) or default_ecosystem or ""
    ranges = tuple(
        AffectedRange(
            type=str(item.get("type", "")),
            events=tuple(
                (str(kind), str(version))
                for event in item.get("events") or ()
                for kind, version in event.items()
            ),
        )
        for item in entry.get("ranges") or ()
    )
    versions = tuple(str(version) for version in entry.get("versions") or ())
    return Affected(
        ecosystem, normalise_name(ecosystem, str(package.get("name", ""))), ranges, versions
    )


def affects(
    advisory: Advisory, ecosystem: Ecosystem, version: str, *, name: str | None = None
) -> bool:
    """Whether ``version`` is affected, per OSV's evaluation of ranges and version lists.

    Only ``affected`` entries of ``ecosystem`` count (and of ``name``, when given). Range
    events whose version the ecosystem cannot read are ignored, as are GIT ranges. An advisory
    with no ``affected`` entry but ``fixed_in`` (PyPI's JSON API) affects versions below its
    lowest fixed version."""
    wanted = normalise_name(ecosystem.name, name) if name is not None else None
    entries = [
        a
        for a in advisory.affected
        if a.ecosystem == ecosystem.name and (wanted is None or a.name == wanted)
    ]
    if not advisory.affected and advisory.fixed_in:
        readable = [v for v in advisory.fixed_in if _compare(ecosystem, v, v) == 0]
        lowest = min(readable, key=functools.cmp_to_key(ecosystem.compare), default=None)
        return lowest is not None and (_compare(ecosystem, version, lowest) or 0) < 0
    for entry in entries:
        if any(_compare(ecosystem, version, listed) == 0 for listed in entry.versions):
            return True
        if any(_in_range(ecosystem, version, r) for r in entry.ranges if r.type in _RANGE_TYPES):
            return True
    return False


def _compare(ecosystem: Ecosystem, a: str, b: str) -> int | None:
    try:
        return ecosystem.compare(a, b)
    except ValueError:
        return None


def _in_range(ecosystem: Ecosystem, version: str, found: AffectedRange) -> bool:
    readable = [
        (kind, v)
        for kind, v in found.events
        if kind in ("introduced", "fixed", "last_affected")
        and (v == "0" or _compare(ecosystem, v, v) == 0)
    ]

    def order(a: tuple[str, str], b: tuple[str, str]) -> int:
        if a[1] == "0" or b[1] == "0":
            return (b[1] == "0") - (a[1] == "0")
        return ecosystem.compare(a[1], b[1])

    affected = False
    for kind, bound in sorted(readable, key=functools.cmp_to_key(order)):
        cmp = 1 if bound == "0" else _compare(ecosystem, version, bound)
        if cmp is None:
            return False
        if kind == "introduced" and cmp >= 0:
            affected = True
        elif (kind == "fixed" and cmp >= 0) or (kind == "last_affected" and cmp > 0):
            affected = False
    return affected


class VulnerabilitySource(ABC):
    """Where advisories come from; ``ecosystem`` is ours ("pypi", "npm")."""

    @abstractmethod
    async def advisories(self, ecosystem: str, name: str) -> list[Advisory]:
        """Every advisory that names the package, affecting any version of it."""


class _Indexed(VulnerabilitySource):
    def __init__(self, advisories: Iterable[Advisory] = ()) -> None:
        self._index: dict[tuple[str, str], list[Advisory]] = {}
        for advisory in advisories:
            self.add(advisory)

    def add(self, advisory: Advisory, *, ecosystem: str = "", name: str = "") -> None:
        keys = {(a.ecosystem, a.name) for a in advisory.affected}
        if not keys and ecosystem:
            keys = {(ecosystem, normalise_name(ecosystem, name))}
        for key in keys:
            listed = self._index.setdefault(key, [])
            if all(existing.id != advisory.id for existing in listed):
                listed.append(advisory)

    def __len__(self) -> int:
        return len({a.id for listed in self._index.values() for a in listed})

    async def advisories(self, ecosystem: str, name: str) -> list[Advisory]:
        return list(self._index.get((ecosystem, normalise_name(ecosystem, name)), ()))


class OsvDatabase(_Indexed):
    """An OSV export loaded into memory, indexed by (ecosystem, normalised name)."""

    @classmethod
    def load(cls, path: str | Path) -> OsvDatabase:
        """Every ``*.json`` under a directory, or every ``.json`` member of a zip (the
        per-ecosystem ``all.zip`` layout); one OSV object per file. A file that is not JSON or
        not OSV raises :class:`AdvisoryError` naming it."""
        database = cls()
        for origin, raw in _files(Path(path)):
            try:
                data = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise AdvisoryError(origin, f"not JSON ({exc})") from exc
            advisory = parse_advisory(data, origin)
            if advisory is not None:
                database.add(advisory)
        return database


def _files(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            yield str(file), file.read_bytes()
        return
    if not path.is_file():
        raise AdvisoryError(str(path), "no such file or directory")
    try:
        with zipfile.ZipFile(path) as archive:
            for member in sorted(archive.namelist()):
                if member.endswith(".json"):
                    yield f"{path}:{member}", archive.read(member)
    except zipfile.BadZipFile as exc:
        raise AdvisoryError(str(path), f"not a zip archive ({exc})") from exc


class RegistryAdvisories(_Indexed):
    """Advisories a registry served: ``by_package`` maps a name to OSV-shaped dicts (PyPI's
    JSON API ``vulnerabilities`` entries: ``id``, ``aliases``, ``summary``, ``fixed_in``)."""

    def __init__(
        self, ecosystem: str, by_package: Mapping[str, Sequence[Mapping[str, Any]]]
    ) -> None:
        super().__init__()
        for name, entries in by_package.items():
            for index, entry in enumerate(entries):
                origin = f"{ecosystem} registry advisories for {name} [{index}]"
                advisory = parse_advisory(entry, origin, ecosystem=ecosystem)
                if advisory is not None:
                    self.add(advisory, ecosystem=ecosystem, name=name)


class CombinedSource(VulnerabilitySource):
    """Asks every source in order; an advisory whose id or alias was already seen is dropped,
    so the first source's copy of a flaw wins."""

    def __init__(self, sources: Sequence[VulnerabilitySource]) -> None:
        self.sources = tuple(sources)

    async def advisories(self, ecosystem: str, name: str) -> list[Advisory]:
        seen: set[str] = set()
        merged: list[Advisory] = []
        for source in self.sources:
            for advisory in await source.advisories(ecosystem, name):
                if advisory.names & seen:
                    continue
                seen |= advisory.names
                merged.append(advisory)
        return merged
