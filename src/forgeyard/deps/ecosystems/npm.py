"""npm: ``package.json`` and its ``package-lock.json`` (or ``npm-shrinkwrap.json``), with npm's
range semantics from ``nodesemver``, a port of npm's own node-semver.

A rewrite changes one string value in the JSON text and nothing else. JSON parsers do not keep
positions, so the value is located by walking the text with the standard decoder's
``raw_decode``, member by member: every key, every value and every skipped byte is what the
decoder itself reads, and the parsed document only confirms what was found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import nodesemver

from forgeyard.deps.ecosystems.base import (
    Dependency,
    Ecosystem,
    Manifest,
    ManifestError,
    UnsupportedRequirement,
    dotted,
    line_at,
    raise_upper_bound,
    read_manifest,
    truncate,
    walk,
)

SECTIONS = {  # package.json key → group
    "dependencies": "main",
    "devDependencies": "dev",
    "optionalDependencies": "optional",
    "peerDependencies": "peer",
}
SECTION_OF_GROUP = {group: section for section, group in SECTIONS.items()}
LOCK_FILES = ("npm-shrinkwrap.json", "package-lock.json")  # npm prefers the shrinkwrap
OPERATORS = (">=", "<=", "~>", ">", "<", "^", "~", "=")  # longest first
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's insignificant whitespace
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class _Member:
    """One ``"key": value`` of a JSON object, by offsets into the text."""

    key: str
    key_at: int
    value_at: int
    value_end: int


class NpmEcosystem(Ecosystem):
    name = "npm"

    def find_manifests(self, root: Path) -> list[Manifest]:
        """Every ``package.json`` outside ``node_modules``; workspaces are not followed yet."""
        paths = walk(root, lambda file: file.name == "package.json")
        return [Manifest(self.name, path, _lock_beside(root, path)) for path in paths]

    def parse(self, root: Path, manifest: Manifest) -> list[Dependency]:
        text = read_manifest(root, manifest.path)
        _load(text, manifest.path)
        locked = _lock_versions(root, manifest.lock_path) if manifest.lock_path else {}
        dependencies: list[Dependency] = []
        for section in _members(text, _skip(text, 0)):
            group = SECTIONS.get(section.key)
            if group is None:
                continue
            if text[section.value_at] != "{":
                line = line_at(text, section.key_at)
                raise ManifestError(manifest.path, line, f"{section.key} must be an object")
            for member in _last_of_each(_members(text, section.value_at)):
                dependencies.append(self._dependency(text, manifest.path, group, member, locked))
        return dependencies

    def _dependency(
        self, text: str, path: str, group: str, member: _Member, locked: dict[str, str]
    ) -> Dependency:
        line = line_at(text, member.key_at)
        written = _DECODER.raw_decode(text, member.value_at)[0]
        if not isinstance(written, str):
            raise ManifestError(path, line, f"the range of {member.key} must be a string")
        is_range = nodesemver.valid_range(written, False) is not None
        exact = nodesemver.valid(written.strip().removeprefix("="), False) if is_range else None
        return Dependency(
            ecosystem=self.name,
            name=member.key,
            specifier=written,
            manifest=path,
            group=group,
            resolved=locked.get(member.key, None if exact is None else str(exact.version)),
            line=line,
            reference=None if is_range else written,
        )

    def rewrite(self, text: str, manifest_path: str, dependency: Dependency, target: str) -> str:
        data = _load(text, manifest_path)
        section = SECTION_OF_GROUP.get(dependency.group, "")
        sections = [m for m in _members(text, _skip(text, 0)) if m.key == section]
        declared = data.get(section)
        if not sections or not isinstance(declared, dict) or dependency.name not in declared:
            message = f"{dependency.name} is not declared in {section or dependency.group}"
            raise ManifestError(manifest_path, dependency.line, message)
        members = _members(text, sections[-1].value_at)
        member = [m for m in members if m.key == dependency.name][-1]  # JSON: the last one wins
        changed = rewrite_range(str(declared[dependency.name]), dependency.name, target)
        if changed is None:
            return text
        return text[: member.value_at] + json.dumps(changed) + text[member.value_end :]

    def satisfies(self, specifier: str, version: str) -> bool:
        """npm's rules: a prerelease matches only a comparator naming a prerelease of the same
        major.minor.patch, so ``^1.2.3`` allows 1.9.0 but not 1.9.0-rc.1."""
        if nodesemver.valid_range(specifier, False) is None:
            raise ValueError(f"not an npm version range: {specifier!r}")
        return bool(nodesemver.satisfies(version, specifier, False))

    def compare(self, a: str, b: str) -> int:
        return int(nodesemver.compare(a, b, False))

    def is_prerelease(self, version: str) -> bool:
        return bool(nodesemver.make_semver(version, False).prerelease)


def rewrite_range(written: str, name: str, target: str) -> str | None:
    """The npm range ``written`` changed so that ``target`` satisfies it, or None when it
    already does. Each comparator that excludes ``target`` keeps its operator and precision
    (``^1.2.3`` → ``^2.0.1``, ``~1.2`` → ``~2.0``, ``1.x`` → ``2.x``, ``1.2.3`` → ``2.0.1``);
    ``<`` is raised at its own granularity, ``<=`` and ``>=`` move to ``target``. Tags, URLs,
    paths, ``*``, alternatives (``||``) and hyphen ranges are refused."""
    nodesemver.make_semver(target, False)  # a ValueError for a target that is no version
    if nodesemver.valid_range(written, False) is None:
        reason = "it is a dist-tag, URL, path, git or workspace reference, not a version range"
        raise UnsupportedRequirement(name, written, reason)
    if written.strip() in ("", "*", "x", "X"):
        raise UnsupportedRequirement(name, written, "it allows any version")
    if "||" in written or " - " in written:
        reason = "alternatives (||) and hyphen ranges are not rewritten"
        raise UnsupportedRequirement(name, written, reason)
    if nodesemver.satisfies(target, written, False):
        return None
    changed = written
    for start, end in reversed(_comparators(written)):
        changed = changed[:start] + _rewrite_comparator(written[start:end], target) + changed[end:]
    if not nodesemver.satisfies(target, changed, False):
        raise UnsupportedRequirement(name, written, f"no minimal change allows {target}")
    return changed


def _comparators(written: str) -> list[tuple[int, int]]:
    """Spans of the comparators of a range, an operator written apart (``>= 1.2``) included."""
    spans: list[tuple[int, int]] = []
    pending: int | None = None
    for word in _WORD.finditer(written):
        if word.group() in OPERATORS:
            pending = word.start() if pending is None else pending
            continue
        spans.append((word.start() if pending is None else pending, word.end()))
        pending = None
    return spans


def _rewrite_comparator(comparator: str, target: str) -> str:
    if nodesemver.satisfies(target, comparator, False):
        return comparator
    operator = next((op for op in OPERATORS if comparator.startswith(op)), "")
    body = comparator[len(operator) :].lstrip().lstrip("vV")
    prefix = comparator[: len(comparator) - len(body)]  # operator, spaces, a "v": all kept
    version = nodesemver.make_semver(target, False)
    release = (int(version.major), int(version.minor), int(version.patch))
    if operator == "<":
        parts = _core(body).split(".")
        bound = tuple(int(part) for part in parts[: _numbers(parts)])
        return prefix + dotted(raise_upper_bound(bound, release))
    if operator in (">", ">="):
        return ">=" + prefix[len(operator) :] + target
    candidate = prefix + _same_precision(body, release)
    return candidate if nodesemver.satisfies(target, candidate, False) else prefix + target


def _core(body: str) -> str:
    """A written version without its prerelease and build: ``1.2.x-rc.1`` → ``1.2.x``."""
    return re.split(r"[-+]", body, maxsplit=1)[0]


def _numbers(parts: list[str]) -> int:
    """How many leading components are numbers (the rest are wildcards: ``x``, ``*``)."""
    return next((index for index, part in enumerate(parts) if not part.isdigit()), len(parts))


def _same_precision(body: str, release: tuple[int, int, int]) -> str:
    """``release`` with as many numbers as ``body`` and its wildcards: ``1.x`` → ``2.x``."""
    parts = _core(body).split(".")
    numbers = _numbers(parts)
    if numbers >= 3 or body != _core(body):
        return dotted(release)  # a full version, or one with a prerelease: the whole target
    return ".".join([str(part) for part in truncate(release, numbers)] + parts[numbers:])


def _load(text: str, path: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ManifestError(path, 1, "must be a JSON object")
    return data


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _members(text: str, at: int) -> list[_Member]:
    """The members of the object that opens at offset ``at`` of ``text`` (valid JSON)."""
    members: list[_Member] = []
    position = _skip(text, at + 1)
    while text[position] != "}":
        key, after = _DECODER.raw_decode(text, position)
        value_at = _skip(text, _skip(text, after) + 1)  # past the colon
        value_end = _DECODER.raw_decode(text, value_at)[1]
        members.append(_Member(str(key), position, value_at, value_end))
        position = _skip(text, value_end)
        position = _skip(text, position + 1) if text[position] == "," else position
    return members


def _last_of_each(members: list[_Member]) -> list[_Member]:
    """One member per key, the last (the one JSON parsers keep), in first-appearance order."""
    last = {member.key: member for member in members}
    return list(last.values())


def _lock_beside(root: Path, manifest: str) -> str | None:
    directory = PurePosixPath(manifest).parent
    for name in LOCK_FILES:
        if (root / directory / name).is_file():
            return (directory / name).as_posix()
    return None


def _lock_versions(root: Path, lock_path: str) -> dict[str, str]:
    """Name → version of the top-level packages: ``packages["node_modules/<name>"]`` in lock
    files v2 and v3, ``dependencies.<name>`` in v1; anything that is no version is left out."""
    data = _load(read_manifest(root, lock_path), lock_path)
    packages, legacy = data.get("packages"), data.get("dependencies")
    entries: dict[str, Any] = {}
    if isinstance(packages, dict):
        for key, value in packages.items():
            name = key.removeprefix("node_modules/")
            if key.startswith("node_modules/") and "/node_modules/" not in key:
                entries[name] = value
    elif isinstance(legacy, dict):
        entries = legacy
    versions = {
        name: entry.get("version") for name, entry in entries.items() if isinstance(entry, dict)
    }
    return {
        name: version
        for name, version in versions.items()
        if isinstance(version, str) and nodesemver.valid(version, False) is not None
    }
